package sandbox

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadStatusSelf(t *testing.T) {
	s, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if int(s.UID[1]) != os.Geteuid() || int(s.GID[1]) != os.Getegid() {
		t.Errorf("effective IDs %d/%d, want %d/%d", s.UID[1], s.GID[1], os.Geteuid(), os.Getegid())
	}
	if _, err := ReadStatus(-1); err == nil {
		t.Error("ReadStatus(-1) succeeded")
	}
}

func TestCapString(t *testing.T) {
	tests := []struct {
		c    Cap
		want string
	}{
		{unix.CAP_CHOWN, "CAP_CHOWN"},
		{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
		{unix.CAP_SYS_TIME, "CAP_SYS_TIME"},
		{unix.CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE"},
		{41, "CAP_41"},
		{-1, "CAP_-1"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Cap(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
	if got := CapMask(unix.CAP_NET_ADMIN, unix.CAP_KILL); got != 1<<12|1<<5 {
		t.Errorf("CapMask = %#x", got)
	}
}

func TestNormalize(t *testing.T) {
	cond := []Arg{{Index: 0, Op: Equal, Value: 1}}
	tests := []struct {
		name    string
		rules   []Rule
		want    []Rule
		wantErr string
	}{
		{
			name:  "unconditional wins over conditional",
			rules: []Rule{{Syscall: "openat", Action: ActAllow, Args: cond}, {Syscall: "openat", Action: ActAllow}},
			want:  []Rule{{Syscall: "openat", Action: ActAllow}},
		},
		{
			name:  "conditional rules with different actions stay",
			rules: []Rule{{Syscall: "socket", Action: ActAllow, Args: cond}, {Syscall: "socket", Action: ActKill, Args: []Arg{{Index: 0, Op: Equal, Value: 2}}}},
			want:  []Rule{{Syscall: "socket", Action: ActAllow, Args: cond}, {Syscall: "socket", Action: ActKill, Args: []Arg{{Index: 0, Op: Equal, Value: 2}}}},
		},
		{
			name:    "allow and kill",
			rules:   []Rule{{Syscall: "execve", Action: ActAllow}, {Syscall: "execve", Action: ActKill}},
			wantErr: "conflicting",
		},
		{
			name:    "errno without errno",
			rules:   []Rule{{Syscall: "clone3", Action: ActErrno}},
			wantErr: "without an errno",
		},
		{
			name:    "no action",
			rules:   []Rule{{Syscall: "read"}},
			wantErr: "invalid action",
		},
		{
			name:    "no name",
			rules:   []Rule{{Action: ActAllow}},
			wantErr: "without a system call name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalize(tt.rules)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// rulesFor returns the rules of p for one system call.
func rulesFor(p SyscallPolicy, name string) []Rule {
	var r []Rule
	for _, x := range p.Rules {
		if x.Syscall == name {
			r = append(r, x)
		}
	}
	return r
}

func TestUnion(t *testing.T) {
	u := SupervisorSyscalls(EngineSyscalls(), ActuatorSyscalls())
	tests := []struct {
		name    string
		syscall string
		check   func([]Rule) bool
		want    string
	}{
		{"execve allowed, not killed", "execve", func(r []Rule) bool { return len(r) == 1 && r[0].Action == ActAllow }, "one allow rule"},
		{"mount still killed", "mount", func(r []Rule) bool { return len(r) == 1 && r[0].Action == ActKill }, "one kill rule"},
		{"tgkill without the PID condition", "tgkill", func(r []Rule) bool {
			for _, x := range r {
				if len(x.Args) != 0 {
					return false
				}
			}
			return len(r) > 0
		}, "only unconditional rules"},
		{"the actuator's sockets", "socket", func(r []Rule) bool { return len(r) == 3 }, "three conditional rules"},
		{"clone3 refused once", "clone3", func(r []Rule) bool { return len(r) == 1 && r[0].Errno == unix.ENOSYS }, "one ENOSYS rule"},
	}
	for _, tt := range tests {
		if r := rulesFor(u, tt.syscall); !tt.check(r) {
			t.Errorf("%s: %s: %+v, want %s", tt.name, tt.syscall, r, tt.want)
		}
	}
}

// TestShippedPolicies builds the filter of every shipped policy without
// loading it: every name must be known to libseccomp, and no rules may
// conflict.
func TestShippedPolicies(t *testing.T) {
	for name, p := range map[string]SyscallPolicy{
		"engine":     EngineSyscalls(),
		"actuator":   ActuatorSyscalls(),
		"supervisor": SupervisorSyscalls(),
		"union":      SupervisorSyscalls(EngineSyscalls(), ActuatorSyscalls()),
		"ntp":        ActuatorSyscalls().Allowing("clock_adjtime"),
	} {
		f, err := buildFilter(p, os.Getpid())
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		f.Release()
	}
	if _, err := buildFilter(SyscallPolicy{Rules: allow("no_such_call")}, 1); err == nil {
		t.Error("a policy with an unknown system call built")
	}
	for _, name := range Dangerous() {
		for pname, p := range map[string]SyscallPolicy{"engine": EngineSyscalls(), "actuator": ActuatorSyscalls()} {
			if r := rulesFor(p, name); len(r) != 1 || r[0].Action != ActKill {
				t.Errorf("%s: %s: %+v, want a kill rule", pname, name, r)
			}
		}
	}
}
