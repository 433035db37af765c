package initd

import (
	"context"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runReaper runs a reaper for the test. The test process may be PID 1 of
// its namespace: the reaper reaps every child, so the test starts none
// with os/exec while it runs.
func runReaper(t *testing.T) *Reaper {
	t.Helper()
	r := NewReaper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func recv(t *testing.T, c <-chan unix.WaitStatus, what string) unix.WaitStatus {
	t.Helper()
	select {
	case ws := <-c:
		return ws
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no exit status after 10 s", what)
		return 0
	}
}

func none(t *testing.T, c <-chan unix.WaitStatus, what string) {
	t.Helper()
	select {
	case ws := <-c:
		t.Errorf("%s: got status %v, want none", what, describeExit(ws))
	case <-time.After(100 * time.Millisecond):
	}
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestReaperStart(t *testing.T) {
	r := runReaper(t)
	for _, tc := range []struct {
		script, want string
	}{
		{"exit 0", "exited 0"},
		{"exit 3", "exited 3"},
		{"kill -TERM $$", "killed by SIGTERM"},
	} {
		_, c, err := r.Start(sh(tc.script), &syscall.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		if got := describeExit(recv(t, c, tc.script)); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.script, got, tc.want)
		}
	}
	if _, _, err := r.Start([]string{"/nonexistent"}, &syscall.ProcAttr{}); err == nil {
		t.Error("starting /nonexistent: no error")
	}
}

// TestReaperBeforeWait is the container's case: the process exits, and is
// reaped, before the waiter has read its pid from runc's pid file.
func TestReaperBeforeWait(t *testing.T) {
	r := runReaper(t)
	mark := r.Mark()
	// Started outside the registry, like a container runc leaves behind.
	pid, err := syscall.ForkExec("/bin/sh", sh("exit 7"), &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "reaped", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.unclaimed[pid]
		return ok
	})
	if got := describeExit(recv(t, r.Wait(pid, mark), "early exit")); got != "exited 7" {
		t.Errorf("early exit: %s, want exited 7", got)
	}
	// Claimed once: a second waiter for the same pid gets nothing.
	none(t, r.Wait(pid, mark), "second claim")
}

func TestReaperStalePid(t *testing.T) {
	r := NewReaper()
	r.mu.Lock()
	r.deliver(4242, unix.WaitStatus(5<<8))
	r.mu.Unlock()
	// The exit came before the mark: it belongs to an earlier process
	// that had the same pid, not to the one waited for now.
	mark := r.Mark()
	c := r.Wait(4242, mark)
	none(t, c, "stale exit")
	r.mu.Lock()
	r.deliver(4242, unix.WaitStatus(6<<8))
	r.mu.Unlock()
	if got := describeExit(recv(t, c, "fresh exit")); got != "exited 6" {
		t.Errorf("fresh exit: %s, want exited 6", got)
	}
}

func TestReaperTwoWaiters(t *testing.T) {
	r := runReaper(t)
	a, err := syscall.ForkExec("/bin/sh", sh("sleep 0.5; exit 1"), &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := syscall.ForkExec("/bin/sh", sh("sleep 0.2; exit 2"), &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	mark := r.Mark()
	a1, a2, bw := r.Wait(a, mark), r.Wait(a, mark), r.Wait(b, mark)
	for _, tc := range []struct {
		c    <-chan unix.WaitStatus
		want string
	}{{a1, "exited 1"}, {bw, "exited 2"}, {a2, "exited 1"}} {
		if got := describeExit(recv(t, tc.c, tc.want)); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
}

func TestReaperUnclaimedBound(t *testing.T) {
	r := NewReaper()
	r.mu.Lock()
	for pid := 1; pid <= maxUnclaimed+100; pid++ {
		r.deliver(pid, 0)
	}
	n := len(r.unclaimed)
	_, oldest := r.unclaimed[1]
	_, newest := r.unclaimed[maxUnclaimed+100]
	r.mu.Unlock()
	if n != maxUnclaimed || oldest || !newest {
		t.Errorf("kept %d exits (oldest %v, newest %v), want %d, the newest", n, oldest, newest, maxUnclaimed)
	}
}
