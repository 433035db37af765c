package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

const engineID = 2101

// built is engine-exec, built once for every test.
var built struct {
	once sync.Once
	bin  []byte
	err  error
}

// setup builds engine-exec into a tmpfs of this test's mount namespace
// mounted without nosuid, owned by the engine's user with the set-ID bits,
// as the image holds it; and a root-owned copy without them.
func setup(t *testing.T) (launcher, plain string) {
	t.Helper()
	testnet.RequireIsolated(t)
	dir := t.TempDir()
	// The engine's user must reach what it runs: open the test's own
	// temporary directory to it.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	built.once.Do(func() {
		bin := filepath.Join(os.TempDir(), "engine-exec-test")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.bin, built.err = os.ReadFile(bin)
		os.Remove(bin)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	b := built.bin
	plain = filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, b, 0o755); err != nil {
		t.Fatal(err)
	}
	launcher = filepath.Join(dir, "engine-exec")
	if err := os.WriteFile(launcher, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(launcher, engineID, engineID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(launcher, 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	return launcher, plain
}

// asRoot runs name as root with the given supplementary groups.
func asRoot(groups []uint32, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: groups}}
	return cmd
}

func TestExecAsTheEngine(t *testing.T) {
	launcher, _ := setup(t)
	out, err := asRoot([]uint32{}, launcher, "exec", "/bin/cat", "cat", "/proc/self/status").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	status := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, ":")
		status[k] = strings.Join(strings.Fields(v), " ")
	}
	want := map[string]string{
		"Uid": "2101 2101 2101 2101", "Gid": "2101 2101 2101 2101", "Groups": "",
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapAmb": "0000000000000000", "NoNewPrivs": "1",
	}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("%s: %q, want %q", k, status[k], v)
		}
	}
}

func TestRefuses(t *testing.T) {
	launcher, plain := setup(t)
	dir := filepath.Dir(launcher)
	writable := filepath.Join(dir, "writable")
	setid := filepath.Join(dir, "setid")
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{writable, 0o777}, {setid, 0o755 | os.ModeSetuid}} {
		b, _ := os.ReadFile("/bin/true")
		if err := os.WriteFile(p.path, b, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p.path, p.mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		groups []uint32
		args   []string
		want   string
	}{
		{"not set-user-ID", []uint32{}, []string{plain, "exec", "/bin/true", "true"}, "must be set-user-ID"},
		{"supplementary groups", []uint32{0, 4}, []string{launcher, "exec", "/bin/true", "true"}, "supplementary groups [0 4]"},
		{"a program others may write", []uint32{}, []string{launcher, "exec", writable, "w"}, "only root may be able to write it"},
		{"a set-user-ID program", []uint32{}, []string{launcher, "exec", setid, "s"}, "set-user-ID or set-group-ID"},
		{"a relative path", []uint32{}, []string{launcher, "exec", "bin/true", "true"}, "not an absolute path"},
		{"no such command", []uint32{}, []string{launcher, "frob", "x"}, `"frob": want exec or kill`},
		{"a signal that is no number", []uint32{}, []string{launcher, "kill", "KILL"}, "not a signal number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := asRoot(tc.groups, tc.args[0], tc.args[1:]...)
			cmd.Dir = "/" // where bin/true exists
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("err %v, output %q; want a failure saying %q", err, out, tc.want)
			}
		})
	}
}

// TestOnlyRoot: run by anyone but root, it refuses, since it would give
// that user the engine's.
func TestOnlyRoot(t *testing.T) {
	launcher, _ := setup(t)
	cmd := exec.Command(launcher, "exec", "/bin/true", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only root may run this") {
		t.Fatalf("err %v, output %q; want a refusal", err, out)
	}
}

// TestKill: the engine's user may signal the engine, and nothing else.
func TestKill(t *testing.T) {
	launcher, _ := setup(t)
	for _, tc := range []struct {
		name    string
		uid     uint32
		killed  bool
		message string
	}{
		{"the engine's process", engineID, true, ""},
		{"a root process", 0, false, "operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := exec.Command("sleep", "30")
			victim.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.uid, Groups: []uint32{}}}
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- victim.Wait() }()
			t.Cleanup(func() { victim.Process.Kill(); <-done })
			fd, err := unix.PidfdOpen(victim.Process.Pid, 0)
			if err != nil {
				t.Fatal(err)
			}
			pidfd := os.NewFile(uintptr(fd), "pidfd")
			defer pidfd.Close()
			kill := asRoot([]uint32{}, launcher, "kill", "9")
			kill.ExtraFiles = []*os.File{pidfd}
			out, err := kill.CombinedOutput()
			if tc.killed {
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				select {
				case err := <-done:
					if ws := victim.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
						t.Errorf("the engine's process ended with %v, want SIGKILL", err)
					}
					done <- err
				case <-time.After(10 * time.Second):
					t.Fatal("the engine's process still runs")
				}
				return
			}
			if err == nil || !strings.Contains(string(out), tc.message) {
				t.Fatalf("err %v, output %q; want a refusal saying %q", err, out, tc.message)
			}
			select {
			case <-done:
				t.Fatal("a root process was killed")
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}
