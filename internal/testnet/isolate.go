// Package testnet is the harness for integration tests against real network
// peers: DHCP servers such as dnsmasq and kea run in network namespaces that
// the test creates, joined to a client namespace by a veth pair, and the
// client under test runs in the other end.
//
// Nothing of the host is written. [Isolate] re-executes the test binary as
// the first process of new PID, mount and UTS namespaces, with every mount
// private, a fresh /proc, an empty tmpfs on /run (where `ip netns` keeps its
// handles), TMPDIR on a tmpfs of its own, and a private copy of
// /etc/resolv.conf. Every namespace, daemon and file a test creates is
// removed by its t.Cleanup, and should a test binary die half-way, the kernel
// removes the rest: the PID namespace takes every process with it, and with
// them the mount namespace that holds the network namespaces and the
// temporary files.
//
// A package that uses testnet runs its tests through Isolate:
//
//	func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }
package testnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
)

// isolatedEnv marks the re-executed test binary, so that it runs the tests
// instead of re-executing itself again.
const isolatedEnv = "DYAD_TESTNET_ISOLATED"

// privateTmp is TMPDIR in the isolated test binary.
const privateTmp = "/run/testnet/tmp"

// Isolate runs the tests of m in their own PID, mount and UTS namespaces and
// returns the exit code for os.Exit. Call it from TestMain.
//
// Run as root outside such namespaces, it re-executes the test binary inside
// new ones and returns the child's status; inside them (the child), it
// prepares the mounts and returns m.Run(). Run by a user other than root, it
// returns m.Run() unchanged: tests that need root then skip, or fail under
// CI=true, through [RequireRoot].
func Isolate(m *testing.M) int {
	if os.Getenv(isolatedEnv) == "1" {
		if err := setUpInside(); err != nil {
			fmt.Fprintf(os.Stderr, "testnet: setting up the isolated test process: %v\n", err)
			return 1
		}
		return m.Run()
	}
	if os.Geteuid() != 0 {
		return m.Run()
	}
	code, err := reexec()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testnet: %v\n", err)
		return 1
	}
	return code
}

// reexec runs the test binary again, with the same arguments, as PID 1 of a
// new PID namespace with its own mount and UTS namespaces, and returns its
// exit code.
func reexec() (int, error) {
	// The child must die with us, and Pdeathsig fires when the creating
	// thread exits, not the process: keep this goroutine on its thread for
	// good. Isolate returns only for os.Exit.
	runtime.LockOSThread()

	cmd := &exec.Cmd{
		Path:   "/proc/self/exe",
		Args:   os.Args,
		Env:    append(os.Environ(), isolatedEnv+"=1"),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			// With CLONE_NEWNS in Unshareflags, the runtime also makes
			// every mount private in the child before it executes.
			Cloneflags:   syscall.CLONE_NEWPID,
			Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
			Pdeathsig:    syscall.SIGKILL,
		},
	}
	// Relay the signals a user or `go test` sends, so the child's own
	// handlers (a goroutine dump on SIGQUIT, say) run, and its cleanups
	// with them.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("re-executing the test binary in new PID, mount and UTS namespaces (needs CAP_SYS_ADMIN): %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	default:
		return 0, fmt.Errorf("waiting for the isolated test binary: %w", err)
	}
}

// setUpInside prepares the mounts of the re-executed test binary: the
// runtime has already made every mount private.
func setUpInside() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("%s is set but this is not the first process of a PID namespace (pid %d)", isolatedEnv, os.Getpid())
	}
	// Belt and braces: nothing mounted here may propagate to the host.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	// A /proc of this PID namespace, so that PIDs mean the same thing in
	// /proc as in the processes the tests start.
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	// Read the host's resolv.conf before /run is hidden: it may live there.
	resolv, resolvErr := os.ReadFile("/etc/resolv.conf")
	// `ip netns add` keeps its namespace handles in /run/netns, and daemons
	// write pid files and sockets under /run: give them an empty tmpfs.
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=64m"); err != nil {
		return fmt.Errorf("mounting a tmpfs on /run: %w", err)
	}
	for _, dir := range []string{"/run/netns", "/run/lock", "/run/testnet", privateTmp} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	// Temporary files go to a tmpfs of this mount namespace, which the
	// kernel frees with it: a test binary killed half-way (by a timeout,
	// say) leaves nothing behind in the host's /tmp. /tmp itself stays, so
	// that paths into it (a checkout, a DYAD_BIN) keep working.
	if err := syscall.Mount("tmpfs", privateTmp, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", privateTmp, err)
	}
	// POSIX shared memory and semaphores too (faketime's wrapper names
	// its own by PID, which repeat from one PID namespace to the next).
	if err := syscall.Mount("tmpfs", "/dev/shm", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting a tmpfs on /dev/shm: %w", err)
	}
	if err := os.Setenv("TMPDIR", privateTmp); err != nil {
		return fmt.Errorf("setting TMPDIR: %w", err)
	}
	// A private resolv.conf, so that a client under test that writes the
	// real path by mistake changes only this copy. Only a regular file can
	// be covered so; a symbolic link is left alone.
	if fi, err := os.Lstat("/etc/resolv.conf"); err == nil && fi.Mode().IsRegular() && resolvErr == nil {
		const copyPath = "/run/testnet/resolv.conf"
		if err := os.WriteFile(copyPath, resolv, 0o644); err != nil {
			return fmt.Errorf("copying /etc/resolv.conf: %w", err)
		}
		if err := syscall.Mount(copyPath, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("covering /etc/resolv.conf with a private copy: %w", err)
		}
	}
	return nil
}

// isolated reports whether this process runs inside the namespaces that
// Isolate creates.
func isolated() bool {
	return os.Getenv(isolatedEnv) == "1" && os.Getpid() == 1
}

// RequireRoot skips the test when the process is not root, or fails it under
// CI=true, where a missing privilege means a broken set-up rather than a
// developer's unprivileged run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "this test needs root")
	}
}

// RequireTools skips the test when one of the named programs is not on PATH,
// or fails it under CI=true, where `make deps` should have installed it.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			Unavailable(t, fmt.Sprintf("this test needs %s (run `make deps`): %v", name, err))
		}
	}
}

// RequireIsolated is RequireRoot plus a check that the test runs inside
// Isolate's namespaces, failing with instructions otherwise: a test that
// creates namespaces outside them would leave its mounts on the host.
func RequireIsolated(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if !isolated() {
		t.Fatal("testnet: the package's TestMain must run the tests through testnet.Isolate: func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }")
	}
}

// Unavailable skips a test that lacks a tool, root or the network, or
// fails it under CI=true, where that means a broken set-up.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (failing rather than skipping under CI=true)")
	}
	t.Skip(why)
}
