package initd

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxUnclaimed bounds the exits the reaper keeps for waiters yet to come:
// orphans nobody waits for (a daemon's leftovers) must not grow it for
// ever. When it is full the oldest go first.
const maxUnclaimed = 1024

// reapInterval is how often the reaper looks for exits without a SIGCHLD,
// in case one is missed: signals of the same kind merge while pending.
const reapInterval = time.Second

// Reaper is the only caller of wait(2) in the process. As PID 1 (or a
// child subreaper) init inherits every orphan: the container processes
// that `runc create` leaves behind become its children. The reaper reaps
// them all and hands each exit status to whoever asked for that pid.
//
// Nothing else may wait: exec.Cmd.Wait and os.Process.Wait would race with
// it for the same children. Start children with [Reaper.Start] and wait
// for processes with [Reaper.Wait].
type Reaper struct {
	mu        sync.Mutex
	seq       uint64                         // exits reaped so far
	waiters   map[int][]chan unix.WaitStatus // pid -> those waiting for it
	unclaimed map[int]reaped                 // exits nobody waited for yet
}

// reaped is an exit that came before its waiter.
type reaped struct {
	status unix.WaitStatus
	seq    uint64
}

// NewReaper returns a reaper; call Run to make it reap.
func NewReaper() *Reaper {
	return &Reaper{waiters: map[int][]chan unix.WaitStatus{}, unclaimed: map[int]reaped{}}
}

// Run reaps until ctx ends, on each SIGCHLD and every reapInterval. It
// makes the process a child subreaper, so that it inherits orphans even
// when it is not PID 1 (in tests).
func (r *Reaper) Run(ctx context.Context) {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(reapInterval)
	defer tick.Stop()
	for {
		r.reap()
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
		}
	}
}

// reap collects every exit that is ready, without blocking.
func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Bounded: each round reaps one child, and there are finitely many.
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return // ECHILD: no children; 0: none has exited
		}
		r.deliver(pid, ws)
	}
}

// deliver hands an exit to the waiters of pid, or keeps it for one to
// come. r.mu is held.
func (r *Reaper) deliver(pid int, ws unix.WaitStatus) {
	r.seq++
	if chans, ok := r.waiters[pid]; ok {
		delete(r.waiters, pid)
		for _, c := range chans {
			c <- ws // buffered, one value each: never blocks
		}
		return
	}
	if len(r.unclaimed) >= maxUnclaimed {
		oldest, first := 0, true
		for p, u := range r.unclaimed {
			if first || u.seq < r.unclaimed[oldest].seq {
				oldest, first = p, false
			}
		}
		delete(r.unclaimed, oldest)
	}
	r.unclaimed[pid] = reaped{status: ws, seq: r.seq}
}

// Mark returns the point the reaper has reached; pass it to Wait for a
// pid learnt later (from a pid file) to ignore an exit of an earlier
// process that had the same pid.
func (r *Reaper) Mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Wait returns a channel that receives the exit status of pid once. An
// exit reaped after mark (from Mark) but before Wait is delivered at
// once: a process may well exit before its waiter learns its pid.
func (r *Reaper) Wait(pid int, mark uint64) <-chan unix.WaitStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitLocked(pid, mark)
}

func (r *Reaper) waitLocked(pid int, mark uint64) <-chan unix.WaitStatus {
	c := make(chan unix.WaitStatus, 1)
	if u, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		if u.seq > mark {
			c <- u.status
			return c
		}
		// An earlier process with the same pid: not ours.
	}
	r.waiters[pid] = append(r.waiters[pid], c)
	return c
}

// Start starts argv[0] (a path) and returns its pid and a channel for its
// exit status. The reaper cannot reap the child before it is registered:
// both happen under the reaper's lock.
func (r *Reaper) Start(argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return 0, nil, &os.PathError{Op: "fork/exec", Path: argv[0], Err: err}
	}
	return pid, r.waitLocked(pid, r.seq), nil
}
