package initd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mounter mounts file systems, loading a file system's module when the
// kernel does not know the type yet: the initramfs has no modprobe for
// the kernel to call, so "overlay" fails with ENODEV until init loads the
// module for alias fs-overlay itself.
type mounter struct {
	kmod *Kmod // nil: no module loading
}

// mount is mount(2) with one retry after loading the module of fstype.
func (m mounter) mount(source, target, fstype string, flags uintptr, data string) error {
	err := unix.Mount(source, target, fstype, flags, data)
	if errors.Is(err, unix.ENODEV) && fstype != "" && m.kmod != nil {
		if _, lerr := m.kmod.LoadAlias("fs-" + fstype); lerr != nil {
			err = fmt.Errorf("%w (loading fs-%s: %v)", err, fstype, lerr)
		} else {
			err = unix.Mount(source, target, fstype, flags, data)
		}
	}
	if err != nil {
		what := fstype
		if what == "" {
			what = source
		}
		return fmt.Errorf("mount %s on %s: %w", what, target, err)
	}
	return nil
}

// mountWith mounts with fstab-style options as runc does: the mount
// itself, then a remount for the flags a bind mount ignores at first, then
// the propagation change, each a call of its own.
func (m mounter) mountWith(source, target, fstype string, o mountOptions) error {
	if !o.propagationOnly(fstype) {
		flags := o.flags
		if flags&unix.MS_BIND != 0 {
			flags &^= bindRemountFlags
		}
		if err := m.mount(source, target, fstype, flags, o.dataString()); err != nil {
			return err
		}
		if o.flags&unix.MS_BIND != 0 && o.flags&bindRemountFlags != 0 {
			rf := unix.MS_BIND | unix.MS_REMOUNT | o.flags&bindRemountFlags
			if err := m.mount("", target, "", rf, ""); err != nil {
				return err
			}
		}
	}
	if o.propagation != 0 {
		return m.mount("", target, "", o.propagation, "")
	}
	return nil
}

// sysMount is one of the file systems init mounts at boot.
type sysMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	// mkdir, when not zero, is the mode to create the target with; zero
	// means the kernel makes the target (a directory of sysfs) when it
	// has the file system, and the mount is skipped without it.
	mkdir    os.FileMode
	optional bool
}

// systemMounts are LinuxKit's mounts, in order: each target lies in a file
// system mounted before it.
func systemMounts() []sysMount {
	const (
		nodev  = unix.MS_NODEV
		noexec = unix.MS_NOEXEC
		nosuid = unix.MS_NOSUID
	)
	return []sysMount{
		{"proc", "/proc", "proc", nosuid | nodev | noexec, "", 0o555, false},
		{"sysfs", "/sys", "sysfs", nosuid | nodev | noexec, "", 0o555, false},
		{"devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755", 0o755, false},
		{"devpts", "/dev/pts", "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=0620", 0o755, false},
		{"shm", "/dev/shm", "tmpfs", nosuid | nodev | noexec, "mode=1777", 0o1777, false},
		{"mqueue", "/dev/mqueue", "mqueue", nosuid | nodev | noexec, "", 0o1777, true},
		{"tmpfs", "/run", "tmpfs", nosuid | nodev, "mode=0755", 0o755, false},
		{"tmpfs", "/tmp", "tmpfs", nosuid | nodev, "mode=1777", 0o1777, false},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid | nodev | noexec, "", 0, false},
		{"securityfs", "/sys/kernel/security", "securityfs", nosuid | nodev | noexec, "", 0, true},
		{"bpf", "/sys/fs/bpf", "bpf", nosuid | nodev | noexec, "mode=0700", 0, true},
		{"configfs", "/sys/kernel/config", "configfs", nosuid | nodev | noexec, "", 0, true},
		{"debugfs", "/sys/kernel/debug", "debugfs", nosuid | nodev | noexec, "", 0, true},
	}
}

// mountSystem mounts the system's file systems under root ("/" at boot),
// then makes the /dev symbolic links. A required mount that fails is
// returned as the error; an optional one is logged and skipped.
func mountSystem(root string, m mounter, con *Console) error {
	for _, sm := range systemMounts() {
		target := filepath.Join(root, sm.target)
		if sm.mkdir != 0 {
			if err := os.MkdirAll(target, sm.mkdir); err != nil {
				if !sm.optional {
					return err
				}
				con.Logf("mount %s: %v", sm.target, err)
				continue
			}
		} else if _, err := os.Stat(target); err != nil {
			if !sm.optional {
				return fmt.Errorf("mount %s: %w", sm.target, err)
			}
			continue // the kernel does not have it
		}
		if err := m.mount(sm.source, target, sm.fstype, sm.flags, sm.data); err != nil {
			if !sm.optional {
				return err
			}
			con.Logf("%v (optional, going on)", err)
		}
	}
	for _, l := range [][2]string{
		{"fd", "/proc/self/fd"},
		{"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"},
		{"stderr", "/proc/self/fd/2"},
	} {
		if err := os.Symlink(l[1], filepath.Join(root, "dev", l[0])); err != nil && !errors.Is(err, os.ErrExist) {
			con.Logf("symlink /dev/%s: %v", l[0], err)
		}
	}
	return nil
}

// ensureStdio opens the console as stdin, stdout and stderr when the kernel
// could not (it opens /dev/console before anything is mounted, and an
// initramfs without that node leaves init with no descriptors at all).
func ensureStdio(console string) error {
	if _, err := unix.FcntlInt(1, unix.F_GETFD, 0); err == nil {
		return nil
	}
	fd, err := unix.Open(console, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", console, err)
	}
	for i := 0; i < 3; i++ {
		if fd != i {
			if err := unix.Dup3(fd, i, 0); err != nil {
				return fmt.Errorf("dup %s to %d: %w", console, i, err)
			}
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
	return nil
}
