package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

const nobody = 65534

// requireRoot fails the test unless it runs as root: the children change
// user and capabilities, which only root can do.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the sandbox tests start children as other users: run them as root")
	}
}

// sharedDir returns a new directory that the user owner owns and everyone
// may enter.
func sharedDir(t *testing.T, owner int) string {
	t.Helper()
	d, err := os.MkdirTemp("", "dyad-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, owner, owner); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeFile writes a file the user owner owns.
func writeFile(t *testing.T, path, content string, owner int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, owner, owner); err != nil {
		t.Fatal(err)
	}
}

func unprivileged() Child {
	return Child{UID: nobody, GID: nobody, NoNewPrivs: true}
}

type result struct {
	state          *os.ProcessState
	stdout, stderr string
}

const childTimeout = 60 * time.Second

// runChild runs the test binary as child mode with c's credentials and
// files, and waits for it.
func runChild(t *testing.T, mode string, c Child, env ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c.Args = []string{"dyad-test-" + mode}
	c.Env = append([]string{envChild + "=" + mode}, env...)
	c.Stdout, c.Stderr = &out, &errOut
	p, err := Start(c)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(childTimeout):
		p.Signal(syscall.SIGKILL)
		p.Wait()
		t.Fatalf("child %s did not finish within %v; stderr:\n%s", mode, childTimeout, errOut.String())
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return result{st, out.String(), errOut.String()}
}

// decode requires that the child exited with status 0 and decodes its
// report into v.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	if !r.state.Success() {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", r.state, r.stdout, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("child report %q: %v\nstderr:\n%s", r.stdout, err, r.stderr)
	}
}

// checkEmpty checks the status of a process with no privilege at all.
func checkEmpty(t *testing.T, what string, s Status) {
	t.Helper()
	want := [4]uint32{nobody, nobody, nobody, nobody}
	if s.UID != want || s.GID != want {
		t.Errorf("%s: Uid %v Gid %v, want all %d", what, s.UID, s.GID, nobody)
	}
	if len(s.Groups) != 0 {
		t.Errorf("%s: Groups %v, want none", what, s.Groups)
	}
	for name, v := range map[string]uint64{"CapInh": s.CapInh, "CapPrm": s.CapPrm, "CapEff": s.CapEff, "CapBnd": s.CapBnd, "CapAmb": s.CapAmb} {
		if v != 0 {
			t.Errorf("%s: %s %#x, want 0", what, name, v)
		}
	}
	if !s.NoNewPrivs {
		t.Errorf("%s: NoNewPrivs 0, want 1", what)
	}
}

