package sandbox

// #include "allthreads.h"
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/capname"
)

// Cap is a Linux capability number, such as unix.CAP_NET_ADMIN.
type Cap int

// String returns the kernel's name for c, such as "CAP_NET_ADMIN", or
// "CAP_<n>" for a number this package does not know.
func (c Cap) String() string {
	if n := capname.Name(int(c)); n != "" {
		return n
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// CapMask returns the bit mask of caps, in the form /proc/PID/status and
// capget use.
func CapMask(caps ...Cap) uint64 {
	var m uint64
	for _, c := range caps {
		if c >= 0 && c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}

// lastCap returns the highest capability number the running kernel knows.
// The bounding set must be emptied up to this number, not up to what this
// package was compiled with, or a newer kernel's capabilities would survive.
func lastCap() (Cap, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read highest capability: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("/proc/sys/kernel/cap_last_cap: bad value %q", b)
	}
	return Cap(n), nil
}

// restrictThread leaves exactly keep in the calling thread's bounding set,
// empties its inheritable and ambient sets and, if noNewPrivs, sets
// no_new_privs. All of these are per-thread attributes: the caller must have
// locked the goroutine to its OS thread and must never unlock it, since the
// thread is no longer like the others.
//
// A process that execs from this thread inherits these sets; if it is root,
// its permitted and effective sets become the bounding set, that is keep.
// With leaveBounding (no CAP_SETPCAP to drop with), the bounding set is
// only checked to hold keep, and a root child must drop the rest itself.
func restrictThread(keep []Cap, leaveBounding, noNewPrivs bool) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	want := CapMask(keep...)
	for _, c := range keep {
		if c < 0 || c > last {
			return fmt.Errorf("cannot keep %v: the kernel's highest capability is %v", c, last)
		}
	}
	for c := Cap(0); c <= last; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			return fmt.Errorf("read %v from the bounding set: %w", c, err)
		}
		switch {
		case want&(1<<uint(c)) != 0 && in == 0:
			return fmt.Errorf("cannot keep %v: it is not in this process's bounding set", c)
		case want&(1<<uint(c)) == 0 && in == 1 && !leaveBounding:
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("drop %v from the bounding set: %w", c, err)
			}
		}
	}
	if err := clearInheritable(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	return nil
}

// clearInheritable empties the calling thread's inheritable set and leaves
// its permitted and effective sets as they are.
func clearInheritable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear the inheritable set: %w", err)
	}
	return nil
}

// DropAllThreads gives up privilege without an exec: every thread of the
// process is left with exactly keep in its permitted and effective sets,
// at most keep in its bounding set, and nothing in its inheritable and
// ambient sets. Each
// thread is made to drop from a signal handler (see allthreads.c), since
// capability sets are per thread and a cgo program has no
// AllThreadsSyscall. The result is then read back from every thread; any
// difference is an error.
func DropAllThreads(keep []Cap) error { return dropAllThreads(keep, false) }

// DropAllThreadsLeavingBounding is DropAllThreads for a process that cannot
// drop from its bounding set, having no CAP_SETPCAP: the bounding set stays
// as the container made it. A process that goes on to Confine gets
// no_new_privs, under which an exec can never bring back what the
// bounding set still names; one that does not (a supervisor that must
// exec a set-user-ID file) keeps that power of exec, and must say so.
func DropAllThreadsLeavingBounding(keep []Cap) error { return dropAllThreads(keep, true) }

func dropAllThreads(keep []Cap, leaveBounding bool) error {
	last, err := lastCap()
	if err != nil {
		return fmt.Errorf("sandbox: drop capabilities: %w", err)
	}
	want := CapMask(keep...)
	leave := C.int(0)
	if leaveBounding {
		leave = 1
	}
	if e := C.dyad_caps_begin(C.ulonglong(want), C.int(last), leave); e != 0 {
		return fmt.Errorf("sandbox: drop capabilities: install signal handler: %w", unix.Errno(e))
	}
	err = signalEachThread("drop capabilities")
	if e := C.dyad_round_end(); e != 0 && err == nil {
		err = fmt.Errorf("drop capabilities: restore signal handler: %w", unix.Errno(e))
	}
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	err = eachThread(os.Getpid(), func(tid int, s Status) error {
		// A thread that started a child keeps that child's smaller
		// bounding set: a subset of keep is as good.
		if s.CapPrm != want || s.CapEff != want || (!leaveBounding && s.CapBnd&^want != 0) || s.CapInh != 0 || s.CapAmb != 0 {
			return fmt.Errorf("thread %d: CapInh %#x CapPrm %#x CapEff %#x CapBnd %#x CapAmb %#x, want %#x", tid, s.CapInh, s.CapPrm, s.CapEff, s.CapBnd, s.CapAmb, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sandbox: drop capabilities: %w", err)
	}
	return nil
}

// CapNames returns the names of caps, as audits print them.
func CapNames(caps []Cap) []string {
	names := make([]string, len(caps))
	for i, c := range caps {
		names[i] = c.String()
	}
	return names
}
