package dhcp_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/actuatortest"
	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/privsep"
)

// TestCompromisedEngineAgainstRealActuator plays a compromised engine
// against the actuator process itself, started from the real binary in a
// network namespace, sandbox and all: the test holds the supervisor's end
// of the control channel and writes straight to the engine's end of the
// pipe. Every hostile request is refused and logged, nothing reaches the
// host, and the actuator stays alive and serves a legitimate request.
func TestCompromisedEngineAgainstRealActuator(t *testing.T) {
	n := testnet.NewNet(t)
	c := newClient(t, n)
	// The supervisor makes the state directory; here the test stands in.
	if err := os.MkdirAll(c.state, 0o700); err != nil {
		t.Fatal(err)
	}
	a := startActuator(t, n, c, n.ClientIf)
	p, eng, ask := a.Proc, a.Engine, a.Ask

	hostile := []privsep.Message{
		&privsep.LinkUp{Interface: "lo"},
		&privsep.AddrReplace{Interface: "veth-other", Address: netip.MustParsePrefix("10.9.9.9/24"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.AddrReplace{Interface: n.ClientIf, Address: netip.MustParsePrefix("127.0.0.9/8"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.AddrReplace{Interface: n.ClientIf, Address: netip.MustParsePrefix("239.1.1.1/24"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.RouteReplace{Route: privsep.Route{Interface: n.ClientIf, Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("203.0.113.1")}},
		&privsep.LeaseSave{Lease: privsep.Lease{Interface: "../../etc"}},
		&privsep.Hostname{Name: "pwned"},
	}
	for _, m := range hostile {
		if r := ask(m); r.Error == "" {
			t.Errorf("%s %+v was not refused", m.Kind(), m)
		}
	}
	// Garbage and an oversize datagram, raw.
	for _, raw := range [][]byte{{0xde, 0xad, 0xbe, 0xef}, make([]byte, privsep.MaxMessage+1)} {
		if err := writeRaw(eng, raw); err != nil {
			t.Fatal(err)
		}
		_, got, _, err := eng.Receive()
		for err == nil && got.Kind() == privsep.KindLink {
			_, got, _, err = eng.Receive()
		}
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := got.(*privsep.Reply); !ok || r.Error == "" {
			t.Errorf("raw %d bytes: got %+v, want a refusal", len(raw), got)
		}
	}

	if p.Exited() {
		t.Fatalf("the actuator died:\n%s", p.Output())
	}
	if r := ask(&privsep.LinkMTU{Interface: n.ClientIf, MTU: 1400}); r.Error != "" {
		t.Errorf("a legitimate request was refused: %s", r.Error)
	}
	if mtu := n.Link(t, n.Client, n.ClientIf).MTU; mtu != 1400 {
		t.Errorf("MTU %d after a granted change to 1400", mtu)
	}
	if a := n.Addrs(t, n.Client, n.ClientIf); len(a) != 0 {
		t.Errorf("addresses %v reached the host", a)
	}
	if _, err := os.Stat(filepath.Join(c.state, "..", "..", "etc.lease")); err == nil {
		t.Errorf("a lease file was written outside the state directory")
	}
	if out := string(p.Output()); strings.Count(out, "refused engine request") < len(hostile)+2 {
		t.Errorf("refusals not all logged:\n%s", out)
	}
}

// startActuator starts the actuator stage for the interfaces or patterns
// given, hands it a session as the supervisor would, and says hello.
func startActuator(t *testing.T, n *testnet.Net, c *client, ifaces ...string) *actuatortest.Session {
	t.Helper()
	return actuatortest.Start(t, n, binary(t), "dyad-dhcp", "dhcp", c.args(ifaces...)...)
}

// TestSavedLeasesCountAgainstTheLimit starts the actuator over a state
// directory that already holds the most leases allowed, for interfaces
// its pattern matches: a compromised engine cannot save one more.
func TestSavedLeasesCountAgainstTheLimit(t *testing.T) {
	n := testnet.NewNet(t)
	c := newClient(t, n)
	if err := os.MkdirAll(c.state, 0o700); err != nil {
		t.Fatal(err)
	}
	const limit = 16 // privsep.Policy's default MaxLeases
	lease := func(i int) privsep.Lease {
		return privsep.Lease{
			Interface: fmt.Sprintf("dy%d", i),
			Address:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(i), 2}), 24),
			Server:    netip.AddrFrom4([4]byte{10, 77, byte(i), 1}),
			LeaseTime: 3600, RenewTime: 1800, RebindTime: 3150,
			Acquired: time.Now().Unix(),
		}
	}
	for i := range limit {
		b, err := json.Marshal(lease(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.state, fmt.Sprintf("dy%d.lease", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := startActuator(t, n, c, "dy*")
	if r := a.Ask(&privsep.LeaseSave{Lease: lease(limit)}); r.Error == "" {
		t.Errorf("a lease beyond the %d already saved was accepted", limit)
	}
	if _, err := os.Stat(filepath.Join(c.state, fmt.Sprintf("dy%d.lease", limit))); err == nil {
		t.Errorf("the lease beyond the limit was written")
	}
	// Replacing a saved one stays allowed.
	if r := a.Ask(&privsep.LeaseSave{Lease: lease(3)}); r.Error != "" {
		t.Errorf("replacing a saved lease was refused: %s", r.Error)
	}
}

// TestSavedLeaseDoesNotAdoptAPermanentAddress: a lease file naming the
// operator's permanent address (a compromised engine could have saved
// one) does not make that address the daemon's, so no engine can remove
// it.
func TestSavedLeaseDoesNotAdoptAPermanentAddress(t *testing.T) {
	n := testnet.NewNet(t)
	c := newClient(t, n)
	if err := os.MkdirAll(c.state, 0o700); err != nil {
		t.Fatal(err)
	}
	static := netip.MustParsePrefix("10.78.0.2/24")
	if out, err := n.Run(t, n.Client, "ip", "addr", "add", static.String(), "dev", n.ClientIf); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	l := privsep.Lease{
		Interface: n.ClientIf, Address: static, Server: netip.MustParseAddr("10.78.0.1"),
		LeaseTime: 3600, RenewTime: 1800, RebindTime: 3150, Acquired: time.Now().Unix(),
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.state, n.ClientIf+".lease"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startActuator(t, n, c, n.ClientIf)
	a.Ask(&privsep.AddrRemove{Interface: n.ClientIf, Address: static})
	if addrs := n.Addrs(t, n.Client, n.ClientIf); len(addrs) != 1 || addrs[0] != static {
		t.Errorf("the permanent address %s is gone: the link holds %v", static, addrs)
	}
}

func writeRaw(c *privsep.Conn, b []byte) error {
	raw, err := c.File().SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		_, werr = syscallWrite(int(fd), b)
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

func syscallWrite(fd int, b []byte) (int, error) { return unix.Write(fd, b) }
