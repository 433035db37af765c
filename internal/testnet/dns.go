package testnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartUnbound runs unbound as a DNS server on the Net's server address,
// port 53, answering for the zone example.test. from records (each a
// record in presentation form, one of them its SOA) and refusing every
// other name, so that it never asks a server outside the test. It waits
// until the zone answers; it is stopped by the test's cleanup.
func (n *Net) StartUnbound(t testing.TB, records []string) *Proc {
	t.Helper()
	RequireTools(t, "unbound", "kdig")
	lines := []string{
		`module-config: "iterator"`,
		`local-zone: "test." nodefault`, // unbound refuses .test names unless told otherwise
		`local-zone: "example.test." static`,
		`local-zone: "." refuse`,
	}
	for _, r := range records {
		if strings.Contains(r, "'") {
			t.Fatalf("testnet: record %q: unbound's local-data is single-quoted", r)
		}
		lines = append(lines, "local-data: '"+r+"'")
	}
	path := UnboundConf(t, n.ServerAddr.Addr().String(), 53, lines)
	if out, err := run(t.Context(), "unbound-checkconf", path); err != nil {
		t.Fatalf("testnet: unbound's configuration: %v\n%s", err, out)
	}
	p := n.Start(t, n.Server, "unbound", "-d", "-c", path)
	n.waitDNS(t, p, "unbound")
	return p
}

// UnboundConf writes the configuration of an unbound that serves on
// addr:port in the foreground, as root, without chroot, syslog, IPv6 or
// remote control, allowing every client: the server: clause with the
// lines of server added (local zones and data...), then the clauses of
// rest as they are (forward-zone:...). It returns its path.
func UnboundConf(t testing.TB, addr string, port int, server []string, rest ...string) string {
	t.Helper()
	dir := t.TempDir()
	conf := []string{"server:", "  interface: " + addr, "  port: " + strconv.Itoa(port), "  do-daemonize: no", `  chroot: ""`, `  username: ""`,
		"  directory: " + dir, "  pidfile: " + filepath.Join(dir, "unbound.pid"), "  use-syslog: no", "  verbosity: 1", "  do-ip6: no",
		"  access-control: 0.0.0.0/0 allow"}
	for _, l := range server {
		conf = append(conf, "  "+l)
	}
	conf = append(append(conf, rest...), "remote-control:", "  control-enable: no")
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartDnsmasqDNS runs dnsmasq as a DNS server only (no DHCP) on the Net's
// server address, port 53, with args giving its records (--host-record,
// --cname, --mx-host, --txt-record...), reading no resolv.conf and no
// hosts file of the machine. It waits until it answers; it is stopped by
// the test's cleanup.
func (n *Net) StartDnsmasqDNS(t testing.TB, args ...string) *Proc {
	t.Helper()
	RequireTools(t, "dnsmasq", "kdig")
	argv := DnsmasqDNSArgs(t.TempDir(), n.ServerAddr.Addr().String(), args...)
	p := n.Start(t, n.Server, argv[0], argv[1:]...)
	n.waitDNS(t, p, "dnsmasq")
	return p
}

// DnsmasqDNSArgs is the command line of a dnsmasq that serves DNS only,
// in the foreground, as root, on listen, port 53, reading no resolv.conf
// and no hosts file of the machine, its pid file in dir; args add its
// records, upstreams or cache size.
func DnsmasqDNSArgs(dir, listen string, args ...string) []string {
	return append([]string{"dnsmasq", "--keep-in-foreground", "--log-facility=-", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"), "--bind-interfaces", "--listen-address=" + listen,
		"--except-interface=lo", "--port=53", "--user=root", "--group=root"}, args...)
}

// waitDNS waits until the server answers a question on example.test.
func (n *Net) waitDNS(t testing.TB, p *Proc, name string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		out, err := n.runFor(t, 5*time.Second, n.Server, "kdig", "+time=1", "+retry=0", "@"+n.ServerAddr.Addr().String(), "example.test.", "SOA")
		// Any answer at all: dnsmasq has no SOA to give.
		if err == nil && strings.Contains(string(out), "status: ") {
			return
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("testnet: %s does not answer: %v\n%s\n%s:\n%s", name, err, out, name, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DnsperfStats is what dnsperf's statistics say of a run.
type DnsperfStats struct {
	Sent, Completed, Lost int
	QPS                   float64
}

// ParseDnsperf reads the statistics dnsperf prints at the end of a run; a
// run that sent nothing is an error.
func ParseDnsperf(out []byte) (DnsperfStats, error) {
	var s DnsperfStats
	for _, line := range strings.Split(string(out), "\n") {
		field, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch field {
		case "Queries sent":
			fmt.Sscan(value, &s.Sent)
		case "Queries completed":
			fmt.Sscan(value, &s.Completed)
		case "Queries lost":
			fmt.Sscan(value, &s.Lost)
		case "Queries per second":
			fmt.Sscan(value, &s.QPS)
		}
	}
	if s.Sent == 0 {
		return s, fmt.Errorf("dnsperf sent nothing:\n%s", out)
	}
	return s, nil
}
