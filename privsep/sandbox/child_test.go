package sandbox

// The child side of the tests: the test binary re-executed with
// DYAD_SANDBOX_TEST_CHILD naming what to do. A child reports on stdout as
// JSON, complains on stderr, and exits with status 0 when it could do what
// it was asked (whether or not the outcome is what the parent expects).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	envChild   = "DYAD_SANDBOX_TEST_CHILD"
	envDir     = "DYAD_SANDBOX_TEST_DIR"     // a directory the child may use
	envDir2    = "DYAD_SANDBOX_TEST_DIR2"    // another one
	envSyscall = "DYAD_SANDBOX_TEST_SYSCALL" // the system call to try
	envAddr    = "DYAD_SANDBOX_TEST_ADDR"    // a UDP address to send to
)

// childMain runs the child named mode and returns its exit status.
func childMain(mode string) int {
	// No core file, whatever happens to this child.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	out, err := runChildMode(mode)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
		return 3
	}
	if out != nil {
		if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			return 3
		}
	}
	return 0
}

func runChildMode(mode string) (any, error) {
	switch mode {
	case "hold":
		return nil, childHold(nil)
	case "hold-engine":
		return nil, childHold(&Profile{Name: "engine", Syscalls: EngineSyscalls(), Landlock: &Landlock{}, ExpectUnprivileged: true})
	case "engine-forbidden":
		return childEngineForbidden()
	case "engine-kill":
		return nil, childEngineKill(os.Getenv(envSyscall))
	case "engine-runtime":
		return childEngineRuntime()
	case "engine-report":
		return childEngineReport()
	case "expect-unprivileged":
		err := Confine(Profile{Name: "engine", Syscalls: EngineSyscalls(), ExpectUnprivileged: true})
		return errString(err), nil
	case "landlock":
		return childLandlock()
	case "actuator":
		return childActuator()
	case "supervisor":
		return childSupervisor()
	case "drop-all-threads":
		return childDropAllThreads(DropAllThreads)
	case "drop-all-threads-leaving-bounding":
		return childDropAllThreads(DropAllThreadsLeavingBounding)
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// startThreads starts n goroutines each locked to a thread of its own, so
// that the process has threads before it confines itself, and returns a
// function that runs f on each of those threads and collects the results.
func startThreads(n int) (onEach func(f func() string) []string, stop func()) {
	type job struct {
		f   func() string
		out chan<- string
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		ready := make(chan struct{})
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			close(ready)
			// One job per goroutine, so that each job runs on a
			// different thread.
			if j, ok := <-jobs; ok {
				j.out <- j.f()
			}
			// Exit without unlocking: the thread exits too.
		}()
		<-ready
	}
	onEach = func(f func() string) []string {
		out := make(chan string, n)
		for range n {
			jobs <- job{f, out}
		}
		res := make([]string, n)
		for i := range n {
			res[i] = <-out
		}
		return res
	}
	stop = func() { close(jobs); wg.Wait() }
	return onEach, stop
}

// childHold confines itself to p (if not nil), says so, and waits for
// stdin to close, so that the parent can look at it meanwhile.
func childHold(p *Profile) error {
	_, stop := startThreads(4)
	defer stop()
	if p != nil {
		if err := Confine(*p); err != nil {
			return err
		}
	}
	// More threads, after confinement.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(10 * time.Millisecond)
		}()
	}
	wg.Wait()
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

// errString is "ok" for nil, the errno's name for an errno, and the
// message for anything else.
func errString(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
	}
	return err.Error()
}

func rawErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// childEngineForbidden confines itself as an engine and tries what an
// engine must not do. Descriptor 3 is a UDP socket.
func childEngineForbidden() (map[string]string, error) {
	dir := os.Getenv(envDir)
	if err := Confine(Profile{Name: "engine", Syscalls: EngineSyscalls(), Landlock: &Landlock{}, ExpectUnprivileged: true}); err != nil {
		return nil, err
	}
	res := map[string]string{}
	try := func(name string, f func() error) { res[name] = errString(f()) }
	socket := func(domain, typ int) func() error {
		return func() error {
			fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}
	}
	try("socket AF_INET", socket(unix.AF_INET, unix.SOCK_DGRAM))
	try("socket AF_INET6", socket(unix.AF_INET6, unix.SOCK_DGRAM))
	try("socket AF_PACKET", socket(unix.AF_PACKET, unix.SOCK_RAW))
	try("socket AF_UNIX", socket(unix.AF_UNIX, unix.SOCK_STREAM))
	try("socket AF_NETLINK", socket(unix.AF_NETLINK, unix.SOCK_RAW))
	try("socketpair AF_UNIX", func() error {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
		return err
	})
	open := func(name string, flags int) func() error {
		return func() error {
			fd, err := unix.Open(dir+"/"+name, flags|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}
	}
	try("open O_WRONLY", open("existing", unix.O_WRONLY))
	try("open O_RDWR", open("existing", unix.O_RDWR))
	try("open O_CREAT", open("created", unix.O_RDONLY|unix.O_CREAT))
	try("open O_TRUNC", open("existing", unix.O_RDONLY|unix.O_TRUNC))
	try("open O_APPEND", open("existing", unix.O_RDONLY|unix.O_APPEND))
	try("openat2 O_WRONLY", func() error {
		fd, err := unix.Openat2(unix.AT_FDCWD, dir+"/existing", &unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC})
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	try("mkdirat", func() error { return unix.Mkdirat(unix.AT_FDCWD, dir+"/newdir", 0o755) })
	try("unlinkat", func() error { return unix.Unlinkat(unix.AT_FDCWD, dir+"/existing", 0) })
	try("renameat", func() error { return unix.Renameat(unix.AT_FDCWD, dir+"/existing", unix.AT_FDCWD, dir+"/renamed") })
	try("fchmodat", func() error { return unix.Fchmodat(unix.AT_FDCWD, dir+"/existing", 0o666, 0) })
	// Credentials: the calls to the current IDs would succeed without
	// the filter.
	try("setuid 0", func() error {
		_, _, e := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0)
		return rawErr(e)
	})
	try("setuid self", func() error {
		_, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(os.Getuid()), 0, 0)
		return rawErr(e)
	})
	try("setgid self", func() error {
		_, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(os.Getgid()), 0, 0)
		return rawErr(e)
	})
	try("setresuid self", func() error {
		u := uintptr(os.Getuid())
		_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, u, u, u)
		return rawErr(e)
	})
	try("setgroups none", func() error {
		_, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
		return rawErr(e)
	})
	capset := func(eff uint32) func() error {
		return func() error {
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			data := [2]unix.CapUserData{{Effective: eff, Permitted: eff}}
			return unix.Capset(&hdr, &data[0])
		}
	}
	try("capset CAP_SYS_ADMIN", capset(1<<unix.CAP_SYS_ADMIN))
	try("capset unchanged", capset(0))
	try("prctl PR_SET_DUMPABLE", func() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) })
	try("prctl PR_CAPBSET_DROP", func() error { return unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_CHOWN, 0, 0, 0) })
	// Descriptor 3: a UDP socket given by the parent.
	try("setsockopt", func() error { return unix.SetsockoptInt(3, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	try("bind", func() error { return unix.Bind(3, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}) })
	try("connect", func() error { return unix.Connect(3, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}) })
	try("ioctl SIOCINQ", func() error { _, err := unix.IoctlGetInt(3, unix.SIOCINQ); return err })
	// Processes: no fork, no namespace, no signal to others. The flags
	// are ones the kernel would refuse with EINVAL: only the filter
	// answers EPERM.
	try("clone fork", func() error {
		_, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_SIGHAND, 0, 0, 0, 0, 0)
		return rawErr(e)
	})
	try("clone thread in new user namespace", func() error {
		_, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_THREAD|unix.CLONE_NEWUSER, 0, 0, 0, 0, 0)
		return rawErr(e)
	})
	try("kill parent", func() error { return unix.Kill(os.Getppid(), 0) })
	try("tgkill parent", func() error { return unix.Tgkill(os.Getppid(), os.Getppid(), 0) })
	try("prlimit64 of init", func() error { return unix.Prlimit(1, unix.RLIMIT_NOFILE, nil, &unix.Rlimit{}) })
	// Calls nobody listed: refused, not killed.
	try("sysinfo", func() error { return unix.Sysinfo(&unix.Sysinfo_t{}) })
	try("chdir", func() error { return unix.Chdir("/") })
	// Allowed, for contrast.
	try("getsockname", func() error { _, err := unix.Getsockname(3); return err })
	try("kill self", func() error { return unix.Kill(os.Getpid(), 0) })
	try("open O_RDONLY outside landlock", open("existing", unix.O_RDONLY))
	return res, nil
}

