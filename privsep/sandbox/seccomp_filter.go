//go:build !libfuzzer

package sandbox

import (
	"fmt"
	"os"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// installFilter builds policy's filter with libseccomp and loads it.
func installFilter(policy SyscallPolicy) error {
	f, err := buildFilter(policy, os.Getpid())
	if err != nil {
		return err
	}
	defer f.Release()
	if err := f.Load(); err != nil {
		return fmt.Errorf("seccomp: load filter: %w", err)
	}
	return nil
}

// buildFilter translates policy into a libseccomp filter for the native
// architecture; self is the PID EqualSelfPID compares with. Calls of any
// other architecture (such as 32-bit calls on amd64) kill the process.
func buildFilter(policy SyscallPolicy, self int) (*seccomp.ScmpFilter, error) {
	def := policy.DefaultErrno
	if def == 0 {
		def = unix.EPERM
	}
	f, err := seccomp.NewFilter(seccomp.ActErrno.SetReturnCode(int16(def)))
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	if err := f.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("seccomp: set bad-architecture action: %w", err)
	}
	if err := f.SetNoNewPrivsBit(true); err != nil {
		return nil, fmt.Errorf("seccomp: set no_new_privs: %w", err)
	}
	rules, err := normalize(policy.Rules)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if err := addRule(f, r, self); err != nil {
			return nil, err
		}
	}
	ok = true
	return f, nil
}

// addRule adds r to f. A system call that does not exist on this
// architecture (open on arm64, say) is skipped; a name libseccomp does
// not know at all is an error, so that a typo cannot go unnoticed.
func addRule(f *seccomp.ScmpFilter, r Rule, self int) error {
	call, err := seccomp.GetSyscallFromName(r.Syscall)
	if err != nil {
		return fmt.Errorf("seccomp: system call %q: %w", r.Syscall, err)
	}
	if call < 0 {
		return nil // not on this architecture
	}
	var action seccomp.ScmpAction
	switch r.Action {
	case ActAllow:
		action = seccomp.ActAllow
	case ActErrno:
		action = seccomp.ActErrno.SetReturnCode(int16(r.Errno))
	case ActKill:
		action = seccomp.ActKillProcess
	}
	if len(r.Args) == 0 {
		if err := f.AddRule(call, action); err != nil {
			return fmt.Errorf("seccomp: %s: %v: %w", r.Syscall, r.Action, err)
		}
		return nil
	}
	conds := make([]seccomp.ScmpCondition, 0, len(r.Args))
	for _, a := range r.Args {
		var c seccomp.ScmpCondition
		var err error
		switch a.Op {
		case Equal:
			c, err = seccomp.MakeCondition(a.Index, seccomp.CompareEqual, a.Value)
		case MaskedEqual:
			c, err = seccomp.MakeCondition(a.Index, seccomp.CompareMaskedEqual, a.Mask, a.Value)
		case EqualSelfPID:
			c, err = seccomp.MakeCondition(a.Index, seccomp.CompareEqual, uint64(self))
		default:
			err = fmt.Errorf("invalid comparison %d", a.Op)
		}
		if err != nil {
			return fmt.Errorf("seccomp: %s: argument %d: %w", r.Syscall, a.Index, err)
		}
		conds = append(conds, c)
	}
	if err := f.AddRuleConditional(call, action, conds); err != nil {
		return fmt.Errorf("seccomp: %s: conditional %v: %w", r.Syscall, r.Action, err)
	}
	return nil
}
