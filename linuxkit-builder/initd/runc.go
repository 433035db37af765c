package initd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// runcTimeout bounds one runc command; under software emulation a
	// create takes a second or two.
	runcTimeout = 2 * time.Minute
	// killWait bounds the wait for a process after SIGKILL.
	killWait = 5 * time.Second
	// drainWait bounds the wait for the last lines of a process's output
	// once it has exited: a descendant that kept the pipe must not hold
	// init up.
	drainWait = 2 * time.Second
)

// errTimeout is the error of a process that outlived its time.
var errTimeout = errors.New("timed out")

// runc runs runc's commands. Each runs with stdin /dev/null and stdout and
// stderr a pipe whose lines go to the console prefixed with the
// container's name; for `runc create` that pipe becomes the container's
// own stdout and stderr.
type runc struct {
	path   string // the binary, /usr/bin/runc
	root   string // runc's state directory (--root), /run/runc
	env    []string
	reaper *Reaper
	con    *Console
}

// proc is a process that init started.
type proc struct {
	pid    int
	exited <-chan unix.WaitStatus
	copied <-chan struct{} // closed once its output reached EOF
}

// spawn starts runc with args, its output going to the console under name.
func (rc *runc) spawn(name string, args ...string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	stdin := ^uintptr(0) // closed, if /dev/null will not open
	if null, err := os.Open(os.DevNull); err == nil {
		defer null.Close()
		stdin = null.Fd()
	}
	argv := append([]string{rc.path, "--root", rc.root}, args...)
	pid, exited, err := rc.reaper.Start(argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   rc.env,
		Files: []uintptr{stdin, w.Fd(), w.Fd()},
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer r.Close()
		rc.con.CopyLines(name, r)
	}()
	return &proc{pid: pid, exited: exited, copied: copied}, nil
}

// wait waits for p to exit, at most until ctx ends or timeout passes;
// then it kills p and waits killWait more.
func (p *proc) wait(ctx context.Context, timeout time.Duration) (unix.WaitStatus, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case ws := <-p.exited:
		return ws, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = errTimeout
	}
	_ = unix.Kill(p.pid, unix.SIGKILL)
	if ws, ok := waitExit(p.exited, killWait); ok {
		return ws, err
	}
	return 0, fmt.Errorf("%w, and still there %v after SIGKILL", err, killWait)
}

// waitExit waits at most d for a process's exit status.
func waitExit(exited <-chan unix.WaitStatus, d time.Duration) (unix.WaitStatus, bool) {
	select {
	case ws := <-exited:
		return ws, true
	case <-time.After(d):
		return 0, false
	}
}

// drain waits, briefly, for the last of p's output.
func (p *proc) drain() {
	select {
	case <-p.copied:
	case <-time.After(drainWait):
	}
}

// exec runs one runc command and waits for runc to exit, which must be
// with status 0. The proc is nil only when runc did not start.
func (rc *runc) exec(ctx context.Context, name string, args ...string) (*proc, error) {
	p, err := rc.spawn(name, args...)
	if err != nil {
		return nil, fmt.Errorf("runc %s: %w", args[0], err)
	}
	ws, err := p.wait(ctx, runcTimeout)
	if err != nil {
		return p, fmt.Errorf("runc %s: %w", args[0], err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return p, fmt.Errorf("runc %s: %s", args[0], describeExit(ws))
	}
	return p, nil
}

// run runs one runc command to completion, its output included.
func (rc *runc) run(ctx context.Context, name string, args ...string) error {
	p, err := rc.exec(ctx, name, args...)
	if p != nil {
		p.drain()
	}
	return err
}

// create runs `runc create` for the bundle at dir. The pipe it gets stays
// the container's stdout and stderr after runc exits: the returned proc is
// runc's, and its copied closes only when the container's output ends.
func (rc *runc) create(ctx context.Context, name, dir, pidFile string) (*proc, error) {
	return rc.exec(ctx, name, "create", "--bundle", dir, "--pid-file", pidFile, name)
}

// exists reports whether runc has state for container name.
func (rc *runc) exists(name string) bool {
	_, err := os.Stat(filepath.Join(rc.root, name))
	return err == nil
}

// describeExit says how a process ended: "exited 0", "killed by SIGTERM".
func describeExit(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited %d", ws.ExitStatus())
	case ws.Signaled():
		name := unix.SignalName(ws.Signal())
		if name == "" {
			name = fmt.Sprintf("signal %d", int(ws.Signal()))
		}
		s := "killed by " + name
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	default:
		return fmt.Sprintf("ended with status %#x", uint32(ws))
	}
}
