package dhcp_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/daemons/dhcp"
	"github.com/dyad-project/dyad/internal/testnet"
)

// Integration tests: the real binary against dnsmasq and kea, in network
// namespaces the tests create, inside private mount, UTS and PID
// namespaces (testnet.Isolate), so nothing of the host is ever written.

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

var servers = []testnet.Kind{testnet.Dnsmasq, testnet.Kea}

// binary returns the dyad-dhcp to test.
func binary(t *testing.T) string {
	return testnet.Binary(t, "dyad-dhcp", "github.com/dyad-project/dyad/daemons/dhcp/cmd/dyad-dhcp")
}

// client is one run of dyad-dhcp with its paths in a temporary directory.
type client struct {
	*testnet.Proc
	net                             *testnet.Net
	dir, state, run, resolv, ntpLst string
}

func newClient(t *testing.T, n *testnet.Net) *client {
	t.Helper()
	testnet.RequireRoot(t)
	dir, err := os.MkdirTemp("", "dyad-dhcp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &client{
		net: n, dir: dir,
		state:  filepath.Join(dir, "state"),
		run:    filepath.Join(dir, "run"),
		resolv: filepath.Join(dir, "resolv.conf"),
		ntpLst: filepath.Join(dir, "ntp.conf"),
	}
}

func (c *client) args(extra ...string) []string {
	a := []string{"-d", "--state-dir", c.state, "--run-dir", c.run, "--resolv-conf", c.resolv, "--ntp-conf", c.ntpLst, "-f", "/dev/null"}
	return append(a, extra...)
}

// start runs the long-lived daemon on the Net's client interface.
func (c *client) start(t *testing.T, extra ...string) {
	t.Helper()
	c.Proc = c.net.Start(t, c.net.Client, binary(t), c.args(append(extra, c.net.ClientIf)...)...)
}

// oneShot runs dyad-dhcp -1 to completion.
func (c *client) oneShot(t *testing.T, timeout int, extra ...string) ([]byte, error) {
	t.Helper()
	args := c.args(append([]string{"-1", "-t", strconv.Itoa(timeout)}, append(extra, c.net.ClientIf)...)...)
	return c.net.Run(t, c.net.Client, binary(t), args...)
}

// waitLog waits for the daemon to log substr.
func (c *client) waitLog(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	if !c.WaitLog(substr, timeout) {
		t.Fatalf("dyad-dhcp did not log %q within %v:\n%s", substr, timeout, c.Output())
	}
}

// addr returns the only IPv4 address of the client interface, failing the
// test if there is not exactly one.
func (c *client) addr(t *testing.T) testnet.Addr {
	t.Helper()
	addrs := c.net.AddrLifetimes(t, c.net.Client, c.net.ClientIf)
	if len(addrs) != 1 {
		t.Fatalf("client interface has %d IPv4 addresses, want 1: %v", len(addrs), addrs)
	}
	return addrs[0]
}

func (c *client) routes(t *testing.T) map[string]testnet.Route {
	t.Helper()
	out := map[string]testnet.Route{}
	for _, r := range c.net.Routes(t, c.net.Client) {
		if r.Protocol == "dhcp" {
			out[r.Dst.String()+" via "+r.Gateway.String()] = r
		}
	}
	return out
}

// monitorAddrs records address events on the client side, to prove that an
// address never flapped.
func monitorAddrs(t *testing.T, n *testnet.Net) *testnet.Proc {
	t.Helper()
	p := n.Start(t, n.Client, "ip", "-4", "monitor", "address")
	time.Sleep(200 * time.Millisecond) // ip monitor subscribes at start-up
	return p
}