// threadStatuses returns the status of every thread of process pid,
// but those that exit meanwhile.
func threadStatuses(t *testing.T, pid int) map[int]Status {
	t.Helper()
	m := map[int]Status{}
	err := eachThread(pid, func(tid int, s Status) error {
		m[tid] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEngineConfined starts an engine as the parent of a real daemon
// would, lets it confine itself, and checks from outside what the kernel
// says of it and of each of its threads.
func TestEngineConfined(t *testing.T) {
	requireRoot(t)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdoutR.Close()
	var errOut bytes.Buffer
	c := unprivileged()
	c.Args = []string{"dyad-test-engine"}
	c.Env = []string{envChild + "=hold-engine"}
	c.Stdin, c.Stdout, c.Stderr = stdinR, stdoutW, &errOut
	p, err := Start(c)
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Signal(syscall.SIGKILL)

	stdoutR.SetReadDeadline(time.Now().Add(childTimeout))
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if line != "ready\n" {
		stdinW.Close()
		p.Wait()
		t.Fatalf("child said %q (%v); stderr:\n%s", line, err, errOut.String())
	}

	s, err := ReadStatus(p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	checkEmpty(t, "process", s)
	if s.Seccomp != SeccompFilter {
		t.Errorf("process: Seccomp %d, want %d", s.Seccomp, SeccompFilter)
	}
	threads := threadStatuses(t, p.Pid)
	if len(threads) < 5 {
		t.Errorf("child has %d threads, want at least 5 (it locked 4 goroutines to threads)", len(threads))
	}
	for tid, ts := range threads {
		checkEmpty(t, "thread", ts)
		if ts.Seccomp != SeccompFilter {
			t.Errorf("thread %d: Seccomp %d, want %d", tid, ts.Seccomp, SeccompFilter)
		}
	}

	stdinW.Close()
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("child: %v %v; stderr:\n%s", st, err, errOut.String())
	}
}

// TestEngineForbidden shows that a confined engine is refused what it
// must not do, with EPERM from the filter (not EACCES from the kernel's
// permission checks or landlock, and not death).
func TestEngineForbidden(t *testing.T) {
	requireRoot(t)
	dir := sharedDir(t, nobody)
	writeFile(t, filepath.Join(dir, "existing"), "intact", nobody)
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	udpFile := os.NewFile(uintptr(udp), "udp")
	defer udpFile.Close()

	c := unprivileged()
	c.Files = []*os.File{udpFile}
	var got map[string]string
	decode(t, runChild(t, "engine-forbidden", c, envDir+"="+dir), &got)

	want := map[string]string{
		"socket AF_INET":                     "EPERM",
		"socket AF_INET6":                    "EPERM",
		"socket AF_PACKET":                   "EPERM",
		"socket AF_UNIX":                     "EPERM",
		"socket AF_NETLINK":                  "EPERM",
		"socketpair AF_UNIX":                 "EPERM",
		"open O_WRONLY":                      "EPERM",
		"open O_RDWR":                        "EPERM",
		"open O_CREAT":                       "EPERM",
		"open O_TRUNC":                       "EPERM",
		"open O_APPEND":                      "EPERM",
		"openat2 O_WRONLY":                   "EPERM",
		"mkdirat":                            "EPERM",
		"unlinkat":                           "EPERM",
		"renameat":                           "EPERM",
		"fchmodat":                           "EPERM",
		"setuid 0":                           "EPERM",
		"setuid self":                        "EPERM",
		"setgid self":                        "EPERM",
		"setresuid self":                     "EPERM",
		"setgroups none":                     "EPERM",
		"capset CAP_SYS_ADMIN":               "EPERM",
		"capset unchanged":                   "EPERM",
		"prctl PR_SET_DUMPABLE":              "EPERM",
		"prctl PR_CAPBSET_DROP":              "EPERM",
		"setsockopt":                         "EPERM",
		"bind":                               "EPERM",
		"connect":                            "EPERM",
		"ioctl SIOCINQ":                      "EPERM",
		"clone fork":                         "EPERM",
		"clone thread in new user namespace": "EPERM",
		"kill parent":                        "EPERM",
		"tgkill parent":                      "EPERM",
		"prlimit64 of init":                  "EPERM",
		"sysinfo":                            "EPERM",
		"chdir":                              "EPERM",
		// allowed, for contrast
		"getsockname": "ok",
		"kill self":   "ok",
		// allowed by the filter, refused by landlock
		"open O_RDONLY outside landlock": "EACCES",
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: not tried", name)
		} else if g != w {
			t.Errorf("%s: %s, want %s", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: tried, but no expectation", name)
		}
	}
	for _, name := range []string{"created", "newdir", "renamed"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s exists: the engine changed the filesystem", name)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "existing")); err != nil || string(b) != "intact" {
		t.Errorf("existing: %q, %v; want it intact", b, err)
	}
}

// TestEngineKilled shows that each dangerous system call kills a confined
// engine with SIGSYS, one child per call.
func TestEngineKilled(t *testing.T) {
	requireRoot(t)
	for _, name := range Dangerous() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runChild(t, "engine-kill", unprivileged(), envSyscall+"="+name)
			ws, ok := r.state.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
				t.Errorf("child: %v, want killed by SIGSYS\nstdout:\n%s\nstderr:\n%s", r.state, r.stdout, r.stderr)
			}
			if r.stdout != "confined\n" {
				t.Errorf("child said %q, want only %q", r.stdout, "confined\n")
			}
		})
	}
}

