package testnet

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NtpsecNtpd is ntpsec's NTP daemon, which scripts/deps unpacks rather
// than installs: its package conflicts with chrony's.
const NtpsecNtpd = "/opt/dyad-peers/ntpsec/usr/sbin/ntpd"

// StartRateLimitedNtpsec runs ntpsec's ntpd as an NTP server on the Net's
// server address that rate-limits its clients and tells them so with a
// Kiss-o'-Death RATE ("restrict default limited kod": ntpsec allows an
// average of one packet a second, in bursts of up to 20). It serves its
// own clock in orphan mode, as stratum 5, and cannot set any clock:
// CAP_SYS_TIME is dropped from its bounding set before it starts. It waits
// until the server answers as synchronised; it is stopped by the test's
// cleanup.
func (n *Net) StartRateLimitedNtpsec(t testing.TB) *Proc {
	t.Helper()
	RequireTools(t, "setpriv", "ntpdig")
	if _, err := os.Stat(NtpsecNtpd); err != nil {
		Unavailable(t, fmt.Sprintf("this test needs ntpsec's ntpd (run `make deps`): %v", err))
	}
	conf := filepath.Join(t.TempDir(), "ntp.conf")
	// No driftfile, no statistics: it writes nothing.
	if err := os.WriteFile(conf, []byte("tos orphan 5 orphanwait 0\nrestrict default limited kod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := n.Start(t, n.Server, "setpriv", "--bounding-set=-sys_time", "--inh-caps=-sys_time", NtpsecNtpd, "-n", "-c", conf)
	addr := n.ServerAddr.Addr().String()
	deadline := time.Now().Add(readyTimeout)
	for {
		// Asked from the server's own address, which ntpd never
		// rate-limits, so that the probes count against no client.
		out, err := n.runFor(t, 5*time.Second, n.Server, "ntpdig", "-t", "1", addr)
		if err == nil && bytes.Contains(out, []byte(" s5 ")) {
			return p
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("testnet: ntpsec's ntpd does not answer as synchronised: %v\n%s\nntpd:\n%s", err, out, p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// UDPDatagramsIn is how many UDP datagrams namespace ns has received, from
// its /proc/net/snmp.
func (n *Net) UDPDatagramsIn(t testing.TB, ns string) uint64 {
	t.Helper()
	out, err := n.Run(t, ns, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	// Two "Udp:" lines: the names, then the values.
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, name := range names {
			if name == "InDatagrams" && i < len(fields) {
				v, err := strconv.ParseUint(fields[i], 10, 64)
				if err != nil {
					t.Fatalf("testnet: /proc/net/snmp: Udp InDatagrams %q: %v", fields[i], err)
				}
				return v
			}
		}
	}
	t.Fatalf("testnet: no Udp InDatagrams in /proc/net/snmp:\n%s", out)
	return 0
}