func assertNoDeletion(t *testing.T, mon *testnet.Proc) {
	t.Helper()
	if out := string(mon.Output()); strings.Contains(out, "Deleted") {
		t.Errorf("the address flapped:\n%s", out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startBound starts a server of kind on a new Net (with options o, or the
// defaults) and a long-lived client that holds a lease from it.
func startBound(t *testing.T, kind testnet.Kind, o *testnet.ServerOptions) (*testnet.Net, *testnet.Server, *client) {
	t.Helper()
	n := testnet.NewNet(t)
	opts := n.DefaultOptions()
	if o != nil {
		opts = *o
	}
	srv := testnet.StartServer(t, kind, n, opts)
	c := newClient(t, n)
	c.start(t)
	c.waitLog(t, `msg=bound`, 20*time.Second)
	return n, srv, c
}

func forEachServer(t *testing.T, f func(t *testing.T, kind testnet.Kind)) {
	for _, kind := range servers {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			f(t, kind)
		})
	}
}

func TestOneShotLease(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		o := n.DefaultOptions()
		o.MTU = 1400
		o.Search = []string{"dyad.test", "example.test"}
		testnet.StartServer(t, kind, n, o)
		c := newClient(t, n)

		out, err := c.oneShot(t, 20)
		if err != nil {
			t.Fatalf("dyad-dhcp -1: %v\n%s", err, out)
		}
		a := c.addr(t)
		if !a.Prefix.Masked().Contains(o.RangeStart) || a.Prefix.Bits() != n.ServerAddr.Bits() {
			t.Errorf("address %s not in the server's subnet %s", a.Prefix, n.ServerAddr)
		}
		if a.Prefix.Addr().Less(o.RangeStart) || o.RangeEnd.Less(a.Prefix.Addr()) {
			t.Errorf("address %s outside the range %s-%s", a.Prefix.Addr(), o.RangeStart, o.RangeEnd)
		}
		if !a.Dynamic || a.Valid > time.Hour || a.Valid < time.Hour-time.Minute || a.Preferred > a.Valid {
			t.Errorf("address lifetimes valid %v preferred %v, want about the hour's lease", a.Valid, a.Preferred)
		}
		def, ok := c.routes(t)["0.0.0.0/0 via "+n.ServerAddr.Addr().String()]
		if !ok {
			t.Errorf("no default route via %s tagged proto dhcp: %v", n.ServerAddr.Addr(), n.Routes(t, n.Client))
		} else if def.Src != a.Prefix.Addr() {
			t.Errorf("default route source %s, want %s", def.Src, a.Prefix.Addr())
		}
		if mtu := n.Link(t, n.Client, n.ClientIf).MTU; mtu != 1400 {
			t.Errorf("MTU %d, want 1400", mtu)
		}
		rc := readFile(t, c.resolv)
		for _, want := range []string{"nameserver " + n.ServerAddr.Addr().String(), "search dyad.test example.test", "domain dyad.test"} {
			if !strings.Contains(rc, want) {
				t.Errorf("resolv.conf lacks %q:\n%s", want, rc)
			}
		}
		if ntp := readFile(t, c.ntpLst); !strings.Contains(ntp, n.ServerAddr.Addr().String()) {
			t.Errorf("NTP list lacks %s:\n%s", n.ServerAddr.Addr(), ntp)
		}
		if _, err := os.Stat(filepath.Join(c.state, n.ClientIf+".lease")); err != nil {
			t.Errorf("lease not saved: %v", err)
		}
	})
}