// TestRootChildKeep checks the capabilities of a root child that keeps
// CAP_NET_ADMIN, as an actuator does.
func TestRootChildKeep(t *testing.T) {
	requireRoot(t)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdoutR.Close()
	var errOut bytes.Buffer
	p, err := Start(Child{
		Args:   []string{"dyad-test-actuator"},
		Env:    []string{envChild + "=hold"},
		Stdin:  stdinR,
		Stdout: stdoutW,
		Stderr: &errOut,
		Keep:   []Cap{unix.CAP_NET_ADMIN},
	})
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Signal(syscall.SIGKILL)
	stdoutR.SetReadDeadline(time.Now().Add(childTimeout))
	if line, err := bufio.NewReader(stdoutR).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child said %q (%v); stderr:\n%s", line, err, errOut.String())
	}
	want := uint64(1) << unix.CAP_NET_ADMIN
	for tid, s := range threadStatuses(t, p.Pid) {
		if s.UID != [4]uint32{} || s.GID != [4]uint32{} {
			t.Errorf("thread %d: Uid %v Gid %v, want root", tid, s.UID, s.GID)
		}
		if s.CapPrm != want || s.CapEff != want || s.CapBnd != want {
			t.Errorf("thread %d: CapPrm %#x CapEff %#x CapBnd %#x, want %#x", tid, s.CapPrm, s.CapEff, s.CapBnd, want)
		}
		if s.CapInh != 0 || s.CapAmb != 0 {
			t.Errorf("thread %d: CapInh %#x CapAmb %#x, want 0", tid, s.CapInh, s.CapAmb)
		}
	}
	stdinW.Close()
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Fatalf("child: %v %v; stderr:\n%s", st, err, errOut.String())
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Wait returned")
	}
	if err := p.Signal(syscall.SIGTERM); err == nil {
		t.Error("Signal after exit succeeded, want an error")
	}
}

// TestActuator confines a root child that kept CAP_NET_ADMIN with the
// actuator's policy.
func TestActuator(t *testing.T) {
	requireRoot(t)
	dir := sharedDir(t, 0)
	var got map[string]string
	decode(t, runChild(t, "actuator", Child{Keep: []Cap{unix.CAP_NET_ADMIN}}, envDir+"="+dir), &got)
	want := map[string]string{
		"socket AF_NETLINK":     "ok",
		"socket AF_UNIX":        "ok",
		"socket AF_INET":        "ok",
		"socket AF_INET6":       "EPERM",
		"socket AF_PACKET":      "EPERM",
		"write file and rename": "ok",
		"setuid self":           "EPERM",
		"seccomp":               "2",
		"CapEff":                "0x1000",
	}
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s: %q, want %q", name, g, w)
		}
	}
}

// TestEngineRuntime shows that a confined engine still runs Go normally
// and uses the descriptors it was given.
func TestEngineRuntime(t *testing.T) {
	requireRoot(t)
	dir := sharedDir(t, 0)

	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	sockPath := filepath.Join(dir, "engine.sock")
	ln, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnFile, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	udpFile := os.NewFile(uintptr(udp), "udp")
	defer udpFile.Close()
	recv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()

	// The parent's side of the conversation, while the child runs.
	if _, err := pipeW.WriteString("hello from the parent"); err != nil {
		t.Fatal(err)
	}
	pipeW.Close()
	unixReply := make(chan string, 1)
	go func() {
		c, err := net.DialTimeout("unix", sockPath, childTimeout)
		if err != nil {
			unixReply <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(childTimeout))
		c.Write([]byte("ping"))
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil {
			unixReply <- err.Error()
			return
		}
		unixReply <- string(b[:n])
	}()
	udpGot := make(chan string, 1)
	go func() {
		recv.SetReadDeadline(time.Now().Add(childTimeout))
		b := make([]byte, 64)
		n, _, err := recv.ReadFrom(b)
		if err != nil {
			udpGot <- err.Error()
			return
		}
		udpGot <- string(b[:n])
	}()

	c := unprivileged()
	c.Files = []*os.File{pipeR, lnFile, udpFile}
	var rep runtimeReport
	decode(t, runChild(t, "engine-runtime", c, envAddr+"="+recv.LocalAddr().String()), &rep)

	if rep.Goroutines != 200 {
		t.Errorf("%d goroutines ran, want 200", rep.Goroutines)
	}
	if !rep.TimerFired || rep.Ticks != 3 || !rep.TimeForward {
		t.Errorf("timers: fired %v, ticks %d, time went forward %v", rep.TimerFired, rep.Ticks, rep.TimeForward)
	}
	if rep.GCs == 0 {
		t.Error("no garbage collection ran")
	}
	if rep.Pipe != "hello from the parent" {
		t.Errorf("pipe: %q", rep.Pipe)
	}
	seen := map[int]bool{}
	for _, tid := range rep.ThreadTIDs {
		seen[tid] = true
	}
	if len(rep.ThreadTIDs) != 8 || len(seen) != 8 {
		t.Errorf("locked goroutines ran on threads %v, want 8 distinct", rep.ThreadTIDs)
	}
	if rep.Unix != "ping" {
		t.Errorf("unix: child read %q", rep.Unix)
	}
	if g := <-unixReply; g != "pong:ping" {
		t.Errorf("unix: parent read %q", g)
	}
	if g := <-udpGot; g != "hello over udp" {
		t.Errorf("udp: parent read %q", g)
	}
	checkEmpty(t, "engine", rep.Status)
	if rep.Status.Seccomp != SeccompFilter {
		t.Errorf("Seccomp %d", rep.Status.Seccomp)
	}
	if rep.Threads < 2 || len(rep.ThreadsSeccomp) != 0 {
		t.Errorf("%d threads, of which without a filter: %v", rep.Threads, rep.ThreadsSeccomp)
	}
}