// killTestSyscalls maps the names in Dangerous to their numbers, and the
// first argument to pass where zero would not do.
func killTestSyscall(name string) (nr uintptr, ok bool) {
	nrs := map[string]uintptr{
		"execve": unix.SYS_EXECVE, "execveat": unix.SYS_EXECVEAT,
		"ptrace": unix.SYS_PTRACE, "process_vm_readv": unix.SYS_PROCESS_VM_READV,
		"process_vm_writev": unix.SYS_PROCESS_VM_WRITEV,
		"mount":             unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2,
		"pivot_root": unix.SYS_PIVOT_ROOT, "chroot": unix.SYS_CHROOT,
		"unshare": unix.SYS_UNSHARE, "setns": unix.SYS_SETNS,
		"bpf": unix.SYS_BPF, "perf_event_open": unix.SYS_PERF_EVENT_OPEN,
		"userfaultfd": unix.SYS_USERFAULTFD,
		"init_module": unix.SYS_INIT_MODULE, "finit_module": unix.SYS_FINIT_MODULE,
		"delete_module": unix.SYS_DELETE_MODULE,
		"kexec_load":    unix.SYS_KEXEC_LOAD, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
		"reboot": unix.SYS_REBOOT, "swapon": unix.SYS_SWAPON, "swapoff": unix.SYS_SWAPOFF,
		"keyctl": unix.SYS_KEYCTL, "add_key": unix.SYS_ADD_KEY, "request_key": unix.SYS_REQUEST_KEY,
		"personality": unix.SYS_PERSONALITY, "open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
	}
	nr, ok = nrs[name]
	return nr, ok
}

// childEngineKill confines itself as an engine, says so, and makes the
// system call named: the filter must kill it before it can say more. The
// arguments are harmless should the call go through: the child is
// unprivileged, and the parent fails the test anyway.
func childEngineKill(name string) error {
	nr, ok := killTestSyscall(name)
	if !ok {
		return fmt.Errorf("no number for %q", name)
	}
	if err := Confine(Profile{Name: "engine", Syscalls: EngineSyscalls(), Landlock: &Landlock{}, ExpectUnprivileged: true}); err != nil {
		return err
	}
	os.Stdout.WriteString("confined\n")
	var arg0 uintptr
	if name == "personality" {
		arg0 = 0xffffffff // query only
	}
	_, _, e := unix.Syscall6(nr, arg0, 0, 0, 0, 0, 0)
	fmt.Fprintf(os.Stdout, "survived %s: %v\n", name, e)
	return nil
}

// runtimeReport is what the engine-runtime child reports.
type runtimeReport struct {
	Goroutines     int
	TimerFired     bool
	Ticks          int
	GCs            uint32
	Pipe           string
	TimeForward    bool
	ThreadTIDs     []int
	Threads        int
	Status         Status
	ThreadsSeccomp []int
	Unix           string
	UDPSent        int
}