func TestOneShotTimeout(t *testing.T) {
	n := testnet.NewNet(t) // no server
	c := newClient(t, n)
	start := time.Now()
	out, err := c.oneShot(t, 3)
	if err == nil {
		t.Fatalf("dyad-dhcp -1 with no server succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "no lease within 3s") {
		t.Errorf("no clear line about the timeout:\n%s", out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v to give up after 3 s", d)
	}
}

func TestClasslessRoutes(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		o := n.DefaultOptions()
		srv := n.ServerAddr.Addr()
		o.Routes = []testnet.StaticRoute{
			{Dst: netip.MustParsePrefix("10.99.0.0/16"), Gateway: srv},
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: srv},
		}
		// Option 3 must be ignored when 121 is present (RFC 3442).
		o.Router = netip.AddrFrom4([4]byte{srv.As4()[0], srv.As4()[1], srv.As4()[2], 254})
		testnet.StartServer(t, kind, n, o)
		c := newClient(t, n)
		if out, err := c.oneShot(t, 20); err != nil {
			t.Fatalf("dyad-dhcp -1: %v\n%s", err, out)
		}
		routes := c.routes(t)
		for _, want := range []string{"10.99.0.0/16 via " + srv.String(), "0.0.0.0/0 via " + srv.String()} {
			if _, ok := routes[want]; !ok {
				t.Errorf("missing route %s; have %v", want, routes)
			}
		}
		if _, ok := routes["0.0.0.0/0 via "+o.Router.String()]; ok {
			t.Errorf("option 3 router used although option 121 was given")
		}
	})
}

// shortLease returns options whose lease renews within seconds: kea takes
// short leases; dnsmasq's minimum is two minutes, so it gets a short T1.
func shortLease(n *testnet.Net, kind testnet.Kind, lease time.Duration) testnet.ServerOptions {
	o := n.DefaultOptions()
	if kind == testnet.Dnsmasq {
		o.LeaseTime = 2 * time.Minute
		o.RenewTime = 6 * time.Second
		o.RebindTime = 100 * time.Second
		return o
	}
	o.LeaseTime = lease
	return o
}

func TestRenewal(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		srv := testnet.StartServer(t, kind, n, shortLease(n, kind, 12*time.Second))
		mon := monitorAddrs(t, n)
		c := newClient(t, n)
		c.start(t)
		c.waitLog(t, `msg=bound`, 20*time.Second)
		first := c.addr(t)
		mark := srv.Mark()
		c.waitLog(t, `msg="lease extended"`, 30*time.Second)
		c.waitLog(t, `msg=renewing`, time.Second)
		if !srv.WaitLogAfter(mark, renewalLog(kind), 5*time.Second) {
			t.Errorf("the server did not log the renewal:\n%s", srv.Log())
		}
		if c.addr(t).Prefix != first.Prefix {
			t.Errorf("address changed on renewal")
		}
		// The unicast REQUEST of RENEWING was answered: no rebinding.
		if strings.Contains(string(c.Output()), "msg=rebinding") {
			t.Errorf("the renewal went unanswered until rebinding:\n%s", c.Output())
		}
		assertNoDeletion(t, mon)
	})
}

// renewalLog is what each server logs when it acknowledges a renewal.
func renewalLog(kind testnet.Kind) string {
	if kind == testnet.Kea {
		return "DHCP4_LEASE_ALLOC" // kea logs a renewal as an allocation of the same lease
	}
	return "DHCPACK("
}

func TestServerLostThenExpiryThenBack(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		o := shortLease(n, kind, 12*time.Second)
		if kind == testnet.Dnsmasq {
			o.RenewTime, o.RebindTime = 0, 0
		}
		srv := testnet.StartServer(t, kind, n, o)
		c := newClient(t, n)
		c.start(t)
		c.waitLog(t, `msg=bound`, 20*time.Second)
		srv.Proc.Stop()
		lease := o.LeaseTime
		c.waitLog(t, `msg=rebinding`, lease)
		c.waitLog(t, `expired`, lease)
		// Expiry removes the address and the routes.
		deadline := time.Now().Add(5 * time.Second)
		for len(n.Addrs(t, n.Client, n.ClientIf)) != 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if a := n.Addrs(t, n.Client, n.ClientIf); len(a) != 0 {
			t.Errorf("address still there after expiry: %v", a)
		}
		if r := c.routes(t); len(r) != 0 {
			t.Errorf("routes still there after expiry: %v", r)
		}
		mark := c.Mark()
		srv.Restart(t)
		if !c.WaitLogAfter(mark, `msg=bound`, 90*time.Second) {
			t.Fatalf("no new lease after the server came back:\n%s", c.Output())
		}
		c.addr(t)
	})
}