// TestLandlock shows that landlock leaves exactly the listed paths
// reachable, on every thread, where the filter and file permissions alone
// would let everything through.
func TestLandlock(t *testing.T) {
	requireRoot(t)
	ro, rw := sharedDir(t, nobody), sharedDir(t, nobody)
	writeFile(t, filepath.Join(ro, "file"), "read only", nobody)
	var got map[string]string
	decode(t, runChild(t, "landlock", unprivileged(), envDir+"="+ro, envDir2+"="+rw), &got)
	want := map[string]string{
		"read ro/file":                "ok",
		"list ro":                     "ok",
		"read /etc/hostname":          "EACCES",
		"list /":                      "EACCES",
		"write ro/file":               "EACCES",
		"create ro/new":               "EACCES",
		"remove ro/file":              "EACCES",
		"write rw/tmp and rename":     "ok",
		"read rw/renamed":             "ok",
		"thread 0 read /etc/hostname": "EACCES",
		"thread 1 read /etc/hostname": "EACCES",
		"thread 2 read /etc/hostname": "EACCES",
		"thread 3 read /etc/hostname": "EACCES",
		"thread 4 read /etc/hostname": "EACCES",
		"thread 5 read /etc/hostname": "EACCES",
	}
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s: %q, want %q", name, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("child reported %d results, want %d: %v", len(got), len(want), got)
	}
	if b, err := os.ReadFile(filepath.Join(ro, "file")); err != nil || string(b) != "read only" {
		t.Errorf("ro/file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Error("ro/new was created")
	}
	if b, err := os.ReadFile(filepath.Join(rw, "renamed")); err != nil || string(b) != "written" {
		t.Errorf("rw/renamed: %q, %v", b, err)
	}
}

// TestSupervisor confines a supervisor, which then starts an engine that
// confines itself under the supervisor's filter.
func TestSupervisor(t *testing.T) {
	requireRoot(t)
	keep := []Cap{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SETPCAP, unix.CAP_KILL}
	var rep supervisorReport
	decode(t, runChild(t, "supervisor", Child{Keep: keep}), &rep)
	if rep.Status.Seccomp != SeccompFilter {
		t.Errorf("supervisor: Seccomp %d", rep.Status.Seccomp)
	}
	if rep.Status.CapEff != CapMask(keep...) {
		t.Errorf("supervisor: CapEff %#x, want %#x", rep.Status.CapEff, CapMask(keep...))
	}
	if rep.EngineExit != "exit status 0" {
		t.Fatalf("engine: %s\nstdout:\n%s\nstderr:\n%s", rep.EngineExit, rep.Engine, rep.EngineStderr)
	}
	var es Status
	if err := json.Unmarshal([]byte(rep.Engine), &es); err != nil {
		t.Fatalf("engine report %q: %v", rep.Engine, err)
	}
	checkEmpty(t, "engine", es)
	if es.Seccomp != SeccompFilter {
		t.Errorf("engine: Seccomp %d", es.Seccomp)
	}
	if !strings.Contains(rep.StartNetAdmin, "not in this process's bounding set") {
		t.Errorf("starting a child that keeps CAP_NET_ADMIN: %q, want a refusal", rep.StartNetAdmin)
	}
	if rep.SocketInet6 != "EPERM" {
		t.Errorf("supervisor: socket(AF_INET6): %s, want EPERM", rep.SocketInet6)
	}
}

