package initd

import (
	"os"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/internal/procstatus"
)

// statusText is a /proc/PID/status of kernel 6.1, for a process with the
// given capability masks.
func statusText(uid string, bnd, eff string, nnp string) string {
	return `Name:	runc:[2:INIT]
Umask:	0022
State:	S (sleeping)
Tgid:	123
Ngid:	0
Pid:	123
PPid:	1
TracerPid:	0
Uid:	` + uid + `
Gid:	0	0	0	0
FDSize:	64
Groups:	 
NStgid:	123	1
NSpid:	123	1
VmRSS:	    9012 kB
Threads:	6
SigQ:	0/7735
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
CapInh:	0000000000000000
CapPrm:	` + eff + `
CapEff:	` + eff + `
CapBnd:	` + bnd + `
CapAmb:	0000000000000000
NoNewPrivs:	` + nnp + `
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	thread vulnerable
Cpus_allowed_list:	0
voluntary_ctxt_switches:	5
nonvoluntary_ctxt_switches:	1
`
}

func TestStatusLine(t *testing.T) {
	for _, tc := range []struct {
		name, status, want string
	}{
		{
			"dhcpcd's capabilities",
			statusText("0\t0\t0\t0", "0000000000003000", "0000000000003000", "0"),
			"init: onboot 000-dhcpcd: pid 123 uid 0 CapBnd CAP_NET_ADMIN,CAP_NET_RAW CapEff CAP_NET_ADMIN,CAP_NET_RAW NoNewPrivs 0",
		},
		{
			"an unprivileged engine",
			statusText("65534\t65534\t65534\t65534", "0000000000000000", "0000000000000000", "1"),
			"init: onboot 000-dhcpcd: pid 123 uid 65534 CapBnd none CapEff none NoNewPrivs 1",
		},
		{
			// CAP_CHOWN (0), CAP_NET_BIND_SERVICE (10), CAP_SYS_ADMIN
			// (21), CAP_SYS_TIME (25), CAP_SYSLOG (34): by name, not
			// number, so CAP_SYSLOG comes before CAP_SYS_ADMIN.
			"sorted by name",
			statusText("0\t0\t0\t0", "0000000402200401", "0000000002000000", "0"),
			"init: onboot 000-dhcpcd: pid 123 uid 0 CapBnd CAP_CHOWN,CAP_NET_BIND_SERVICE,CAP_SYSLOG,CAP_SYS_ADMIN,CAP_SYS_TIME CapEff CAP_SYS_TIME NoNewPrivs 0",
		},
		{
			"a bit the table does not know",
			statusText("0\t0\t0\t0", "0000800000000000", "0000000000000000", "0"),
			"init: onboot 000-dhcpcd: pid 123 uid 0 CapBnd CAP_47 CapEff none NoNewPrivs 0",
		},
		{
			"effective uid",
			statusText("1000\t0\t0\t0", "0000000000000000", "0000000000000000", "0"),
			"init: onboot 000-dhcpcd: pid 123 uid 0 CapBnd none CapEff none NoNewPrivs 0",
		},
	} {
		s, err := procstatus.Parse([]byte(tc.status))
		id := identity(s)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var buf syncBuffer
		in := &Init{con: NewConsole(&buf)}
		in.logf(bundle{kind: "onboot", name: "000-dhcpcd"}, "pid %d %s", 123, id)
		if got := strings.Join(buf.Lines(), "\n"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestOwnStatus reads a real status file: this process's.
func TestOwnStatus(t *testing.T) {
	id, err := readIdentity("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(os.Geteuid()); id.UID[1] != want {
		t.Errorf("uid %d, want %d", id.UID[1], want)
	}
}
