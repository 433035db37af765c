package initd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Paths are where init finds the system. Tests point them at temporary
// directories; DefaultPaths gives the VM's.
type Paths struct {
	Root     string // "/": absolute paths of the bundles lie under it
	Proc     string // "/proc"
	Sys      string // "/sys"
	Modules  string // "/lib/modules/RELEASE", with depmod's files
	Runc     string // the runc binary, "/usr/bin/runc"
	RuncRoot string // runc's state directory, "/run/runc"
	State    string // init's own files (pid files), "/run/dyad-init"
}

// DefaultPaths are the paths in the VM, the modules those of the running
// kernel.
func DefaultPaths() (Paths, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Paths{}, fmt.Errorf("uname: %w", err)
	}
	return Paths{
		Root:     "/",
		Proc:     "/proc",
		Sys:      "/sys",
		Modules:  filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])),
		Runc:     "/usr/bin/runc",
		RuncRoot: "/run/runc",
		State:    "/run/dyad-init",
	}, nil
}

// containers returns the directory of one kind of bundle under root.
func (p Paths) containers(kind string) string {
	return filepath.Join(p.Root, "containers", kind)
}

// Init runs the containers of one system.
type Init struct {
	con       *Console
	host      *host
	runc      *runc
	reaper    *Reaper
	stateDir  string
	stopGrace time.Duration // between SIGTERM and SIGKILL
	// newBackoff gives each service its restart delays; tests shorten them.
	newBackoff func() backoff
	// fatal is what a panic in one of init's goroutines comes to: as
	// PID 1, a logged power-off; in tests, the panic again.
	fatal func(error)
}

// newInit returns an Init for the system at p whose processes reaper
// reaps; kmod (which may be nil) loads the modules mounts and links need.
func newInit(con *Console, p Paths, reaper *Reaper, kmod *Kmod) *Init {
	return &Init{
		con: con,
		host: &host{
			root:    p.Root,
			proc:    p.Proc,
			cgroup:  filepath.Join(p.Sys, "fs/cgroup"),
			mounter: mounter{kmod: kmod},
		},
		runc: &runc{
			path:   p.Runc,
			root:   p.RuncRoot,
			env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			reaper: reaper,
			con:    con,
		},
		reaper:     reaper,
		stateDir:   p.State,
		stopGrace:  10 * time.Second,
		newBackoff: serviceBackoff,
		fatal:      func(err error) { panic(err) },
	}
}

