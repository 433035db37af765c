package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// selfExe is the binary every stage and child runs: the one running now,
// whatever its name or location, even if it was replaced on disk.
const selfExe = "/proc/self/exe"

// Child describes a process for Start to run.
type Child struct {
	Args []string // Args[0] is argv0, what ps shows
	Path string   // the binary; empty means /proc/self/exe (the supervisor names engine-exec)
	Env  []string

	Files  []*os.File // become descriptors 3, 4, ... in the child
	Stdin  io.Reader  // nil means /dev/null, as with os/exec
	Stdout io.Writer
	Stderr io.Writer

	// UID and GID are the credentials the child runs with; 0, 0 keeps root.
	// A child with other credentials has no supplementary groups.
	UID, GID uint32

	// Keep is what the child's bounding set holds; every other capability
	// is dropped from it. A root child therefore runs with exactly Keep as
	// its permitted and effective sets; any other child has none at all.
	// Start fails if the caller's bounding set lacks one of them.
	Keep []Cap

	// LeaveBounding leaves the bounding set as it is, for a caller that
	// cannot drop from it (no CAP_SETPCAP): a root child then starts with
	// the whole bounding set and must drop to Keep itself, as a child that
	// takes its user from a set-user-ID file (NoNewPrivs unset) must.
	LeaveBounding bool

	// NoNewPrivs sets no_new_privs on the child.
	NoNewPrivs bool
}

// Process is a child started by Start.
type Process struct {
	Pid int

	done  chan struct{}
	state *os.ProcessState
	err   error
	proc  *os.Process
	pidfd *os.File // nil if the kernel has none
}

// Start starts c and returns once the new program is running (its execve
// has succeeded).
//
// The capability sets and no_new_privs are attributes of a thread, and a
// child inherits those of the thread that forks it. Start therefore forks
// from a goroutine locked to a fresh OS thread on which it first restricts
// these attributes. That thread stays locked while the child lives, since
// the child's parent-death signal (SIGKILL) fires when the thread that
// created it exits; once the child has been reaped the goroutine returns
// without unlocking, and the Go runtime discards the thread rather than
// reuse it for other goroutines.
func Start(c Child) (*Process, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("sandbox: start: no argv0")
	}
	p := &Process{done: make(chan struct{})}
	started := make(chan error, 1)
	go p.run(c, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// run forks c on its own locked thread, reports the outcome of the start on
// started and, if it succeeded, waits for the child.
func (p *Process) run(c Child, started chan<- error) {
	runtime.LockOSThread()
	// No UnlockOSThread: this thread's capabilities and no_new_privs differ
	// from the other threads' from now on.

	if err := restrictThread(c.Keep, c.LeaveBounding, c.NoNewPrivs); err != nil {
		started <- fmt.Errorf("sandbox: start %s: %w", c.Args[0], err)
		return
	}
	path := c.Path
	if path == "" {
		path = selfExe
	}
	cmd := &exec.Cmd{
		Path:       path,
		Args:       c.Args,
		Env:        c.Env,
		Stdin:      c.Stdin,
		Stdout:     c.Stdout,
		Stderr:     c.Stderr,
		ExtraFiles: c.Files,
		SysProcAttr: &syscall.SysProcAttr{
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if cmd.Env == nil {
		// os/exec reads a nil Env as "inherit ours"; a child gets only
		// what it is given.
		cmd.Env = []string{}
	}
	if c.UID != 0 || c.GID != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{
			Uid:    c.UID,
			Gid:    c.GID,
			Groups: []uint32{}, // setgroups(0, NULL): no supplementary groups
		}
	}
	if err := cmd.Start(); err != nil {
		started <- fmt.Errorf("sandbox: start %s: %w", c.Args[0], err)
		return
	}
	p.Pid = cmd.Process.Pid
	p.proc = cmd.Process
	// Opened before anyone can reap the child, so it names this child
	// and no later holder of its PID.
	if fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK); err == nil {
		p.pidfd = os.NewFile(uintptr(fd), "pidfd")
	}
	started <- nil

	err := cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = nil // the exit status is in the ProcessState
	}
	if err != nil {
		err = fmt.Errorf("sandbox: wait for %s (pid %d): %w", c.Args[0], p.Pid, err)
	}
	p.state, p.err = cmd.ProcessState, err
	close(p.done)
}

// PidFD returns a pidfd of the child: a descriptor that names it and no
// later process of the same PID, for another process to signal it with.
// The caller closes it.
func (p *Process) PidFD() (*os.File, error) {
	if p.pidfd == nil {
		return nil, fmt.Errorf("sandbox: pid %d: no pidfd", p.Pid)
	}
	fd, err := unix.FcntlInt(p.pidfd.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox: pid %d: dup pidfd: %w", p.Pid, err)
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// Wait waits for the child to exit and returns its state. An exit with a
// non-zero status or by a signal is not an error: it is in the state. Wait
// may be called from any goroutine, and more than once.
func (p *Process) Wait() (*os.ProcessState, error) {
	<-p.done
	return p.state, p.err
}

// Done returns a channel that is closed once the child has exited and been
// reaped.
func (p *Process) Done() <-chan struct{} {
	return p.done
}

// Signal sends sig to the child. It fails with os.ErrProcessDone once the
// child has been reaped, so it never signals a stranger that reused the
// PID.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.proc.Signal(sig); err != nil {
		return fmt.Errorf("sandbox: signal pid %d: %w", p.Pid, err)
	}
	return nil
}