// childEngineRuntime confines itself as an engine (with /proc readable)
// and then does what an ordinary Go program does. Descriptor 3 is the
// read end of a pipe, 4 a unix listener, 5 an unbound UDP socket.
func childEngineRuntime() (*runtimeReport, error) {
	var rep runtimeReport
	if err := Confine(Profile{Name: "engine", Syscalls: EngineSyscalls(), Landlock: &Landlock{ReadOnly: []string{"/proc"}}, ExpectUnprivileged: true}); err != nil {
		return nil, err
	}
	t0 := time.Now()

	// goroutines
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := make([]byte, 1<<10)
			s[0] = byte(i)
			runtime.Gosched()
			mu.Lock()
			rep.Goroutines++
			mu.Unlock()
		}()
	}
	wg.Wait()

	// timers
	select {
	case <-time.After(20 * time.Millisecond):
		rep.TimerFired = true
	case <-time.After(5 * time.Second):
	}
	tk := time.NewTicker(5 * time.Millisecond)
	for range 3 {
		<-tk.C
		rep.Ticks++
	}
	tk.Stop()

	// garbage and collections, memory returned to the system
	var keep [][]byte
	for i := range 64 {
		b := make([]byte, 1<<20)
		b[i] = 1
		if i%8 == 0 {
			keep = append(keep, b)
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	runtime.KeepAlive(keep)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.GCs = ms.NumGC

	// the pipe
	b, err := io.ReadAll(os.NewFile(3, "pipe"))
	if err != nil {
		return nil, fmt.Errorf("read pipe: %w", err)
	}
	rep.Pipe = string(b)

	// threads of its own, which exit with their goroutines
	tids := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(5 * time.Millisecond)
			tids <- unix.Gettid()
		}()
	}
	wg.Wait()
	close(tids)
	for tid := range tids {
		rep.ThreadTIDs = append(rep.ThreadTIDs, tid)
	}

	// a unix listener it was given
	ln, err := net.FileListener(os.NewFile(4, "listener"))
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	c, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read from unix connection: %w", err)
	}
	if _, err := c.Write([]byte("pong:" + string(buf[:n]))); err != nil {
		return nil, fmt.Errorf("write to unix connection: %w", err)
	}
	c.Close()
	ln.Close()
	rep.Unix = string(buf[:n])

	// a UDP socket it was given
	pc, err := net.FilePacketConn(os.NewFile(5, "udp"))
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	addr, err := net.ResolveUDPAddr("udp", os.Getenv(envAddr))
	if err != nil {
		return nil, err
	}
	rep.UDPSent, err = pc.WriteTo([]byte("hello over udp"), addr)
	if err != nil {
		return nil, fmt.Errorf("udp send: %w", err)
	}
	pc.Close()

	// /proc, which its landlock rules let it read
	rep.Status, err = ReadStatus(os.Getpid())
	if err != nil {
		return nil, err
	}
	err = eachThread(os.Getpid(), func(tid int, s Status) error {
		rep.Threads++
		if s.Seccomp != SeccompFilter {
			rep.ThreadsSeccomp = append(rep.ThreadsSeccomp, tid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.TimeForward = time.Since(t0) > 20*time.Millisecond
	return &rep, nil
}

// childEngineReport confines itself as an engine and reports its status.
func childEngineReport() (*Status, error) {
	if err := Confine(Profile{Name: "engine", Syscalls: EngineSyscalls(), Landlock: &Landlock{ReadOnly: []string{"/proc"}}, ExpectUnprivileged: true}); err != nil {
		return nil, err
	}
	s, err := ReadStatus(os.Getpid())
	return &s, err
}

// childLandlock confines itself with landlock rules (and a filter that
// lets open for writing through, so that Landlock is what answers), then
// tries to reach files from each of its threads.
func childLandlock() (map[string]string, error) {
	ro, rw := os.Getenv(envDir), os.Getenv(envDir2)
	onEach, stop := startThreads(6)
	defer stop()
	err := Confine(Profile{
		Name:               "landlocked",
		Syscalls:           ActuatorSyscalls(),
		Landlock:           &Landlock{ReadOnly: []string{ro}, ReadWrite: []string{rw}},
		ExpectUnprivileged: true,
	})
	if err != nil {
		return nil, err
	}
	res := map[string]string{}
	try := func(name string, f func() error) { res[name] = errString(f()) }
	read := func(path string) func() error {
		return func() error { _, err := os.ReadFile(path); return err }
	}
	try("read ro/file", read(ro+"/file"))
	try("list ro", func() error { _, err := os.ReadDir(ro); return err })
	try("read /etc/hostname", read("/etc/hostname"))
	try("list /", func() error { _, err := os.ReadDir("/"); return err })
	try("write ro/file", func() error { return os.WriteFile(ro+"/file", []byte("x"), 0o644) })
	try("create ro/new", func() error {
		f, err := os.OpenFile(ro+"/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.Close()
		}
		return err
	})
	try("remove ro/file", func() error { return os.Remove(ro + "/file") })
	try("write rw/tmp and rename", func() error {
		if err := os.WriteFile(rw+"/tmp", []byte("written"), 0o644); err != nil {
			return err
		}
		return os.Rename(rw+"/tmp", rw+"/renamed")
	})
	try("read rw/renamed", read(rw+"/renamed"))
	// every thread, including those that existed before Confine
	for i, r := range onEach(func() string {
		_, err := os.ReadFile("/etc/hostname")
		return errString(err)
	}) {
		res["thread "+strconv.Itoa(i)+" read /etc/hostname"] = r
	}
	return res, nil
}

// childActuator confines itself as an actuator (a root process that kept
// CAP_NET_ADMIN) and reports what it can do.
func childActuator() (map[string]string, error) {
	dir := os.Getenv(envDir)
	if err := Confine(Profile{Name: "actuator", Syscalls: ActuatorSyscalls()}); err != nil {
		return nil, err
	}
	res := map[string]string{}
	try := func(name string, f func() error) { res[name] = errString(f()) }
	socket := func(domain, typ int) func() error {
		return func() error {
			fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}
	}
	try("socket AF_NETLINK", socket(unix.AF_NETLINK, unix.SOCK_RAW))
	try("socket AF_UNIX", socket(unix.AF_UNIX, unix.SOCK_SEQPACKET))
	try("socket AF_INET", socket(unix.AF_INET, unix.SOCK_DGRAM))
	try("socket AF_INET6", socket(unix.AF_INET6, unix.SOCK_DGRAM))
	try("socket AF_PACKET", socket(unix.AF_PACKET, unix.SOCK_RAW))
	try("write file and rename", func() error {
		if err := os.WriteFile(dir+"/tmp", []byte("x"), 0o644); err != nil {
			return err
		}
		return os.Rename(dir+"/tmp", dir+"/final")
	})
	try("setuid self", func() error {
		_, _, e := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0)
		return rawErr(e)
	})
	s, err := ReadStatus(os.Getpid())
	if err != nil {
		return nil, err
	}
	res["seccomp"] = strconv.Itoa(s.Seccomp)
	res["CapEff"] = fmt.Sprintf("%#x", s.CapEff)
	return res, nil
}

// supervisorReport is what the supervisor child reports.
type supervisorReport struct {
	Status        Status
	Engine        string // the engine grandchild's stdout
	EngineStderr  string
	EngineExit    string
	StartNetAdmin string // starting a child that keeps a capability the supervisor lacks
	SocketInet6   string
}

// childSupervisor confines itself as a supervisor of an engine and an
// actuator, then starts an engine, which confines itself in turn.
func childSupervisor() (*supervisorReport, error) {
	var rep supervisorReport
	if err := Confine(Profile{Name: "supervisor", Syscalls: SupervisorSyscalls(EngineSyscalls(), ActuatorSyscalls())}); err != nil {
		return nil, err
	}
	var err error
	if rep.Status, err = ReadStatus(os.Getpid()); err != nil {
		return nil, err
	}
	var out, errOut strings.Builder
	p, err := Start(Child{
		Args:       []string{"dyad-test-engine"},
		Env:        []string{envChild + "=engine-report"},
		Stdout:     &out,
		Stderr:     &errOut,
		UID:        65534,
		GID:        65534,
		NoNewPrivs: true,
	})
	if err != nil {
		return nil, err
	}
	st, err := p.Wait()
	if err != nil {
		return nil, err
	}
	rep.Engine, rep.EngineStderr, rep.EngineExit = out.String(), errOut.String(), st.String()

	_, err = Start(Child{Args: []string{"dyad-test-never"}, Keep: []Cap{unix.CAP_NET_ADMIN}})
	rep.StartNetAdmin = errString(err)
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	rep.SocketInet6 = errString(err)
	return &rep, nil
}

// dropReport is what a child that dropped its capabilities saw of itself.
type dropReport struct {
	Threads  []Status // every thread, after the drop
	Workers  []string // each pre-existing locked thread's own capget
	NewAfter Status   // a thread created after the drop
	Err      string
}

// childDropAllThreads runs as root with every capability, with threads
// locked before it drops, drops to CAP_NET_ADMIN and reports what each
// thread holds.
func childDropAllThreads(drop func([]Cap) error) (*dropReport, error) {
	onEach, stop := startThreads(6)
	defer stop()
	// Threads keep appearing and going while the drop runs, made by
	// threads already done and by threads not yet.
	quit := make(chan struct{})
	var churn sync.WaitGroup
	for range 2 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-quit:
					return
				default:
				}
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread() // never unlocked: a new thread each time
					close(done)
				}()
				<-done
			}
		}()
	}
	var r dropReport
	err := drop([]Cap{unix.CAP_NET_ADMIN})
	close(quit)
	churn.Wait()
	if err != nil {
		r.Err = err.Error()
		return &r, nil
	}
	// Listed while the locked workers still live: each exits after its
	// job below.
	tids, err := Threads(os.Getpid())
	if err != nil {
		return nil, err
	}
	for _, tid := range tids {
		s, err := ReadThreadStatus(os.Getpid(), tid)
		if err != nil {
			continue // the thread exited
		}
		r.Threads = append(r.Threads, s)
	}
	r.Workers = onEach(func() string {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("eff %#x prm %#x inh %#x", data[0].Effective, data[0].Permitted, data[0].Inheritable)
	})
	done := make(chan Status)
	go func() {
		runtime.LockOSThread() // a fresh thread, never unlocked: it exits with the goroutine
		s, _ := ReadThreadStatus(os.Getpid(), unix.Gettid())
		done <- s
	}()
	r.NewAfter = <-done
	return &r, nil
}
