package dns_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyad-project/dyad/daemons/dns"
	"github.com/dyad-project/dyad/internal/actuatortest"
	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/privsep"
)

// binary returns the dyad-dns to test.
func binary(t *testing.T) string {
	return testnet.Binary(t, "dyad-dns", "github.com/dyad-project/dyad/daemons/dns/cmd/dyad-dns")
}

// publicDir is a temporary directory the engine's user may read, as may
// it the test's directory above it.
func publicDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeAtomically replaces a file as a DHCP client does: a new file
// renamed over the old.
func writeAtomically(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// status reads the daemon's status socket; a daemon still starting has
// none, and gives the zero Status.
func status(t *testing.T, run string) dns.Status {
	t.Helper()
	out, err := exec.Command(binary(t), "status", "--run-dir", run).CombinedOutput()
	if err != nil {
		return dns.Status{}
	}
	var st dns.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

// TestDaemon runs dyad-dns, its three processes, in the client's
// namespace, with its upstream named by a resolv.conf as a DHCP client
// writes it: it answers through unbound, answers the hosts file itself,
// points the consumers' resolv.conf at itself with the DHCP client's
// search list, follows the DHCP client's file to a second upstream
// (dnsmasq) without a restart, and each process holds what the audit says
// and no more.
func TestDaemon(t *testing.T) {
	testnet.RequireRoot(t)
	a := testnet.NewNetConfig(t, testnet.Config{ClientIf: "veth-a"})
	stub := a.AddClientAddress(t).Addr()
	b := testnet.NewNetConfig(t, testnet.Config{ClientIf: "veth-b", Client: a.Client})
	b.AddClientAddress(t)
	a.StartUnbound(t, []string{
		"example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60",
		"www.example.test. 300 IN A 192.0.2.80",
	})
	b.StartDnsmasqDNS(t, "--local=/example.test/", "--local-ttl=300", "--host-record=b.example.test,192.0.2.81")

	dir := publicDir(t)
	upstreams := filepath.Join(dir, "dhcp", "resolv.conf")
	consumers := filepath.Join(dir, "etc", "resolv.conf")
	hosts := filepath.Join(dir, "hosts")
	for _, d := range []string{filepath.Dir(upstreams), filepath.Dir(consumers)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeAtomically(t, upstreams, fmt.Sprintf("search corp.test\nnameserver %s\n", a.ServerAddr.Addr()))
	writeAtomically(t, hosts, "192.0.2.9 printer.lan\n")
	run := filepath.Join(dir, "run")
	d := a.Start(t, a.Client, binary(t), "-d", "-f", "/dev/null", "--listen", stub.String(), "--upstreams-file", upstreams,
		"--resolv-conf", consumers, "--hosts", hosts, "--run-dir", run)
	for _, stage := range []string{"engine", "actuator", "supervisor"} {
		if !d.WaitLog("msg=confined daemon=dyad-dns proc="+stage, 10*time.Second) {
			t.Fatalf("the %s did not confine itself\n%s", stage, d.Output())
		}
	}

	if r := kdig(t, a, stub, "www.example.test.", "A"); r.RCODE != 0 || len(r.AnswerRRs) != 1 {
		t.Fatalf("www through unbound: %+v\n%s", r, d.Output())
	}
	if r := kdig(t, a, stub, "printer.lan.", "A"); r.RCODE != 0 || len(r.AnswerRRs) != 1 {
		t.Errorf("printer.lan from the hosts file: %+v", r)
	}
	if !testnet.WaitFor(5*time.Second, func() bool {
		b, _ := os.ReadFile(consumers)
		return strings.Contains(string(b), "nameserver "+stub.String()) && strings.Contains(string(b), "search corp.test")
	}) {
		b, _ := os.ReadFile(consumers)
		t.Errorf("the consumers' resolv.conf:\n%s\nwant it pointing at %s, searching corp.test\n%s", b, stub, d.Output())
	}

	// A new lease names another upstream: the daemon follows.
	writeAtomically(t, upstreams, fmt.Sprintf("search corp.test\nnameserver %s\n", b.ServerAddr.Addr()))
	want := b.ServerAddr.Addr().String() + ":53"
	if !testnet.WaitFor(10*time.Second, func() bool { st := status(t, run); return len(st.Upstreams) == 1 && st.Upstreams[0] == want }) {
		t.Fatalf("upstreams %v, want [%s]\n%s", status(t, run).Upstreams, want, d.Output())
	}
	if r := kdig(t, a, stub, "b.example.test.", "A"); r.RCODE != 0 || len(r.AnswerRRs) != 1 {
		t.Errorf("b through dnsmasq, after the switch: %+v", r)
	}

	procs := testnet.StageProcs(t, "dyad-dns", d.Pid())
	supCaps := uint64(1)<<6 | 1<<7 | 1<<8 | 1<<5 // SETGID SETUID SETPCAP KILL
	testnet.CheckConfinement(t, "supervisor", procs["supervisor"], testnet.Confinement{Caps: supCaps, Supervisor: true})
	testnet.CheckConfinement(t, "actuator", procs["actuator"], testnet.Confinement{})
	testnet.CheckConfinement(t, "engine", procs["engine"], testnet.Confinement{UID: dns.DefaultEngineID, GID: dns.DefaultEngineID, Engine: true})
}

// TestCompromisedEngineAgainstRealActuator plays a compromised engine
// against the actuator process itself, started from the real binary with
// its sandbox: a resolv.conf pointing anywhere but at the stub, a search
// domain that is not a name, and every operation of the other grants are
// refused; pointing at the stub is done.
func TestCompromisedEngineAgainstRealActuator(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	dir := publicDir(t)
	consumers := filepath.Join(dir, "resolv.conf")
	stub := netip.MustParseAddr("127.0.0.53")
	a := actuatortest.Start(t, n, binary(t), "dyad-dns", "dns", "-f", "/dev/null", "--listen", stub.String(), "--resolv-conf", consumers,
		"--upstreams-file", "none", "--hosts", "none", "--run-dir", filepath.Join(dir, "run"), "192.0.2.53")
	for _, m := range []privsep.Message{
		&privsep.ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.66")}},
		&privsep.ResolvConf{Nameservers: []netip.Addr{stub, netip.MustParseAddr("8.8.8.8")}},
		&privsep.ResolvConf{},
		&privsep.ResolvConf{Nameservers: []netip.Addr{stub}, Search: []string{"lan\nnameserver 192.0.2.66"}},
		&privsep.Hostname{Name: "pwned"},
		&privsep.NTPServers{Servers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		&privsep.ClockStep{Offset: 1},
		&privsep.LinkUp{Interface: n.ClientIf},
	} {
		if r := a.Ask(m); r.Error == "" {
			t.Errorf("%s %+v was not refused", m.Kind(), m)
		}
	}
	if _, err := os.Stat(consumers); !os.IsNotExist(err) {
		t.Errorf("resolv.conf written by refused requests: %v", err)
	}
	if r := a.Ask(&privsep.ResolvConf{Nameservers: []netip.Addr{stub}, Search: []string{"lan"}}); r.Error != "" {
		t.Fatalf("pointing at the stub refused: %s\n%s", r.Error, a.Proc.Output())
	}
	b, err := os.ReadFile(consumers)
	if err != nil || !strings.Contains(string(b), "nameserver 127.0.0.53\n") || strings.Contains(string(b), "192.0.2.66") {
		t.Errorf("resolv.conf: %v\n%s", err, b)
	}
}

// dnsperf runs dnsperf from the client's namespace against the stub with
// the queries of file, each once, and returns how many were sent and
// lost.
func dnsperf(t *testing.T, n *testnet.Net, stub netip.Addr, file string, args ...string) (sent, lost int, out []byte) {
	t.Helper()
	// dnsperf's own buffers large: a loss is the stub's.
	out, err := n.Run(t, n.Client, "dnsperf", append([]string{"-s", stub.String(), "-d", file, "-n", "1", "-t", "3", "-b", "4096"}, args...)...)
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	st, err := testnet.ParseDnsperf(out)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sent, st.Lost, out
}

// TestFloodOfUniqueNames: a flood of 20,000 names never asked before
// (each a negative answer the cache may keep) while clients keep asking
// a few cached names: the cache stays within its bound of 1,000 entries,
// the engine's memory within 32 MiB, and no answer is lost, to the flood
// or to the cached names.
func TestFloodOfUniqueNames(t *testing.T) {
	testnet.RequireRoot(t)
	testnet.RequireTools(t, "dnsperf")
	n := testnet.NewNet(t)
	stub := n.AddClientAddress(t).Addr()
	n.StartUnbound(t, []string{
		"example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60",
		"www.example.test. 300 IN A 192.0.2.80",
		"mail.example.test. 300 IN A 192.0.2.25",
	})
	dir := publicDir(t)
	conf := filepath.Join(dir, "dns.yaml")
	const entries = 1000
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: [%s]\nupstreams: [%s]\nhosts_file: none\nresolv_conf: none\nupstreams_file: none\ncache_entries: %d\n",
		stub, n.ServerAddr.Addr(), entries)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	d := n.Start(t, n.Client, binary(t), "-f", conf, "--run-dir", run)
	if !d.WaitLog("msg=upstreams daemon=dyad-dns proc=engine", 10*time.Second) {
		t.Fatalf("no engine\n%s", d.Output())
	}
	var flood, hot strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&flood, "u%d.example.test A\n", i)
	}
	for range 2000 {
		hot.WriteString("www.example.test A\nmail.example.test A\n")
	}
	floodFile, hotFile := filepath.Join(dir, "flood"), filepath.Join(dir, "hot")
	os.WriteFile(floodFile, []byte(flood.String()), 0o644)
	os.WriteFile(hotFile, []byte(hot.String()), 0o644)
	if r := kdig(t, n, stub, "www.example.test.", "A"); len(r.AnswerRRs) != 1 {
		t.Fatalf("www: %+v", r)
	}

	var wg sync.WaitGroup
	var hotSent, hotLost int
	var hotOut []byte
	wg.Add(1)
	go func() { defer wg.Done(); hotSent, hotLost, hotOut = dnsperf(t, n, stub, hotFile, "-Q", "2000") }()
	sent, lost, out := dnsperf(t, n, stub, floodFile, "-c", "4", "-q", "200")
	wg.Wait()
	if lost != 0 || hotLost != 0 {
		t.Errorf("lost %d of %d flooding queries and %d of %d to cached names\n%s\n%s", lost, sent, hotLost, hotSent, out, hotOut)
	}
	if snmp, err := n.Run(t, n.Client, "cat", "/proc/net/snmp"); err == nil {
		for _, line := range strings.Split(string(snmp), "\n") {
			if strings.HasPrefix(line, "Udp:") {
				t.Log(line)
			}
		}
	}
	st := status(t, run)
	engine := testnet.StageProcs(t, "dyad-dns", d.Pid())["engine"]
	rss := testnet.ProcStatus(engine)["VmRSS"]
	var kb int
	fmt.Sscan(rss, &kb)
	t.Logf("after %d unique names: %d entries, %d bytes in the cache; engine RSS %d KiB; %d hits, %d misses", sent, st.Cache.Entries, st.Cache.Bytes, kb, st.Stats["hits"], st.Stats["misses"])
	if st.Cache.Entries > entries || st.Cache.Entries < entries/2 {
		t.Errorf("%d entries in a cache bounded to %d", st.Cache.Entries, entries)
	}
	if kb == 0 || kb > 32<<10 {
		t.Errorf("engine RSS %q, want within 32 MiB", rss)
	}
	if st.Stats["hits"] < uint64(hotSent)/2 {
		t.Errorf("%d hits for %d queries of cached names: the flood pushed them out", st.Stats["hits"], hotSent)
	}
}
