package testnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL: long
	// enough for a DHCP client to send its RELEASE, short enough not to
	// stall a test on a daemon that ignores SIGTERM.
	stopGrace = 5 * time.Second
	// waitDelay bounds how long Wait keeps reading output after the process
	// has exited, should a grandchild hold the pipe open.
	waitDelay = 2 * time.Second
	// maxLog bounds the memory a chatty daemon's log takes: past it, the
	// oldest half is dropped.
	maxLog = 32 << 20
	// failureTail is how much of a process's log a failed test prints.
	failureTail = 8 << 10
)

// ErrRunning is returned by Proc.Wait when the process is still running
// after the timeout.
var ErrRunning = errors.New("still running")

// Proc is a background process started by [Net.Start] or [StartCommand]. Its
// standard output and standard error go, interleaved, into one log that a
// test can read and wait on while the process runs.
type Proc struct {
	name string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{} // closed once the process has exited and its output is drained
	err  error         // the result of cmd.Wait, set before done is closed
}

// StartCommand starts cmd in the background and registers a cleanup that
// stops it (SIGTERM, then SIGKILL) and, if the test failed, logs the tail of
// its output. cmd's Stdout and Stderr must be unset: they become the Proc's
// log. It is the way to start a command that needs its own environment or
// working directory; [Net.Command] builds one that runs in a namespace.
func StartCommand(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	return startCommand(t, cmd, nil)
}

// StartCommandOn is StartCommand for a child that must inherit what is a
// thread's own (a network namespace entered with setns, a smaller bounding
// set): prepare runs first on a thread locked for the purpose, the child is
// started from it, and the thread lives as long as the child (a
// parent-death signal fires when it exits), then is discarded.
func StartCommandOn(t testing.TB, cmd *exec.Cmd, prepare func() error) *Proc {
	t.Helper()
	return startCommand(t, cmd, prepare)
}

func startCommand(t testing.TB, cmd *exec.Cmd, prepare func() error) *Proc {
	t.Helper()
	if cmd.Stdout != nil || cmd.Stderr != nil {
		t.Fatalf("testnet: StartCommand(%s): Stdout and Stderr must be unset", cmd)
	}
	p := &Proc{
		name: cmd.String(),
		cmd:  cmd,
		log:  newLogBuffer(),
		done: make(chan struct{}),
	}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	cmd.WaitDelay = waitDelay
	started := make(chan error)
	go func() {
		if prepare != nil {
			runtime.LockOSThread() // never unlocked: the thread is no longer like the others
			if err := prepare(); err != nil {
				started <- err
				return
			}
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("testnet: starting %s: %v", p.name, err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			out := p.Output()
			if len(out) > failureTail {
				out = append([]byte("[...]\n"), out[len(out)-failureTail:]...)
			}
			t.Logf("output of %s (pid %d, %s):\n%s", p.name, p.Pid(), p.state(), out)
		}
	})
	return p
}

// Pid returns the process ID, valid in the isolated test's PID namespace.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// String returns the command line.
func (p *Proc) String() string { return p.name }

// Done returns a channel closed when the process has exited and its output
// has been read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode returns the exit code, or -1 while the process runs or if a
// signal ended it.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Wait waits up to timeout for the process to exit and returns what
// exec.Cmd.Wait returned (nil for exit status 0), or an error wrapping
// ErrRunning if the process is still running.
func (p *Proc) Wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return fmt.Errorf("%s: %w after %v", p.name, ErrRunning, timeout)
	}
}

// Signal sends sig to the process; it is a no-op once the process has exited.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.name, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to five seconds, then sends SIGKILL, and
// returns what Wait returns once the process has gone. Stopping a process that
// has already exited just returns its result.
func (p *Proc) Stop() error {
	if p.Exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(stopGrace); !errors.Is(err, ErrRunning) {
		return err
	}
	return p.Kill()
}

// Kill sends SIGKILL and returns what Wait returns once the process has gone.
func (p *Proc) Kill() error {
	if p.Exited() {
		return p.err
	}
	_ = p.cmd.Process.Kill()
	// SIGKILL cannot be caught, and waitDelay bounds the output drain, so
	// this returns; the bound only guards against the impossible.
	return p.Wait(stopGrace + waitDelay)
}

// Output returns a copy of the log so far (standard output and error,
// interleaved). Past 32 MiB the oldest half is dropped.
func (p *Proc) Output() []byte {
	data, _, _ := p.log.snapshot()
	return bytes.Clone(data)
}

// Mark returns a position in the log, for WaitLogAfter: what is logged from
// now on comes after it.
func (p *Proc) Mark() int {
	data, start, _ := p.log.snapshot()
	return start + len(data)
}

// WaitLog waits up to timeout for substr to appear anywhere in the log. It
// returns false if the time runs out or the process exits without logging it.
func (p *Proc) WaitLog(substr string, timeout time.Duration) bool {
	return p.WaitLogAfter(0, substr, timeout)
}

// WaitLogAfter is WaitLog for what is logged after mark (from Mark): a new
// renewal, say, rather than the first one.
func (p *Proc) WaitLogAfter(mark int, substr string, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// Each round waits for a write, the exit or the timer: the number of
	// rounds is bounded by the number of writes before the deadline.
	for {
		data, start, changed := p.log.snapshot()
		from := max(mark-start, 0)
		if from <= len(data) && bytes.Contains(data[from:], []byte(substr)) {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			// The output is drained once done is closed: one last look.
			data, start, _ := p.log.snapshot()
			from := max(mark-start, 0)
			return from <= len(data) && bytes.Contains(data[from:], []byte(substr))
		case <-timer.C:
			return false
		}
	}
}

// state describes the process for a failure message.
func (p *Proc) state() string {
	if !p.Exited() {
		return "running"
	}
	if p.err == nil {
		return "exited 0"
	}
	return strings.TrimSpace(p.err.Error())
}

// logBuffer collects a process's output and wakes up those waiting on it.
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int           // bytes dropped from the front, to keep positions absolute
	changed chan struct{} // closed, and replaced, on every write
}

func newLogBuffer() *logBuffer {
	return &logBuffer{changed: make(chan struct{})}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > maxLog {
		n := len(b.buf) - maxLog/2
		// A new array: snapshots still read the old one.
		b.buf = bytes.Clone(b.buf[n:])
		b.dropped += n
	}
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns the buffer (not to be modified), the absolute position of
// its first byte, and a channel closed on the next write.
func (b *logBuffer) snapshot() (data []byte, start int, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf[:len(b.buf):len(b.buf)], b.dropped, b.changed
}

// WaitFor polls cond every 100 ms for up to timeout, and reports whether
// it held.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