func TestNAKStartsOver(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		o := shortLease(n, kind, 12*time.Second)
		srv := testnet.StartServer(t, kind, n, o)
		c := newClient(t, n)
		c.start(t)
		c.waitLog(t, `msg=bound`, 20*time.Second)
		old := c.addr(t).Prefix.Addr()
		// Reserve the client's address for another machine: the next
		// renewal is NAKed.
		o.Hosts = []testnet.Host{{MAC: []byte{0x02, 0, 0, 0, 0, 0x99}, Addr: old}}
		mark := c.Mark()
		srv.Reconfigure(t, o)
		if !c.WaitLogAfter(mark, "NAK from", 60*time.Second) {
			t.Fatalf("no NAK seen:\n%s", c.Output())
		}
		if !c.WaitLogAfter(mark, `msg=bound`, 60*time.Second) {
			t.Fatalf("no new lease after the NAK:\n%s", c.Output())
		}
		if got := c.addr(t).Prefix.Addr(); got == old {
			t.Errorf("kept the NAKed address %s", old)
		}
	})
}

func TestRestartAfterSIGKILLKeepsAddress(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n, srv, c := startBound(t, kind, nil)
		first := c.addr(t).Prefix
		mon := monitorAddrs(t, n)
		c.Kill()
		c.Wait(10 * time.Second)
		if a := c.addr(t).Prefix; a != first {
			t.Fatalf("address changed when the daemon died: %s", a)
		}
		mark := srv.Mark()
		c.start(t)
		// The new actuator adopts the address of the saved lease, so the
		// engine extends a lease it holds rather than binding anew.
		c.waitLog(t, `msg="lease extended"`, 20*time.Second)
		c.waitLog(t, "adopted the address of a saved lease", time.Second)
		if strings.Contains(string(c.Output()), "type=DISCOVER") || strings.Contains(string(srv.Output())[mark:], "DHCPDISCOVER") {
			t.Errorf("a DISCOVER was sent; INIT-REBOOT should have asked for the address directly")
		}
		if a := c.addr(t).Prefix; a != first {
			t.Errorf("INIT-REBOOT got %s, want %s", a, first)
		}
		assertNoDeletion(t, mon)
	})
}

func TestEngineRestartKeepsAddress(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n, _, c := startBound(t, kind, nil)
		first := c.addr(t).Prefix
		mon := monitorAddrs(t, n)
		procs := testnet.StageProcs(t, "dyad-dhcp", c.Pid())
		mark := c.Mark()
		if err := syscallKill(procs["engine"]); err != nil {
			t.Fatal(err)
		}
		if !c.WaitLogAfter(mark, "engine exited: restarting", 10*time.Second) {
			t.Fatalf("the supervisor did not restart the engine:\n%s", c.Output())
		}
		if !c.WaitLogAfter(mark, `msg="lease extended"`, 30*time.Second) {
			t.Fatalf("the new engine did not take the lease over:\n%s", c.Output())
		}
		if a := c.addr(t).Prefix; a != first {
			t.Errorf("address %s, want %s", a, first)
		}
		if procs2 := testnet.StageProcs(t, "dyad-dhcp", c.Pid()); procs2["actuator"] != procs["actuator"] || procs2["engine"] == procs["engine"] {
			t.Errorf("processes before %v, after %v: want the same actuator and a new engine", procs, procs2)
		}
		assertNoDeletion(t, mon)
	})
}

func TestStatusSocket(t *testing.T) {
	n := testnet.NewNet(t)
	testnet.StartDnsmasq(t, n, n.DefaultOptions())
	c := newClient(t, n)
	c.start(t)
	c.waitLog(t, `msg=bound`, 20*time.Second)
	out, err := exec.Command(binary(t), "status", "--run-dir", c.run).CombinedOutput()
	if err != nil {
		t.Fatalf("dyad-dhcp status: %v\n%s", err, out)
	}
	var st struct {
		Daemon     string
		Interfaces []struct {
			Name  string
			State string
			Lease *struct{ Address string }
		}
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, out)
	}
	if len(st.Interfaces) != 1 || st.Interfaces[0].Name != n.ClientIf || st.Interfaces[0].State != "BOUND" || st.Interfaces[0].Lease == nil {
		t.Errorf("status %s", out)
	} else if st.Interfaces[0].Lease.Address != c.addr(t).Prefix.String() {
		t.Errorf("status address %s, host has %s", st.Interfaces[0].Lease.Address, c.addr(t).Prefix)
	}
}