// guard, deferred first in a goroutine of init's, hands a panic to
// in.fatal: an unrecovered panic in any goroutine would end PID 1, and the
// kernel panics when PID 1 ends.
func (in *Init) guard() {
	if r := recover(); r != nil {
		in.fatal(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
	}
}

// Main is init. As PID 1 it never returns: it runs the system until a
// signal asks for a shutdown and then stops the machine; a fatal error is
// logged and, 5 s later, the machine powers off. Run as anything else it
// refuses, and returns the exit code, except when the kernel calls it as
// its modprobe helper (init points /proc/sys/kernel/modprobe at itself).
func Main() int {
	if os.Getpid() != 1 {
		if name, ok := modprobeArgs(os.Args); ok {
			return modprobe(name)
		}
		fmt.Fprintln(os.Stderr, "init: this is the init of dyad's VM images; it runs only as PID 1")
		return 2
	}
	con := NewConsole(os.Stdout)
	defer func() {
		// A panic that reached here would end PID 1 and panic the kernel
		// with a less useful message.
		if r := recover(); r != nil {
			fatal(con, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	// runPID1 returns only with a fatal error, and fatal does not return.
	fatal(con, runPID1(con, notifySignals()))
	return 0
}

// runPID1 boots the system, runs it until a shutdown signal and stops the
// machine. It returns only with a fatal error; the shutdown ends in
// finalize, which does not return.
func runPID1(con *Console, sigs <-chan os.Signal) error {
	unix.Umask(0o022)
	// Ctrl-Alt-Del sends SIGINT to init instead of rebooting at once.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	if err := leaveInitramfs(con); err != nil {
		con.Logf("root: %v; staying where it is (runc cannot pivot_root out of an initramfs)", err)
	}
	p, err := DefaultPaths()
	if err != nil {
		return err
	}
	reaper := NewReaper()
	in, err := boot(con, p, reaper)
	if err != nil {
		return err
	}
	in.fatal = func(err error) { fatal(con, err) }
	go func() {
		defer in.guard()
		reaper.Run(context.Background())
	}()

	ctx, cancel := context.WithCancel(context.Background())
	actions := make(chan action, 1)
	go func() {
		defer in.guard()
		watchSignals(con, sigs, actions, cancel)
	}()

	in.runInOrder(ctx, p.containers("onboot"), "onboot", 0)
	servicesDone := in.startServices(ctx, p.containers("services"))
	if ctx.Err() == nil {
		con.Logf("up; USR2 (poweroff) powers off, TERM reboots, USR1 halts")
	}
	<-ctx.Done() // the system runs until a signal asks it to stop
	a := <-actions
	in.shutdown(servicesDone, p.containers("onshutdown"))
	finalize(con, a)
	return errors.New("finalize returned")
}

// boot readies the system once "/" is where it will stay: propagation,
// the kernel's file systems, limits, modules, the loopback, the hostname
// and resolv.conf. Only a required mount that fails is fatal.
func boot(con *Console, p Paths, reaper *Reaper) (*Init, error) {
	// Containers' mounts (rshared binds, a DHCP client's /run/resolvconf)
	// propagate back to the host only from a shared root.
	if err := unix.Mount("", p.Root, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		con.Logf("make %s rshared: %v", p.Root, err)
	}
	kmod, modErr := systemKmod(p)
	if err := mountSystem(p.Root, mounter{kmod: kmod}, con); err != nil {
		return nil, err
	}
	if err := ensureStdio(filepath.Join(p.Root, "dev/console")); err != nil {
		con.Logf("console: %v", err)
	}
	con.Logf("mounted /proc, /sys, /dev, /run, /tmp, /sys/fs/cgroup")
	setLimits(con)
	// The kernel calls its modprobe helper for file systems, link kinds,
	// protocols and crypto it does not have yet; let that be init.
	if err := os.WriteFile(filepath.Join(p.Proc, "sys/kernel/modprobe"), []byte("/init\n"), 0o644); err != nil {
		con.Logf("modprobe helper: %v", err)
	}

	if modErr != nil {
		con.Logf("coldplug: no modules: %v", modErr)
	} else {
		start := time.Now()
		res := Coldplug(filepath.Join(p.Sys, "devices"), kmod)
		loaded := strings.Join(res.Loaded, " ")
		if loaded == "" {
			loaded = "nothing"
		}
		con.Logf("coldplug: loaded %s (%d modaliases, %d passes, %d modules without their device, %v)",
			loaded, res.Devices, res.Passes, res.NoDevice, time.Since(start).Round(time.Millisecond))
		for what, err := range res.Failed {
			con.Logf("coldplug: %s: %v", what, err)
		}
	}

	if err := bringUpLoopback(); err != nil {
		con.Logf("%v", err)
	}
	if name, err := setHostname(p.Root); err != nil {
		con.Logf("hostname: %v", err)
	} else {
		con.Logf("hostname %s", name)
	}
	if err := prepareResolvConf(p.Root); err != nil {
		con.Logf("resolv.conf: %v", err)
	}
	if err := os.MkdirAll(p.State, 0o700); err != nil {
		return nil, err
	}
	return newInit(con, p, reaper, kmod), nil
}

// setLimits raises the limits every process inherits, as LinuxKit's init
// does: containers get these unless their spec says otherwise.
func setLimits(con *Console) {
	for _, l := range []struct {
		name     string
		resource int
		value    uint64
	}{
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, 1 << 20},
		{"RLIMIT_NPROC", unix.RLIMIT_NPROC, unix.RLIM_INFINITY},
	} {
		if err := unix.Setrlimit(l.resource, &unix.Rlimit{Cur: l.value, Max: l.value}); err != nil {
			con.Logf("%s: %v", l.name, err)
		}
	}
}

// fatal logs err, waits 5 s (to let the console show it) and powers off.
func fatal(con *Console, err error) {
	con.Logf("fatal: %v", err)
	con.Logf("powering off in 5 s")
	time.Sleep(5 * time.Second)
	unix.Sync()
	rerr := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	con.Logf("reboot(power off): %v", rerr)
	hang()
}

// systemKmod is the module loader of the running kernel; without
// modules data it loads nothing, and the error says why.
func systemKmod(p Paths) (*Kmod, error) {
	mods, err := LoadModules(p.Modules)
	return NewKmod(mods, FinitModule, filepath.Join(p.Sys, "module")), err
}

// modprobeArgs recognizes the kernel's call of its modprobe helper:
// "modprobe -q -- NAME".
func modprobeArgs(args []string) (string, bool) {
	if len(args) == 4 && args[1] == "-q" && args[2] == "--" && args[3] != "" {
		return args[3], true
	}
	return "", false
}

// modprobe loads the modules for name (a module or an alias) for the
// kernel, and returns the exit code it waits for.
func modprobe(name string) int {
	p, err := DefaultPaths()
	if err == nil {
		var kmod *Kmod
		if kmod, err = systemKmod(p); err == nil {
			_, err = kmod.LoadAlias(name)
		}
	}
	if err != nil {
		// -q: the kernel logs the failure itself.
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "modprobe %s: %v\n", name, err)
		}
		return 1
	}
	return 0
}
