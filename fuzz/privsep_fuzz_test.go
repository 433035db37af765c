package fuzz

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/dyad-project/dyad/privsep"
)

// pipeDecodeSeeds are datagrams the engine sends.
func pipeDecodeSeeds() [][]byte {
	var seeds [][]byte
	for _, m := range []privsep.Message{
		&privsep.Hello{Version: 1, Daemon: "dhcp"},
		&privsep.AddrReplace{Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.RouteReplace{Route: privsep.Route{Interface: "eth0", Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.0.2.1"), Source: netip.MustParseAddr("192.0.2.10")}},
		&privsep.ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Search: []string{"example.com"}},
		&privsep.LeaseSave{Lease: privsep.Lease{Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), Server: netip.MustParseAddr("192.0.2.1"), LeaseTime: 60}},
	} {
		if b, err := privsep.Marshal(1, m); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func TestPipeDecodeSeeds(t *testing.T) {
	if err := syncSeeds("FuzzPipeDecode", oneArg(pipeDecodeSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzPipeDecode covers the actuator's decoder of the typed pipe and its
// policy checks: a compromised engine may send any datagram. The
// invariant: no panic; a decoded message re-encodes; and whatever the
// Guard lets through stays within the grant and the common-sense bounds.
func FuzzPipeDecode(f *testing.F) {
	for _, s := range pipeDecodeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, m, err := privsep.Unmarshal(b)
		if err != nil {
			if !errors.Is(err, privsep.ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if _, err := privsep.Marshal(id, m); err != nil {
			t.Fatalf("decoded %s does not re-encode: %v", m.Kind(), err)
		}
		g := privsep.NewGuard(privsep.Policy{Daemon: "dhcp", Interfaces: []string{"eth0"}, Ops: []privsep.Kind{
			privsep.OpAddrReplace, privsep.OpRouteReplace, privsep.OpResolvConf, privsep.OpLeaseSave,
		}}.WithDefaultBounds())
		// Hold an address, so that route checks get past the source rule.
		held := &privsep.AddrReplace{Interface: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24"), ValidLifetime: 60, PreferredLifetime: 60}
		g.Record(held)
		if g.Check(m) != nil {
			return
		}
		switch m := m.(type) {
		case *privsep.AddrReplace:
			if m.Interface != "eth0" || !m.Address.Addr().Is4() || m.Address.Addr().IsLoopback() || m.Address.Addr().IsMulticast() {
				t.Fatalf("accepted %+v", m)
			}
		case *privsep.RouteReplace:
			if m.Route.Interface != "eth0" || m.Route.Source != held.Address.Addr() {
				t.Fatalf("accepted %+v", m)
			}
		case *privsep.ResolvConf:
			if len(m.Nameservers) > 8 {
				t.Fatalf("accepted %d nameservers", len(m.Nameservers))
			}
		case *privsep.LeaseSave:
			if m.Lease.Interface != "eth0" {
				t.Fatalf("accepted a lease for %q", m.Lease.Interface)
			}
		default:
			t.Fatalf("accepted %s, which is outside the grant", m.Kind())
		}
	})
}