// TestSandboxOfRunningDaemon reads /proc of each process of a daemon that
// holds a lease.
func TestSandboxOfRunningDaemon(t *testing.T) {
	n := testnet.NewNet(t)
	testnet.StartDnsmasq(t, n, n.DefaultOptions())
	c := newClient(t, n)
	c.start(t)
	c.waitLog(t, `msg=bound`, 20*time.Second)
	// The supervisor drops its privilege once both children run.
	c.waitLog(t, `msg=confined daemon=dyad-dhcp proc=supervisor`, 5*time.Second)
	procs := testnet.StageProcs(t, "dyad-dhcp", c.Pid())
	const netAdmin = uint64(1) << 12
	supCaps := uint64(1)<<6 | 1<<7 | 1<<8 | 1<<5 // SETGID SETUID SETPCAP KILL: no NET_ADMIN
	testnet.CheckConfinement(t, "supervisor", procs["supervisor"], testnet.Confinement{Caps: supCaps, Supervisor: true})
	testnet.CheckConfinement(t, "actuator", procs["actuator"], testnet.Confinement{Caps: netAdmin})
	testnet.CheckConfinement(t, "engine", procs["engine"], testnet.Confinement{UID: dhcp.DefaultEngineID, GID: dhcp.DefaultEngineID, Engine: true})
}

// TestNoDescriptorLeaks starts the daemon holding a file its caller left
// open, as a careless init might: neither child may inherit it.
func TestNoDescriptorLeaks(t *testing.T) {
	n := testnet.NewNet(t)
	testnet.StartDnsmasq(t, n, n.DefaultOptions())
	c := newClient(t, n)
	secret := filepath.Join(c.dir, "secret")
	if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := n.Command(t.Context(), n.Client, binary(t), c.args(n.ClientIf)...)
	// Above the descriptors the children are given, which would cover it.
	cmd.ExtraFiles = make([]*os.File, 20)
	cmd.ExtraFiles[19] = f
	c.Proc = testnet.StartCommand(t, cmd)
	c.waitLog(t, `msg=bound`, 20*time.Second)
	for stage, pid := range testnet.StageProcs(t, "dyad-dhcp", c.Pid()) {
		if stage == "supervisor" {
			continue
		}
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); target == secret {
				t.Errorf("the %s holds the caller's file as descriptor %s", stage, e.Name())
			}
		}
	}
}

func syscallKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func TestSeveralInterfaces(t *testing.T) {
	n1 := testnet.NewNet(t)
	n2 := testnet.NewNetConfig(t, testnet.Config{Client: n1.Client, ServerIf: "veth-s2", ClientIf: "veth-c2"})
	testnet.StartDnsmasq(t, n1, n1.DefaultOptions())
	testnet.StartKea(t, n2, n2.DefaultOptions())
	c := newClient(t, n1)
	c.Proc = n1.Start(t, n1.Client, binary(t), c.args("veth-c*")...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && strings.Count(string(c.Output()), "msg=bound") < 2 {
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range []*testnet.Net{n1, n2} {
		addrs := n.Addrs(t, n.Client, n.ClientIf)
		if len(addrs) != 1 || !addrs[0].Masked().Contains(n.ServerAddr.Addr()) {
			t.Errorf("%s: addresses %v, want one in %s", n.ClientIf, addrs, n.ServerAddr.Masked())
		}
	}
	defaults := 0
	for _, r := range n1.Routes(t, n1.Client) {
		if r.Dst.Bits() == 0 && r.Protocol == "dhcp" {
			defaults++
		}
	}
	if defaults != 2 {
		t.Errorf("%d default routes, want one per link: %v", defaults, n1.Routes(t, n1.Client))
	}
	rc := readFile(t, c.resolv)
	for _, n := range []*testnet.Net{n1, n2} {
		if !strings.Contains(rc, "nameserver "+n.ServerAddr.Addr().String()) {
			t.Errorf("resolv.conf lacks the nameserver of %s:\n%s", n.ClientIf, rc)
		}
	}
}

func TestCarrierLossThenInitReboot(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n, srv, c := startBound(t, kind, nil)
		first := c.addr(t).Prefix
		mark := c.Mark()
		// Taking the server's end down drops the client's carrier.
		if out, err := n.Run(t, n.Server, "ip", "link", "set", n.ServerIf, "down"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !c.WaitLogAfter(mark, "link down", 10*time.Second) {
			t.Fatalf("carrier loss not seen:\n%s", c.Output())
		}
		smark := srv.Mark()
		if out, err := n.Run(t, n.Server, "ip", "link", "set", n.ServerIf, "up"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !c.WaitLogAfter(mark, "lease extended", 30*time.Second) {
			t.Fatalf("no INIT-REBOOT after the carrier came back:\n%s", c.Output())
		}
		if strings.Contains(string(srv.Output())[smark:], "DHCPDISCOVER") {
			t.Errorf("a DISCOVER was sent after the carrier came back; INIT-REBOOT should ask for the address")
		}
		if a := c.addr(t).Prefix; a != first {
			t.Errorf("address %s after the carrier came back, want %s", a, first)
		}
		if _, ok := c.routes(t)["0.0.0.0/0 via "+n.ServerAddr.Addr().String()]; !ok {
			t.Errorf("default route not restored: %v", n.Routes(t, n.Client))
		}
	})
}

func TestStopKeepsOrReleases(t *testing.T) {
	for _, release := range []bool{false, true} {
		t.Run(fmt.Sprintf("release=%v", release), func(t *testing.T) {
			t.Parallel()
			n := testnet.NewNet(t)
			srv := testnet.StartDnsmasq(t, n, n.DefaultOptions())
			c := newClient(t, n)
			if release {
				c.start(t, "--release")
			} else {
				c.start(t)
			}
			c.waitLog(t, `msg=bound`, 20*time.Second)
			held := c.addr(t).Prefix
			mark := srv.Mark()
			if err := c.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if code := c.ExitCode(); code != 0 {
				t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, c.Output())
			}
			addrs := n.Addrs(t, n.Client, n.ClientIf)
			if !release {
				if len(addrs) != 1 || addrs[0] != held {
					t.Errorf("addresses %v after a plain stop, want %s kept", addrs, held)
				}
				return
			}
			if len(addrs) != 0 {
				t.Errorf("addresses %v after a stop with --release, want none", addrs)
			}
			if !srv.WaitLogAfter(mark, "DHCPRELEASE", 5*time.Second) {
				t.Errorf("the server saw no DHCPRELEASE:\n%s", srv.Output())
			}
			if _, err := os.Stat(filepath.Join(c.state, n.ClientIf+".lease")); err == nil {
				t.Errorf("the saved lease outlived the release")
			}
		})
	}
}

// writeConfig writes a dyad-dhcp configuration file for a test.
func writeConfig(t *testing.T, c *client, yaml string) string {
	t.Helper()
	path := filepath.Join(c.dir, "dhcp.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRapidCommit(t *testing.T) {
	n := testnet.NewNet(t)
	o := n.DefaultOptions()
	o.RapidCommit = true
	srv := testnet.StartDnsmasq(t, n, o)
	c := newClient(t, n)
	conf := writeConfig(t, c, "rapid_commit: true\n")
	args := append(c.args(), "-f", conf, "-1", "-t", "20", n.ClientIf) // the last -f wins
	if out, err := n.Run(t, n.Client, binary(t), args...); err != nil {
		t.Fatalf("dyad-dhcp -1: %v\n%s", err, out)
	}
	c.addr(t)
	log := srv.Log()
	if strings.Contains(log, "DHCPOFFER") || strings.Contains(log, "DHCPREQUEST") {
		t.Errorf("an OFFER/REQUEST exchange took place; rapid commit should go from DISCOVER to ACK:\n%s", log)
	}
	if !strings.Contains(log, "DHCPACK") {
		t.Errorf("no ACK in the server's log:\n%s", log)
	}
}

// TestHostname sends a host name to the server and, when configured,
// applies the one the server hands back. The test binary runs in its own
// UTS namespace (testnet.Isolate), so the host's name is never touched.
func TestHostname(t *testing.T) {
	n := testnet.NewNet(t)
	o := n.DefaultOptions()
	o.Hostname = "leased-name"
	srv := testnet.StartDnsmasq(t, n, o)
	c := newClient(t, n)
	conf := writeConfig(t, c, "hostname: sent-name\napply_hostname: true\n")
	args := append(c.args(), "-f", conf, "-1", "-t", "20", n.ClientIf)
	before, _ := os.Hostname()
	t.Cleanup(func() { exec.Command("hostname", before).Run() })
	if out, err := n.Run(t, n.Client, binary(t), args...); err != nil {
		t.Fatalf("dyad-dhcp -1: %v\n%s", err, out)
	}
	if !strings.Contains(srv.Log(), "sent-name") {
		t.Errorf("the server did not see the host name sent:\n%s", srv.Log())
	}
	if got, _ := os.Hostname(); got != "leased-name" {
		t.Errorf("host name %q, want the leased %q", got, "leased-name")
	}
}

// TestLinkDownAtStart starts with the link administratively down, as at
// boot: the daemon brings it up, and the packet socket's report of the
// link having been down must not stop the engine.
func TestLinkDownAtStart(t *testing.T) {
	n := testnet.NewNet(t)
	testnet.StartDnsmasq(t, n, n.DefaultOptions())
	if out, err := n.Run(t, n.Client, "ip", "link", "set", n.ClientIf, "down"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := newClient(t, n)
	out, err := c.oneShot(t, 20)
	if err != nil {
		t.Fatalf("dyad-dhcp -1: %v\n%s", err, out)
	}
	if !n.Link(t, n.Client, n.ClientIf).Up {
		t.Errorf("the link is still down")
	}
	c.addr(t)
	if strings.Contains(string(out), "engine exited") {
		t.Errorf("the engine died on the way:\n%s", out)
	}
}

// TestRestartIntoNAK kills the daemon, has the server refuse the address it
// held, and starts it again: the new daemon adopts the address it left on
// the link, asks for it, is refused, removes it and takes a new one. The
// old address must not stay behind next to the new.
func TestRestartIntoNAK(t *testing.T) {
	forEachServer(t, func(t *testing.T, kind testnet.Kind) {
		n := testnet.NewNet(t)
		o := n.DefaultOptions()
		srv := testnet.StartServer(t, kind, n, o)
		c := newClient(t, n)
		c.start(t)
		c.waitLog(t, `msg=bound`, 20*time.Second)
		old := c.addr(t).Prefix
		c.Kill()
		c.Wait(10 * time.Second)
		o.Hosts = []testnet.Host{{MAC: []byte{0x02, 0, 0, 0, 0, 0x98}, Addr: old.Addr()}}
		srv.Reconfigure(t, o)
		c.start(t)
		c.waitLog(t, "adopted the address of a saved lease", 10*time.Second)
		c.waitLog(t, "NAK from", 20*time.Second)
		c.waitLog(t, `msg=bound`, 30*time.Second)
		if a := c.addr(t).Prefix; a == old {
			t.Errorf("still holds the refused %s", old)
		}
	})
}
