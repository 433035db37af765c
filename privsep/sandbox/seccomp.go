package sandbox

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrSeccompUnsupported means the kernel cannot install a seccomp filter
// that kills a process (CONFIG_SECCOMP_FILTER, Linux 4.14 or later).
var ErrSeccompUnsupported = errors.New("the kernel does not support seccomp filters")

// seccompSupported reports whether the kernel has seccomp filters with the
// kill-process action this package relies on.
func seccompSupported() error {
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("%w: prctl(PR_GET_SECCOMP): %v", ErrSeccompUnsupported, err)
	}
	action := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if e != 0 {
		return fmt.Errorf("%w: SECCOMP_RET_KILL_PROCESS: %v", ErrSeccompUnsupported, e)
	}
	return nil
}

// loadSeccomp installs the filter of policy on every thread of the process
// (libseccomp-golang always asks for TSYNC) and then checks in /proc that
// every thread runs under a filter with no_new_privs: libseccomp-golang
// carries on silently if the kernel refuses TSYNC.
func loadSeccomp(policy SyscallPolicy) error {
	if err := installFilter(policy); err != nil {
		return err
	}
	return eachThread(os.Getpid(), func(tid int, s Status) error {
		if s.Seccomp != SeccompFilter {
			return fmt.Errorf("seccomp: thread %d has seccomp mode %d after loading the filter, want %d (no TSYNC?)", tid, s.Seccomp, SeccompFilter)
		}
		if !s.NoNewPrivs {
			return fmt.Errorf("seccomp: thread %d lacks no_new_privs after loading the filter", tid)
		}
		return nil
	})
}

// normalize checks rules and drops the conditional rules that an
// unconditional rule for the same system call makes redundant (libseccomp
// refuses some such mixtures). Rules for one system call must share one
// action unless all of them have conditions.
func normalize(rules []Rule) ([]Rule, error) {
	type key struct {
		action Action
		errno  unix.Errno
	}
	bySyscall := map[string][]Rule{}
	var order []string
	for _, r := range rules {
		if r.Syscall == "" {
			return nil, errors.New("seccomp: rule without a system call name")
		}
		switch r.Action {
		case ActAllow, ActKill:
		case ActErrno:
			if r.Errno == 0 {
				return nil, fmt.Errorf("seccomp: %s: errno rule without an errno", r.Syscall)
			}
		default:
			return nil, fmt.Errorf("seccomp: %s: invalid action %d", r.Syscall, r.Action)
		}
		if len(r.Args) > 6 {
			return nil, fmt.Errorf("seccomp: %s: %d argument conditions", r.Syscall, len(r.Args))
		}
		if _, seen := bySyscall[r.Syscall]; !seen {
			order = append(order, r.Syscall)
		}
		bySyscall[r.Syscall] = append(bySyscall[r.Syscall], r)
	}
	sort.Strings(order)
	var out []Rule
	for _, name := range order {
		rs := bySyscall[name]
		var uncond *Rule
		actions := map[key]bool{}
		for i := range rs {
			actions[key{rs[i].Action, rs[i].Errno}] = true
			if len(rs[i].Args) == 0 && uncond == nil {
				uncond = &rs[i]
			}
		}
		if uncond == nil {
			out = append(out, rs...)
			continue
		}
		if len(actions) > 1 {
			return nil, fmt.Errorf("seccomp: %s: conflicting rules (%v unconditionally, and other actions)", name, uncond.Action)
		}
		out = append(out, *uncond)
	}
	return out, nil
}
