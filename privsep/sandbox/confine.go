package sandbox

import (
	"errors"
	"fmt"
	"os"
)

// Profile is what a process confines itself to.
type Profile struct {
	Name     string // "engine", "actuator", "supervisor": used in messages
	Syscalls SyscallPolicy

	// Landlock, if not nil, denies every filesystem access except to the
	// paths it lists. A Landlock with no paths denies all of them.
	Landlock *Landlock

	// ExpectUnprivileged makes Confine check first that the process holds
	// nothing: no root user or group ID, no supplementary group, no
	// capability in any set but the bounding one, and no_new_privs, on
	// every thread.
	ExpectUnprivileged bool

	// AllowNoSeccomp and AllowNoLandlock accept a kernel without seccomp
	// filters or without Landlock. They exist for an operator's explicit
	// flag only: without them such a kernel is an error wrapping
	// ErrSeccompUnsupported or ErrLandlockUnsupported.
	AllowNoSeccomp  bool
	AllowNoLandlock bool

	// Warn, if set, receives the line saying that one of those was used:
	// a degraded sandbox is never silent.
	Warn func(msg string)
}

func (p Profile) warn(msg string) {
	if p.Warn != nil {
		p.Warn(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "sandbox: WARNING:", msg)
}

// Confine confines the calling process, all its threads, to p: it checks
// the credentials if p asks for it, installs the seccomp filter on every
// thread and checks in /proc that each has it, then applies Landlock to
// every thread. Any failure is an error naming what failed, and the
// process must then not go on: it may be partly confined.
//
// Landlock comes after seccomp so that Confine can still read /proc to
// check the filter; the policies of this package allow the few calls
// Landlock needs after that (they can only restrict further).
func Confine(p Profile) error {
	name := p.Name
	if name == "" {
		name = "process"
	}
	fail := func(err error) error {
		return fmt.Errorf("sandbox: confine %s: %w", name, err)
	}
	if len(p.Syscalls.Rules) == 0 {
		return fail(errors.New("empty system call policy"))
	}
	if p.ExpectUnprivileged {
		if err := checkUnprivileged(); err != nil {
			return fail(err)
		}
	}
	switch err := seccompSupported(); {
	case err == nil:
		if err := loadSeccomp(p.Syscalls); err != nil {
			return fail(err)
		}
	case errors.Is(err, ErrSeccompUnsupported) && p.AllowNoSeccomp:
		p.warn(name + ": running WITHOUT seccomp, as the operator allowed: " + err.Error())
	default:
		return fail(err)
	}
	if p.Landlock == nil {
		return nil
	}
	if _, err := landlockABI(); err != nil {
		if errors.Is(err, ErrLandlockUnsupported) && p.AllowNoLandlock {
			p.warn(name + ": running WITHOUT landlock, as the operator allowed: " + err.Error())
			return nil
		}
		return fail(err)
	}
	if err := applyLandlock(p.Landlock); err != nil {
		return fail(err)
	}
	return nil
}

// checkUnprivileged checks that no thread of the process has any
// privilege left.
func checkUnprivileged() error {
	return eachThread(os.Getpid(), func(tid int, s Status) error {
		for i, id := range s.UID {
			if id == 0 {
				return fmt.Errorf("thread %d: user ID %d of 4 is root: %v", tid, i+1, s.UID)
			}
		}
		for i, id := range s.GID {
			if id == 0 {
				return fmt.Errorf("thread %d: group ID %d of 4 is root: %v", tid, i+1, s.GID)
			}
		}
		if len(s.Groups) != 0 {
			return fmt.Errorf("thread %d: supplementary groups %v", tid, s.Groups)
		}
		for _, c := range []struct {
			name string
			set  uint64
		}{
			// The bounding set may keep what the container gave when
			// there was no CAP_SETPCAP to drop it with: no_new_privs,
			// required below, makes it grant nothing on exec.
			{"inheritable", s.CapInh}, {"permitted", s.CapPrm}, {"effective", s.CapEff},
			{"ambient", s.CapAmb},
		} {
			if c.set != 0 {
				return fmt.Errorf("thread %d: %s capability set is %#x, not empty", tid, c.name, c.set)
			}
		}
		if !s.NoNewPrivs {
			return fmt.Errorf("thread %d: no_new_privs is not set", tid)
		}
		return nil
	})
}