// TestConfineRefusesPrivileged shows that an engine that still holds a
// privilege refuses to confine itself (and so to run).
func TestConfineRefusesPrivileged(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name  string
		child Child
		want  string
	}{
		{"root", Child{NoNewPrivs: true}, "user ID 1 of 4 is root"},
		{"root group", Child{UID: nobody, NoNewPrivs: true}, "group ID 1 of 4 is root"},
		{"no no_new_privs", Child{UID: nobody, GID: nobody}, "no_new_privs is not set"},
		// What the bounding set still names, no_new_privs keeps from
		// ever coming back: a container without CAP_SETPCAP leaves it so.
		{"bounding set under no_new_privs", Child{UID: nobody, GID: nobody, NoNewPrivs: true, Keep: []Cap{unix.CAP_NET_ADMIN}}, "ok"},
		{"nothing", unprivileged(), "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			decode(t, runChild(t, "expect-unprivileged", tt.child), &got)
			if !strings.Contains(got, tt.want) {
				t.Errorf("Confine: %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDropAllThreadsLeavingBounding: a root process without CAP_SETPCAP
// cannot drop from its bounding set, and says so; it can drop everything
// else, leaving the bounding set as it was.
func TestDropAllThreadsLeavingBounding(t *testing.T) {
	requireRoot(t)
	child := Child{Keep: []Cap{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}}
	var r dropReport
	decode(t, runChild(t, "drop-all-threads", child), &r)
	if !strings.Contains(r.Err, "operation not permitted") {
		t.Errorf("DropAllThreads without CAP_SETPCAP: %q, want a refusal", r.Err)
	}
	r = dropReport{}
	decode(t, runChild(t, "drop-all-threads-leaving-bounding", child), &r)
	if r.Err != "" {
		t.Fatalf("DropAllThreadsLeavingBounding: %s", r.Err)
	}
	const want = uint64(1) << unix.CAP_NET_ADMIN
	const bounding = want | 1<<unix.CAP_NET_RAW
	for i, s := range append(r.Threads, r.NewAfter) {
		if s.CapPrm != want || s.CapEff != want || s.CapBnd != bounding || s.CapInh != 0 || s.CapAmb != 0 {
			t.Errorf("thread %d: CapInh %#x CapPrm %#x CapEff %#x CapBnd %#x CapAmb %#x, want %#x and bounding %#x", i, s.CapInh, s.CapPrm, s.CapEff, s.CapBnd, s.CapAmb, want, bounding)
		}
	}
}

// TestDropAllThreads drops a root process's capabilities without an exec
// and checks every thread, those that existed before and one made after.
func TestDropAllThreads(t *testing.T) {
	requireRoot(t)
	var r dropReport
	// It starts as root with three capabilities and keeps one, without
	// CAP_SETPCAP: a thread asked twice must not need it.
	decode(t, runChild(t, "drop-all-threads", Child{Keep: []Cap{unix.CAP_NET_ADMIN, unix.CAP_SETPCAP, unix.CAP_NET_RAW}}), &r)
	if r.Err != "" {
		t.Fatalf("DropAllThreads: %s", r.Err)
	}
	const want = uint64(1) << unix.CAP_NET_ADMIN
	if len(r.Threads) < 6 {
		t.Fatalf("saw %d threads, want at least the 6 locked ones", len(r.Threads))
	}
	for i, s := range append(r.Threads, r.NewAfter) {
		if s.CapPrm != want || s.CapEff != want || s.CapBnd != want || s.CapInh != 0 || s.CapAmb != 0 {
			t.Errorf("thread %d: CapInh %#x CapPrm %#x CapEff %#x CapBnd %#x CapAmb %#x, want %#x", i, s.CapInh, s.CapPrm, s.CapEff, s.CapBnd, s.CapAmb, want)
		}
	}
	for _, w := range r.Workers {
		if w != "eff 0x1000 prm 0x1000 inh 0x0" {
			t.Errorf("a locked thread reports %q", w)
		}
	}
}
