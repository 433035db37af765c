package dhcp

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/dyad-project/dyad/privsep"
)

// The tests of the state machine drive a Client with a fake clock (a fixed
// time advanced by hand) and a seeded random source, play the server with
// messages built by the dhcpv4 library and passed through the wire format,
// and check what the client asks for.

var (
	engT0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	engMAC      = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	engServer   = netip.MustParseAddr("192.0.2.1")
	engOther    = netip.MustParseAddr("192.0.2.254")
	engYI       = netip.MustParseAddr("192.0.2.10")
	engPfx      = netip.MustParsePrefix("192.0.2.10/24")
	engRouter   = netip.MustParseAddr("192.0.2.1")
	engDNS      = netip.MustParseAddr("192.0.2.53")
	engClientID = []byte{0xff, 0, 0, 0, 1, 0, 4, 0x11, 0x22, 0x33, 0x44}
)

const engIface = "eth0"

var engDefaultRoute = netip.MustParsePrefix("0.0.0.0/0")

// engLogWriter sends the client's log to the test log, shown on failure.
type engLogWriter struct{ t testing.TB }

func (w engLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type engHarness struct {
	t    *testing.T
	c    *Client
	cfg  ClientConfig
	now  time.Time
	last *dhcpv4.DHCPv4 // the last message the client sent
}

func newEngHarness(t *testing.T, mut func(*ClientConfig), saved *privsep.Lease) *engHarness {
	t.Helper()
	cfg := ClientConfig{Interface: engIface, HardwareAddr: engMAC, ClientID: engClientID}
	if mut != nil {
		mut(&cfg)
	}
	log := slog.New(slog.NewTextHandler(engLogWriter{t}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the wall clock means nothing here
			}
			return a
		},
	}))
	c := NewClient(cfg, log, rand.New(rand.NewPCG(1, 2)), saved)
	return &engHarness{t: t, c: c, cfg: cfg, now: engT0}
}

// take returns the client's actions split by type, and remembers the last
// message sent.
func (h *engHarness) take() (sends []Send, applies []Apply) {
	h.t.Helper()
	for _, a := range h.c.TakeActions() {
		switch a := a.(type) {
		case Send:
			if a.Message == nil {
				h.t.Fatal("Send without a message")
			}
			sends = append(sends, a)
			h.last = a.Message
		case Apply:
			applies = append(applies, a)
		default:
			h.t.Fatalf("unknown action %T", a)
		}
	}
	return sends, applies
}

// oneSend asserts that the client asked for exactly one message of type mt
// and nothing else.
func (h *engHarness) oneSend(mt dhcpv4.MessageType) Send {
	h.t.Helper()
	sends, applies := h.take()
	if len(sends) != 1 || len(applies) != 0 {
		h.t.Fatalf("want one %s and no Apply, got %d sends %s and %d applies (state %s, last error %q)",
			mt, len(sends), engSendTypes(sends), len(applies), h.c.State(), h.c.LastError())
	}
	if got := sends[0].Message.MessageType(); got != mt {
		h.t.Fatalf("sent %s, want %s", got, mt)
	}
	engCheckRequestBasics(h.t, sends[0].Message)
	return sends[0]
}

// none asserts that the client asked for nothing.
func (h *engHarness) none() {
	h.t.Helper()
	sends, applies := h.take()
	if len(sends)+len(applies) != 0 {
		h.t.Fatalf("want no actions, got sends %s and %d applies", engSendTypes(sends), len(applies))
	}
}

func engSendTypes(s []Send) string {
	var out []string
	for _, m := range s {
		out = append(out, m.Message.MessageType().String())
	}
	return "[" + strings.Join(out, " ") + "]"
}

// engCheckRequestBasics checks what every client message carries.
func engCheckRequestBasics(t *testing.T, m *dhcpv4.DHCPv4) {
	t.Helper()
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		t.Errorf("%s: opcode %s, want BOOTREQUEST", m.MessageType(), m.OpCode)
	}
	if !slices.Equal(m.ClientHWAddr, engMAC) {
		t.Errorf("%s: chaddr %s, want %s", m.MessageType(), m.ClientHWAddr, engMAC)
	}
	// The message must survive the wire format unchanged.
	if _, err := dhcpv4.FromBytes(m.ToBytes()); err != nil {
		t.Errorf("%s does not parse back: %v", m.MessageType(), err)
	}
}

func (h *engHarness) linkUp() Send {
	h.t.Helper()
	h.c.LinkChanged(h.now, true)
	return h.oneSend(dhcpv4.MessageTypeDiscover)
}

// wait advances the clock by d and runs the timer.
func (h *engHarness) wait(d time.Duration) {
	h.now = h.now.Add(d)
	h.c.HandleTimer(h.now)
}

// fire advances the clock to the client's deadline and runs the timer.
func (h *engHarness) fire() {
	h.t.Helper()
	d := h.c.Deadline()
	if d.IsZero() {
		h.t.Fatalf("no deadline in %s", h.c.State())
	}
	if d.Before(h.now) {
		h.t.Fatalf("deadline %s is in the past (now %s)", d, h.now)
	}
	h.now = d
	h.c.HandleTimer(h.now)
}

// engLeaseMods are the options of a normal server answer.
func engLeaseMods() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithYourIP(engYI.AsSlice()),
		dhcpv4.WithServerIP(engServer.AsSlice()),
		engOpt(optServerID, engServer.AsSlice()),
		engOpt(optLeaseTime, engU32(3600)),
		engOpt(optSubnetMask, []byte{255, 255, 255, 0}),
		engOpt(optRouter, engRouter.AsSlice()),
		engOpt(optDNS, engDNS.AsSlice()),
	}
}

func engOpt(code uint8, v []byte) dhcpv4.Modifier {
	return dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(code), v)
}

func engNoOpt(code uint8) dhcpv4.Modifier {
	return dhcpv4.WithoutOption(dhcpv4.GenericOptionCode(code))
}

func engU32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func engU16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func engAddrs(s ...string) []byte {
	var b []byte
	for _, a := range s {
		b = append(b, netip.MustParseAddr(a).AsSlice()...)
	}
	return b
}

// engWire passes a message through the wire format, as the driver would
// receive it.
func engWire(t *testing.T, m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	out, err := dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatalf("server message does not parse: %v", err)
	}
	return out
}

// reply builds the server's answer of type mt to the last message the
// client sent. OFFER and ACK carry a normal lease unless mods change it; a
// NAK carries the server identifier only.
func (h *engHarness) reply(mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	h.t.Helper()
	if h.last == nil {
		h.t.Fatal("no client message to reply to")
	}
	all := []dhcpv4.Modifier{dhcpv4.WithReply(h.last), dhcpv4.WithMessageType(mt)}
	if mt == dhcpv4.MessageTypeNak {
		all = append(all, engOpt(optServerID, engServer.AsSlice()))
	} else {
		all = append(all, engLeaseMods()...)
	}
	all = append(all, mods...)
	m, err := dhcpv4.New(all...)
	if err != nil {
		h.t.Fatal(err)
	}
	return engWire(h.t, m)
}

func (h *engHarness) deliver(m *dhcpv4.DHCPv4) { h.c.HandleMessage(h.now, m) }

// bindApply asserts that the client asked for exactly one Apply{Bind:true}
// and returns it, with the sends that came with it.
func (h *engHarness) bindApply() (Apply, []Send) {
	h.t.Helper()
	sends, applies := h.take()
	if len(applies) != 1 || !applies[0].Bind {
		h.t.Fatalf("want one Apply{Bind:true}, got %d applies %+v (state %s, last error %q)", len(applies), applies, h.c.State(), h.c.LastError())
	}
	return applies[0], sends
}

// bound runs DISCOVER, OFFER, REQUEST and ACK at the current time with the
// given server options, reports success, and returns the bind.
func (h *engHarness) bound(mods ...dhcpv4.Modifier) Apply {
	h.t.Helper()
	h.linkUp()
	h.deliver(h.reply(dhcpv4.MessageTypeOffer, mods...))
	h.oneSend(dhcpv4.MessageTypeRequest)
	h.deliver(h.reply(dhcpv4.MessageTypeAck, mods...))
	a, sends := h.bindApply()
	if len(sends) != 0 {
		h.t.Fatalf("bind sent %s", engSendTypes(sends))
	}
	h.c.Applied(h.now, nil)
	if h.c.State() != StateBound || h.c.Lease() == nil {
		h.t.Fatalf("state %s lease %v after Applied, want BOUND with a lease", h.c.State(), h.c.Lease())
	}
	return a
}

func engKinds(ops []privsep.Message) []privsep.Kind {
	var out []privsep.Kind
	for _, o := range ops {
		out = append(out, o.Kind())
	}
	return out
}

func engOpsOf[T privsep.Message](ops []privsep.Message) []T {
	var out []T
	for _, o := range ops {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func engSaved(t *testing.T, a Apply) privsep.Lease {
	t.Helper()
	s := engOpsOf[*privsep.LeaseSave](a.Ops)
	if len(s) != 1 {
		t.Fatalf("want one LeaseSave in %v", engKinds(a.Ops))
	}
	return s[0].Lease
}

func engRoutes(a Apply) []privsep.Route {
	var out []privsep.Route
	for _, r := range engOpsOf[*privsep.RouteReplace](a.Ops) {
		out = append(out, r.Route)
	}
	return out
}

func engOptAddr(m *dhcpv4.DHCPv4, code uint8) netip.Addr {
	b := m.Options.Get(dhcpv4.GenericOptionCode(code))
	if len(b) != 4 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(b))
}

func engHas(m *dhcpv4.DHCPv4, code uint8) bool {
	return m.Options.Has(dhcpv4.GenericOptionCode(code))
}

func engCiaddr(m *dhcpv4.DHCPv4) netip.Addr {
	a, _ := netip.AddrFromSlice(m.ClientIPAddr.To4())
	return a
}

// engGuard is the actuator's policy for a DHCP client on engIface: every
// operation the engine asks for must pass it.
func engGuard() *privsep.Guard {
	return privsep.NewGuard(privsep.Policy{
		Daemon: "dhcp",
		Ops: []privsep.Kind{privsep.OpLinkUp, privsep.OpLinkMTU, privsep.OpAddrReplace, privsep.OpAddrRemove,
			privsep.OpRouteReplace, privsep.OpRouteRemove, privsep.OpResolvConf, privsep.OpNTPServers,
			privsep.OpHostname, privsep.OpLeaseSave, privsep.OpLeaseDrop},
		Interfaces: []string{engIface},
	}.WithDefaultBounds())
}

// engActuate checks and records every op of an Apply as the actuator would.
func engActuate(t *testing.T, g *privsep.Guard, a Apply) {
	t.Helper()
	for _, op := range a.Ops {
		if err := g.Check(op); err != nil {
			t.Errorf("the actuator would refuse %s %+v: %v", op.Kind(), op, err)
			continue
		}
		g.Record(op)
	}
}

func TestClientHappyPath(t *testing.T) {
	onLink := netip.MustParsePrefix("198.51.100.0/24")
	tests := []struct {
		name       string
		cfg        func(*ClientConfig)
		server     []dhcpv4.Modifier
		wantKinds  []privsep.Kind
		wantRoutes []privsep.Route // Destination and Gateway only
		wantMTU    int
	}{
		{
			name:       "default route through option 3",
			wantKinds:  []privsep.Kind{privsep.OpAddrReplace, privsep.OpRouteReplace, privsep.OpLeaseSave},
			wantRoutes: []privsep.Route{{Destination: engDefaultRoute, Gateway: engRouter}},
		},
		{
			name: "no client ID, rapid commit offered but not used by the server, host name, metric",
			cfg: func(c *ClientConfig) {
				c.ClientID, c.RapidCommit, c.Hostname, c.RouteMetric = nil, true, "node-1", 100
			},
			wantKinds:  []privsep.Kind{privsep.OpAddrReplace, privsep.OpRouteReplace, privsep.OpLeaseSave},
			wantRoutes: []privsep.Route{{Destination: engDefaultRoute, Gateway: engRouter}},
		},
		{
			name: "MTU and classless routes, on-link first",
			server: []dhcpv4.Modifier{
				engOpt(optMTU, engU16(1400)),
				engOpt(optClasslessRoutes, []byte{
					8, 10, 192, 0, 2, 1, // 10.0.0.0/8 via 192.0.2.1
					24, 198, 51, 100, 0, 0, 0, 0, // 198.51.100.0/24 on-link
					0, 198, 51, 100, 1, // default via 198.51.100.1, reachable through the route before
				}),
			},
			wantKinds: []privsep.Kind{privsep.OpLinkMTU, privsep.OpAddrReplace,
				privsep.OpRouteReplace, privsep.OpRouteReplace, privsep.OpRouteReplace, privsep.OpLeaseSave},
			wantRoutes: []privsep.Route{
				{Destination: onLink},
				{Destination: netip.MustParsePrefix("10.0.0.0/8"), Gateway: engRouter},
				{Destination: engDefaultRoute, Gateway: netip.MustParseAddr("198.51.100.1")},
			},
			wantMTU: 1400,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngHarness(t, tc.cfg, nil)
			if h.c.State() != StateLinkDown || !h.c.Deadline().IsZero() {
				t.Fatalf("new client: state %s deadline %v, want LINK-DOWN and no deadline", h.c.State(), h.c.Deadline())
			}

			// DISCOVER.
			d := h.linkUp()
			m := d.Message
			if d.Unicast.IsValid() {
				t.Errorf("DISCOVER unicast to %s, want broadcast", d.Unicast)
			}
			if h.c.State() != StateSelecting {
				t.Errorf("state %s after DISCOVER, want SELECTING", h.c.State())
			}
			if dl := h.c.Deadline().Sub(h.now); dl < 3*time.Second || dl > 5*time.Second {
				t.Errorf("first DISCOVER retransmission in %v, want 4s ± 1s", dl)
			}
			if got := m.Options.Get(dhcpv4.GenericOptionCode(optClientID)); !slices.Equal(got, h.cfg.ClientID) {
				t.Errorf("client ID %x, want %x", got, h.cfg.ClientID)
			}
			if h.cfg.ClientID == nil && engHas(m, optClientID) {
				t.Error("client ID sent though none is configured")
			}
			prl := m.Options.Get(dhcpv4.GenericOptionCode(optParamRequest))
			for _, code := range []byte{optSubnetMask, optRouter, optDNS, optDomainName, optMTU, optNTP,
				optLeaseTime, optServerID, optRenewalTime, optRebindingTime, optDomainSearch, optClasslessRoutes} {
				if !slices.Contains(prl, code) {
					t.Errorf("parameter request list %v lacks option %d", prl, code)
				}
			}
			if engHas(m, optRapidCommit) != h.cfg.RapidCommit {
				t.Errorf("rapid commit option present %v, configured %v", engHas(m, optRapidCommit), h.cfg.RapidCommit)
			}
			if engHas(m, optServerID) {
				t.Error("DISCOVER carries a server identifier")
			}
			if h.cfg.Hostname != "" && string(m.Options.Get(dhcpv4.GenericOptionCode(optHostname))) != h.cfg.Hostname {
				t.Errorf("host name option %q, want %q", m.Options.Get(dhcpv4.GenericOptionCode(optHostname)), h.cfg.Hostname)
			}
			discoverXID := m.TransactionID

			// OFFER → REQUEST.
			h.now = h.now.Add(time.Second)
			h.deliver(h.reply(dhcpv4.MessageTypeOffer, tc.server...))
			r := h.oneSend(dhcpv4.MessageTypeRequest)
			requestAt := h.now
			if r.Unicast.IsValid() {
				t.Errorf("REQUEST in SELECTING unicast to %s, want broadcast", r.Unicast)
			}
			if h.c.State() != StateRequesting {
				t.Errorf("state %s after OFFER, want REQUESTING", h.c.State())
			}
			if got := engOptAddr(r.Message, optRequestedIP); got != engYI {
				t.Errorf("REQUEST option 50 = %v, want %s", got, engYI)
			}
			if got := engOptAddr(r.Message, optServerID); got != engServer {
				t.Errorf("REQUEST option 54 = %v, want %s", got, engServer)
			}
			if a := engCiaddr(r.Message); a.IsValid() && !a.IsUnspecified() {
				t.Errorf("REQUEST in SELECTING has ciaddr %s, want 0", a)
			}
			if r.Message.TransactionID != discoverXID {
				t.Errorf("REQUEST xid %s, want the DISCOVER's %s", r.Message.TransactionID, discoverXID)
			}
			if got := r.Message.Options.Get(dhcpv4.GenericOptionCode(optClientID)); !slices.Equal(got, h.cfg.ClientID) {
				t.Errorf("REQUEST client ID %x, want %x", got, h.cfg.ClientID)
			}

			// ACK → Apply{Bind}.
			h.now = h.now.Add(time.Second)
			h.deliver(h.reply(dhcpv4.MessageTypeAck, tc.server...))
			a, sends := h.bindApply()
			if len(sends) != 0 {
				t.Errorf("bind also sent %s", engSendTypes(sends))
			}
			if got := engKinds(a.Ops); !slices.Equal(got, tc.wantKinds) {
				t.Fatalf("bind ops %v, want %v", got, tc.wantKinds)
			}
			if tc.wantMTU != 0 {
				if mtu := a.Ops[0].(*privsep.LinkMTU); mtu.MTU != tc.wantMTU || mtu.Interface != engIface {
					t.Errorf("LinkMTU %+v, want %d on %s", mtu, tc.wantMTU, engIface)
				}
			}
			ar := engOpsOf[*privsep.AddrReplace](a.Ops)[0]
			// The lease counts from the REQUEST, one second before the ACK.
			want := privsep.AddrReplace{Interface: engIface, Address: engPfx, ValidLifetime: 3599, PreferredLifetime: 3599}
			if *ar != want {
				t.Errorf("AddrReplace %+v, want %+v", *ar, want)
			}
			routes := engRoutes(a)
			if len(routes) != len(tc.wantRoutes) {
				t.Fatalf("routes %+v, want %+v", routes, tc.wantRoutes)
			}
			for i, w := range tc.wantRoutes {
				w.Interface, w.Source, w.Metric = engIface, engYI, h.cfg.RouteMetric
				if routes[i] != w {
					t.Errorf("route %d: %+v, want %+v", i, routes[i], w)
				}
			}
			l := engSaved(t, a)
			if l.Interface != engIface || l.Address != engPfx || l.Server != engServer ||
				l.LeaseTime != 3600 || l.RenewTime != 1800 || l.RebindTime != 3150 || l.Acquired != requestAt.Unix() {
				t.Errorf("saved lease %+v", l)
			}
			if !slices.Equal(l.DNS, []netip.Addr{engDNS}) {
				t.Errorf("saved DNS %v, want [%s]", l.DNS, engDNS)
			}
			if h.c.State() != StateBound {
				t.Errorf("state %s after ACK, want BOUND", h.c.State())
			}
			if want := requestAt.Add(1800 * time.Second); !h.c.Deadline().Equal(want) {
				t.Errorf("deadline %v, want T1 = %v", h.c.Deadline(), want)
			}
			if want := requestAt.Add(3600 * time.Second); !h.c.Expiry().Equal(want) {
				t.Errorf("expiry %v, want %v", h.c.Expiry(), want)
			}
			engActuate(t, engGuard(), a)

			// Not applied yet: no lease to report.
			if h.c.Lease() != nil {
				t.Error("Lease() is set before Applied")
			}
			h.c.Applied(h.now, nil)
			got := h.c.Lease()
			if got == nil || got.Address != engPfx || got.Server != engServer {
				t.Fatalf("Lease() after Applied = %+v", got)
			}
			if h.c.LastError() != "" {
				t.Errorf("LastError %q after a clean bind", h.c.LastError())
			}
			h.none()
		})
	}
}

// The same seed gives the same conversation: the engine is deterministic.
func TestClientDeterministic(t *testing.T) {
	var got [][]byte
	for range 2 {
		h := newEngHarness(t, nil, nil)
		got = append(got, h.linkUp().Message.ToBytes())
	}
	if !slices.Equal(got[0], got[1]) {
		t.Error("two clients with the same seed sent different DISCOVERs")
	}
}

func TestClientRenewRebindExpire(t *testing.T) {
	g := engGuard()
	h := newEngHarness(t, nil, nil)
	start := h.now
	bind := h.bound(engOpt(optClasslessRoutes, []byte{
		24, 198, 51, 100, 0, 0, 0, 0, // on-link
		0, 198, 51, 100, 1, // default via it
	}))
	engActuate(t, g, bind)
	t1, t2, exp := start.Add(1800*time.Second), start.Add(3150*time.Second), start.Add(3600*time.Second)
	if !h.c.Deadline().Equal(t1) {
		t.Fatalf("deadline %v, want T1 %v", h.c.Deadline(), t1)
	}
	boundXID := h.last.TransactionID

	// Nothing happens before T1.
	h.wait(1799 * time.Second)
	h.none()
	if h.c.State() != StateBound {
		t.Fatalf("state %s before T1", h.c.State())
	}

	// RENEWING: unicast to the server, ciaddr set, no option 50 or 54.
	h.fire()
	if !h.now.Equal(t1) {
		t.Fatalf("renewal at %v, want T1 %v", h.now, t1)
	}
	renewals := 0
	for h.c.State() == StateRenewing || renewals == 0 {
		s := h.oneSend(dhcpv4.MessageTypeRequest)
		renewals++
		if h.c.State() != StateRenewing {
			t.Fatalf("state %s at %v, want RENEWING", h.c.State(), h.now.Sub(start))
		}
		if s.Unicast != engServer {
			t.Errorf("renewal REQUEST to %v, want unicast to %s", s.Unicast, engServer)
		}
		if engCiaddr(s.Message) != engYI {
			t.Errorf("renewal ciaddr %v, want %s", engCiaddr(s.Message), engYI)
		}
		if engHas(s.Message, optRequestedIP) || engHas(s.Message, optServerID) {
			t.Error("renewal REQUEST carries option 50 or 54")
		}
		if renewals == 1 && s.Message.TransactionID == boundXID {
			t.Error("renewal reuses the xid of the first exchange")
		}
		dl := h.c.Deadline()
		if dl.After(t2) || !dl.After(h.now) {
			t.Fatalf("renewal deadline %v outside (now, T2]", dl.Sub(start))
		}
		if dl.Before(t2) && dl.Sub(h.now) < minRenewInterval {
			t.Errorf("renewal retransmitted after %v, want at least %v", dl.Sub(h.now), minRenewInterval)
		}
		h.fire()
		if h.c.State() == StateRebinding {
			break
		}
		if renewals > 20 {
			t.Fatal("too many renewal retransmissions")
		}
	}
	if renewals < 2 {
		t.Errorf("%d renewal REQUESTs between T1 and T2, want retransmissions", renewals)
	}

	// REBINDING: broadcast from T2.
	if !h.now.Equal(t2) {
		t.Errorf("rebinding at %v, want T2 %v", h.now.Sub(start), t2.Sub(start))
	}
	for h.c.State() == StateRebinding {
		s := h.oneSend(dhcpv4.MessageTypeRequest)
		if s.Unicast.IsValid() {
			t.Errorf("rebinding REQUEST unicast to %s, want broadcast", s.Unicast)
		}
		if engCiaddr(s.Message) != engYI || engHas(s.Message, optRequestedIP) || engHas(s.Message, optServerID) {
			t.Errorf("rebinding REQUEST: ciaddr %v, options 50/54 %v/%v", engCiaddr(s.Message), engHas(s.Message, optRequestedIP), engHas(s.Message, optServerID))
		}
		if dl := h.c.Deadline(); dl.After(exp) {
			t.Fatalf("rebinding deadline %v beyond expiry", dl.Sub(start))
		}
		h.fire()
	}

	// Expiry: routes (gateway first), then the address, then the lease file.
	if !h.now.Equal(exp) {
		t.Errorf("expired at %v, want %v", h.now.Sub(start), exp.Sub(start))
	}
	sends, applies := h.take()
	if len(applies) != 1 || applies[0].Bind {
		t.Fatalf("want one unbind Apply at expiry, got %+v", applies)
	}
	want := []privsep.Kind{privsep.OpRouteRemove, privsep.OpRouteRemove, privsep.OpAddrRemove, privsep.OpLeaseDrop}
	if got := engKinds(applies[0].Ops); !slices.Equal(got, want) {
		t.Fatalf("expiry ops %v, want %v", got, want)
	}
	if r := applies[0].Ops[0].(*privsep.RouteRemove).Route; r.Destination != engDefaultRoute {
		t.Errorf("first route removed is %s, want the default route through the on-link one", r.Destination)
	}
	if a := applies[0].Ops[2].(*privsep.AddrRemove); a.Address != engPfx || a.Interface != engIface {
		t.Errorf("AddrRemove %+v", a)
	}
	engActuate(t, g, applies[0])
	if len(g.Installed()) != 0 {
		t.Errorf("after expiry the actuator still holds %v", g.Installed())
	}
	if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatalf("after expiry sent %s, want a DISCOVER", engSendTypes(sends))
	}
	if engHas(sends[0].Message, optRequestedIP) {
		t.Errorf("DISCOVER after expiry still asks for %v", engOptAddr(sends[0].Message, optRequestedIP))
	}
	if h.c.State() != StateSelecting || h.c.Lease() != nil {
		t.Errorf("after expiry: state %s lease %v, want SELECTING and no lease", h.c.State(), h.c.Lease())
	}
	if !strings.Contains(h.c.LastError(), "expired") {
		t.Errorf("LastError %q, want it to say the lease expired", h.c.LastError())
	}
}

// Server-given T1 and T2 set the renewal deadline when they are sane.
func TestClientServerTimers(t *testing.T) {
	tests := []struct {
		name     string
		mods     []dhcpv4.Modifier
		t1, t2   uint32
		wantWarn bool
	}{
		{"defaults", nil, 1800, 3150, false},
		{"sane", []dhcpv4.Modifier{engOpt(optRenewalTime, engU32(600)), engOpt(optRebindingTime, engU32(1200))}, 600, 1200, false},
		{"T1 >= T2", []dhcpv4.Modifier{engOpt(optRenewalTime, engU32(2000)), engOpt(optRebindingTime, engU32(1000))}, 1800, 3150, true},
		{"T2 >= lease", []dhcpv4.Modifier{engOpt(optRenewalTime, engU32(1000)), engOpt(optRebindingTime, engU32(3600))}, 1800, 3150, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngHarness(t, nil, nil)
			start := h.now
			a := h.bound(tc.mods...)
			l := engSaved(t, a)
			if l.RenewTime != tc.t1 || l.RebindTime != tc.t2 {
				t.Errorf("T1/T2 %d/%d, want %d/%d", l.RenewTime, l.RebindTime, tc.t1, tc.t2)
			}
			if want := start.Add(time.Duration(tc.t1) * time.Second); !h.c.Deadline().Equal(want) {
				t.Errorf("deadline %v, want %v", h.c.Deadline().Sub(start), want.Sub(start))
			}
			h.fire()
			if h.c.State() != StateRenewing {
				t.Errorf("state %s at T1, want RENEWING", h.c.State())
			}
		})
	}
}

func TestClientInfiniteLease(t *testing.T) {
	h := newEngHarness(t, nil, nil)
	a := h.bound(engOpt(optLeaseTime, engU32(0xffffffff)))
	ar := engOpsOf[*privsep.AddrReplace](a.Ops)[0]
	if ar.ValidLifetime != 0xffffffff || ar.PreferredLifetime != 0xffffffff {
		t.Errorf("lifetimes %d/%d, want infinite", ar.ValidLifetime, ar.PreferredLifetime)
	}
	if !h.c.Deadline().IsZero() || !h.c.Expiry().IsZero() {
		t.Errorf("deadline %v expiry %v, want none for an infinite lease", h.c.Deadline(), h.c.Expiry())
	}
	h.wait(400 * 24 * time.Hour)
	h.none()
	if h.c.State() != StateBound {
		t.Errorf("state %s, want BOUND forever", h.c.State())
	}
}

// A renewal ACK of the same address refreshes it in place.
func TestClientRenewalRefreshesInPlace(t *testing.T) {
	tests := []struct {
		name      string
		rebinding bool
		delay     time.Duration // between the REQUEST and the ACK
		mods      []dhcpv4.Modifier
		wantValid uint32
	}{
		{"renewing, same lease", false, 0, nil, 3600},
		{"renewing, longer lease, late ACK", false, 2 * time.Second, []dhcpv4.Modifier{engOpt(optLeaseTime, engU32(7200))}, 7198},
		{"rebinding, ACK from another server", true, time.Second, []dhcpv4.Modifier{engOpt(optServerID, engOther.AsSlice())}, 3599},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := engGuard()
			h := newEngHarness(t, nil, nil)
			engActuate(t, g, h.bound())
			h.fire() // T1
			if tc.rebinding {
				for h.c.State() == StateRenewing {
					h.take()
					h.fire()
				}
				if h.c.State() != StateRebinding {
					t.Fatalf("state %s, want REBINDING", h.c.State())
				}
			}
			h.oneSend(dhcpv4.MessageTypeRequest)
			sentAt := h.now
			h.now = h.now.Add(tc.delay)
			h.deliver(h.reply(dhcpv4.MessageTypeAck, tc.mods...))
			a, _ := h.bindApply()
			kinds := engKinds(a.Ops)
			if slices.Contains(kinds, privsep.OpAddrRemove) || slices.Contains(kinds, privsep.OpRouteRemove) || slices.Contains(kinds, privsep.OpLeaseDrop) {
				t.Errorf("renewal ops %v remove something: the address would flap", kinds)
			}
			ars := engOpsOf[*privsep.AddrReplace](a.Ops)
			if len(ars) != 1 || ars[0].Address != engPfx || ars[0].ValidLifetime != tc.wantValid || ars[0].PreferredLifetime != tc.wantValid {
				t.Errorf("AddrReplace %+v, want %s with lifetimes %d", ars, engPfx, tc.wantValid)
			}
			engActuate(t, g, a)
			l := engSaved(t, a)
			if l.Acquired != sentAt.Unix() {
				t.Errorf("renewed lease acquired at %d, want the REQUEST's %d", l.Acquired, sentAt.Unix())
			}
			if want := sentAt.Add(time.Duration(l.RenewTime) * time.Second); h.c.State() != StateBound || !h.c.Deadline().Equal(want) {
				t.Errorf("after renewal: state %s deadline %v, want BOUND and %v", h.c.State(), h.c.Deadline(), want)
			}
			h.c.Applied(h.now, nil)
			if h.c.Lease() == nil || h.c.Lease().LeaseTime != l.LeaseTime {
				t.Errorf("Lease() %+v after the renewal", h.c.Lease())
			}
		})
	}
}

func TestClientNAK(t *testing.T) {
	tests := []struct {
		name       string
		state      State // REQUESTING, RENEWING or REBINDING
		from       netip.Addr
		wantUnbind bool
		ignored    bool
	}{
		{"REQUESTING, from the server asked", StateRequesting, engServer, false, false},
		{"REQUESTING, from another server", StateRequesting, engOther, false, true},
		{"RENEWING, from the lease's server", StateRenewing, engServer, true, false},
		{"RENEWING, from another server", StateRenewing, engOther, false, true},
		{"REBINDING, from any server", StateRebinding, engOther, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngHarness(t, nil, nil)
			switch tc.state {
			case StateRequesting:
				h.linkUp()
				h.deliver(h.reply(dhcpv4.MessageTypeOffer))
				h.oneSend(dhcpv4.MessageTypeRequest)
			case StateRenewing, StateRebinding:
				h.bound()
				h.fire()
				for h.c.State() != tc.state {
					h.take()
					h.fire()
				}
				h.oneSend(dhcpv4.MessageTypeRequest)
			}
			if h.c.State() != tc.state {
				t.Fatalf("state %s, want %s", h.c.State(), tc.state)
			}
			h.deliver(h.reply(dhcpv4.MessageTypeNak, engOpt(optServerID, tc.from.AsSlice())))
			if tc.ignored {
				h.none()
				if h.c.State() != tc.state {
					t.Errorf("state %s after an ignored NAK, want %s", h.c.State(), tc.state)
				}
				if tc.state != StateRequesting && h.c.Lease() == nil {
					t.Error("an ignored NAK dropped the lease")
				}
				return
			}
			sends, applies := h.take()
			if tc.wantUnbind {
				if len(applies) != 1 || applies[0].Bind {
					t.Fatalf("want one unbind Apply, got %+v", applies)
				}
				kinds := engKinds(applies[0].Ops)
				if !slices.Contains(kinds, privsep.OpAddrRemove) || !slices.Contains(kinds, privsep.OpLeaseDrop) {
					t.Errorf("unbind ops %v, want AddrRemove and LeaseDrop", kinds)
				}
			} else if len(applies) != 0 {
				t.Errorf("unexpected applies %+v", applies)
			}
			if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeDiscover {
				t.Errorf("after NAK sent %s, want a DISCOVER", engSendTypes(sends))
			}
			if h.c.State() != StateSelecting || h.c.Lease() != nil {
				t.Errorf("after NAK: state %s lease %v, want INIT→SELECTING and no lease", h.c.State(), h.c.Lease())
			}
			if !strings.Contains(h.c.LastError(), "NAK") {
				t.Errorf("LastError %q, want it to mention the NAK", h.c.LastError())
			}
		})
	}
}

func engSavedLease(acquired time.Time, leaseTime uint32) *privsep.Lease {
	return &privsep.Lease{
		Interface: engIface, Address: engPfx, Server: engServer, Routers: []netip.Addr{engRouter},
		LeaseTime: leaseTime, RenewTime: leaseTime / 2, RebindTime: leaseTime / 8 * 7, Acquired: acquired.Unix(),
	}
}

// TestClientIgnoresInvalidSavedLease: a saved lease the client could not
// have bound starts discovery instead of INIT-REBOOT.
func TestClientIgnoresInvalidSavedLease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(l *privsep.Lease)
	}{
		{"no address", func(l *privsep.Lease) { l.Address = netip.Prefix{} }},
		{"multicast address", func(l *privsep.Lease) { l.Address = netip.MustParsePrefix("224.0.0.5/24") }},
		{"short prefix", func(l *privsep.Lease) { l.Address = netip.PrefixFrom(l.Address.Addr(), 4) }},
		{"no server", func(l *privsep.Lease) { l.Server = netip.Addr{} }},
		{"no lease time", func(l *privsep.Lease) { l.LeaseTime = 0 }},
		{"too long", func(l *privsep.Lease) { l.LeaseTime = maxLeaseTime + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := engSavedLease(engT0.Add(-time.Minute), 3600)
			tc.spoil(saved)
			h := newEngHarness(t, nil, saved)
			h.c.LinkChanged(h.now, true)
			h.oneSend(dhcpv4.MessageTypeDiscover)
			if h.c.State() == StateInitReboot {
				t.Error("INIT-REBOOT with a saved lease the client could not have bound")
			}
		})
	}
}

// TestClientSavedLeaseFromTheFuture: a saved lease acquired after now (the
// clock went back) counts from now: unanswered INIT-REBOOT keeps it, with
// no more than its length left.
func TestClientSavedLeaseFromTheFuture(t *testing.T) {
	h := newEngHarness(t, nil, engSavedLease(engT0.Add(1000*time.Hour), 3600))
	h.c.LinkChanged(h.now, true)
	h.oneSend(dhcpv4.MessageTypeRequest)
	for range 8 {
		if h.c.State() != StateInitReboot {
			break
		}
		h.now = h.c.Deadline()
		h.c.HandleTimer(h.now)
		for _, a := range h.c.TakeActions() {
			ap, ok := a.(Apply)
			if !ok {
				continue
			}
			for _, ar := range engOpsOf[*privsep.AddrReplace](ap.Ops) {
				if ar.ValidLifetime > 3600 {
					t.Errorf("the address is set for %d s, more than the lease's 3600", ar.ValidLifetime)
				}
			}
			engActuate(t, engGuard(), ap)
			if ap.Bind {
				h.c.Applied(h.now, nil)
			}
		}
	}
	if h.c.State() != StateBound {
		t.Fatalf("state %s, want BOUND on the kept lease", h.c.State())
	}
	if exp := h.c.Expiry(); exp.After(h.now.Add(time.Hour)) {
		t.Errorf("the kept lease expires at %v, over an hour from now (%v)", exp, h.now)
	}
}

func TestClientInitReboot(t *testing.T) {
	t.Run("REQUEST", func(t *testing.T) {
		h := newEngHarness(t, nil, engSavedLease(engT0.Add(-time.Minute), 3600))
		h.c.LinkChanged(h.now, true)
		s := h.oneSend(dhcpv4.MessageTypeRequest)
		if h.c.State() != StateInitReboot {
			t.Errorf("state %s, want INIT-REBOOT", h.c.State())
		}
		if s.Unicast.IsValid() {
			t.Errorf("INIT-REBOOT REQUEST unicast to %s, want broadcast", s.Unicast)
		}
		if got := engOptAddr(s.Message, optRequestedIP); got != engYI {
			t.Errorf("option 50 = %v, want %s", got, engYI)
		}
		if engHas(s.Message, optServerID) {
			t.Error("INIT-REBOOT REQUEST carries a server identifier")
		}
		if a := engCiaddr(s.Message); a.IsValid() && !a.IsUnspecified() {
			t.Errorf("INIT-REBOOT ciaddr %s, want 0", a)
		}
		if h.c.Deadline().IsZero() {
			t.Error("INIT-REBOOT set no deadline: it would wait for an answer forever")
		}
	})
	t.Run("ACK binds", func(t *testing.T) {
		h := newEngHarness(t, nil, engSavedLease(engT0.Add(-time.Minute), 3600))
		h.c.LinkChanged(h.now, true)
		h.oneSend(dhcpv4.MessageTypeRequest)
		h.now = h.now.Add(time.Second)
		h.deliver(h.reply(dhcpv4.MessageTypeAck))
		a, _ := h.bindApply()
		engActuate(t, engGuard(), a)
		if ar := engOpsOf[*privsep.AddrReplace](a.Ops); len(ar) != 1 || ar[0].Address != engPfx || ar[0].ValidLifetime != 3599 {
			t.Errorf("AddrReplace %+v", ar)
		}
		if l := engSaved(t, a); l.Acquired != engT0.Unix() {
			t.Errorf("lease acquired %d, want the REQUEST's %d", l.Acquired, engT0.Unix())
		}
		if h.c.State() != StateBound {
			t.Errorf("state %s, want BOUND", h.c.State())
		}
	})
	t.Run("ACK for another address is declined", func(t *testing.T) {
		h := newEngHarness(t, nil, engSavedLease(engT0.Add(-time.Minute), 3600))
		h.c.LinkChanged(h.now, true)
		h.oneSend(dhcpv4.MessageTypeRequest)
		h.deliver(h.reply(dhcpv4.MessageTypeAck, dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 99))))
		d := h.oneSend(dhcpv4.MessageTypeDecline)
		if got := engOptAddr(d.Message, optRequestedIP); got != netip.MustParseAddr("192.0.2.99") {
			t.Errorf("DECLINE option 50 = %v", got)
		}
	})
	t.Run("NAK", func(t *testing.T) {
		h := newEngHarness(t, nil, engSavedLease(engT0.Add(-time.Minute), 3600))
		h.c.LinkChanged(h.now, true)
		h.oneSend(dhcpv4.MessageTypeRequest)
		// In INIT-REBOOT any server may answer.
		h.deliver(h.reply(dhcpv4.MessageTypeNak, engOpt(optServerID, engOther.AsSlice())))
		sends, _ := h.take()
		if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeDiscover || h.c.State() != StateSelecting {
			t.Fatalf("after NAK: sent %s, state %s; want a DISCOVER in SELECTING", engSendTypes(sends), h.c.State())
		}
		if engHas(sends[0].Message, optRequestedIP) {
			t.Errorf("DISCOVER after NAK still asks for %v", engOptAddr(sends[0].Message, optRequestedIP))
		}
	})
	t.Run("silence keeps the unexpired lease and renews", func(t *testing.T) {
		// Acquired 1900 s ago: T1 (1800 s) has passed, expiry has not.
		acquired := engT0.Add(-1900 * time.Second)
		h := newEngHarness(t, nil, engSavedLease(acquired, 3600))
		h.c.LinkChanged(h.now, true)
		h.oneSend(dhcpv4.MessageTypeRequest)
		var applies []Apply
		var sends []Send
		for i := 0; len(applies) == 0; i++ {
			if i > 10 || h.c.Deadline().IsZero() {
				t.Fatalf("after %v of silence: state %s, deadline %v; want the saved lease kept at 10 s", h.now.Sub(engT0), h.c.State(), h.c.Deadline())
			}
			h.fire()
			sends, applies = h.take()
			if len(applies) == 0 {
				if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeRequest || h.c.State() != StateInitReboot {
					t.Fatalf("at %v: sent %s in %s, want a retransmitted REQUEST", h.now.Sub(engT0), engSendTypes(sends), h.c.State())
				}
			}
		}
		if got := h.now.Sub(engT0); got != rebootWait {
			t.Errorf("kept the saved lease after %v, want %v", got, rebootWait)
		}
		if len(applies) != 1 || !applies[0].Bind {
			t.Fatalf("want Apply{Bind:true}, got %+v", applies)
		}
		ar := engOpsOf[*privsep.AddrReplace](applies[0].Ops)
		if want := uint32(3600 - 1900 - 10); len(ar) != 1 || ar[0].Address != engPfx || ar[0].ValidLifetime != want {
			t.Errorf("AddrReplace %+v, want %s valid for the remaining %d s", ar, engPfx, want)
		}
		engActuate(t, engGuard(), applies[0])
		// T1 is past: renewal begins at once.
		if h.c.State() != StateRenewing || len(sends) != 1 || sends[0].Unicast != engServer {
			t.Errorf("after keeping the lease: state %s, sent %s; want RENEWING with a unicast REQUEST", h.c.State(), engSendTypes(sends))
		}
	})
	t.Run("expired saved lease", func(t *testing.T) {
		h := newEngHarness(t, nil, engSavedLease(engT0.Add(-3600*time.Second), 3600))
		d := h.linkUp()
		if h.c.State() != StateSelecting {
			t.Errorf("state %s, want SELECTING", h.c.State())
		}
		if engHas(d.Message, optRequestedIP) {
			t.Errorf("DISCOVER asks for the expired address %v", engOptAddr(d.Message, optRequestedIP))
		}
	})
	t.Run("saved lease of another interface", func(t *testing.T) {
		l := engSavedLease(engT0, 3600)
		l.Interface = "eth1"
		h := newEngHarness(t, nil, l)
		h.linkUp()
	})
}

func TestClientRapidCommit(t *testing.T) {
	tests := []struct {
		name       string
		configured bool
		serverSets bool
		wantBind   bool
	}{
		{"configured and committed", true, true, true},
		{"configured, ACK without option 80", true, false, false},
		{"not configured", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngHarness(t, func(c *ClientConfig) { c.RapidCommit = tc.configured }, nil)
			h.linkUp()
			var mods []dhcpv4.Modifier
			if tc.serverSets {
				mods = append(mods, engOpt(optRapidCommit, nil))
			}
			h.now = h.now.Add(time.Second)
			h.deliver(h.reply(dhcpv4.MessageTypeAck, mods...))
			if !tc.wantBind {
				h.none()
				if h.c.State() != StateSelecting {
					t.Errorf("state %s, want SELECTING", h.c.State())
				}
				return
			}
			a, _ := h.bindApply()
			engActuate(t, engGuard(), a)
			if h.c.State() != StateBound {
				t.Errorf("state %s, want BOUND", h.c.State())
			}
			if l := engSaved(t, a); l.Acquired != h.now.Unix() {
				t.Errorf("acquired %d, want %d", l.Acquired, h.now.Unix())
			}
		})
	}
}

func TestClientDiscoverBackoff(t *testing.T) {
	h := newEngHarness(t, nil, nil)
	first := h.linkUp().Message
	want := []time.Duration{4, 8, 16, 32, 64, 64, 64, 64}
	for i, w := range want {
		w *= time.Second
		prev := h.now
		h.fire()
		got := h.now.Sub(prev)
		if got < w-time.Second || got > w+time.Second {
			t.Errorf("retransmission %d after %v, want %v ± 1s", i+1, got, w)
		}
		m := h.oneSend(dhcpv4.MessageTypeDiscover).Message
		if m.TransactionID != first.TransactionID {
			t.Errorf("retransmission %d changed the xid", i+1)
		}
		if secs := time.Duration(m.NumSeconds) * time.Second; secs != h.now.Sub(engT0).Truncate(time.Second) {
			t.Errorf("retransmission %d: secs %v, want %v", i+1, secs, h.now.Sub(engT0).Truncate(time.Second))
		}
	}
}

func TestClientRequestRetransmission(t *testing.T) {
	h := newEngHarness(t, nil, nil)
	h.linkUp()
	h.deliver(h.reply(dhcpv4.MessageTypeOffer))
	h.oneSend(dhcpv4.MessageTypeRequest)
	requests := 1
	var gaps []time.Duration
	for {
		prev := h.now
		h.fire()
		gaps = append(gaps, h.now.Sub(prev))
		sends, applies := h.take()
		if len(sends) != 1 || len(applies) != 0 {
			t.Fatalf("at %v: sends %s applies %d", h.now.Sub(engT0), engSendTypes(sends), len(applies))
		}
		if sends[0].Message.MessageType() == dhcpv4.MessageTypeDiscover {
			break
		}
		requests++
		if got := engOptAddr(sends[0].Message, optServerID); got != engServer {
			t.Errorf("retransmitted REQUEST option 54 = %v", got)
		}
		if requests > 10 {
			t.Fatal("REQUESTING never gives up")
		}
	}
	if requests != requestAttempts {
		t.Errorf("%d REQUESTs before giving up, want %d", requests, requestAttempts)
	}
	if h.c.State() != StateSelecting || !strings.Contains(h.c.LastError(), "no answer") {
		t.Errorf("after giving up: state %s, last error %q", h.c.State(), h.c.LastError())
	}
	// RFC 2131 4.1: the first retransmission after 4 s, then doubling.
	for i, w := range []time.Duration{4, 8, 16, 32} {
		w *= time.Second
		if i < len(gaps) && (gaps[i] < w-time.Second || gaps[i] > w+time.Second) {
			t.Errorf("REQUEST wait %d was %v, want %v ± 1s (all waits %v)", i+1, gaps[i], w, gaps)
		}
	}
}

func TestClientLinkDownUp(t *testing.T) {
	t.Run("keeps the lease and reboots it", func(t *testing.T) {
		g := engGuard()
		h := newEngHarness(t, nil, nil)
		engActuate(t, g, h.bound())
		h.wait(time.Minute)
		h.c.LinkChanged(h.now, false)
		h.none()
		// Only the lease's expiry stays scheduled while the link is down.
		if h.c.State() != StateLinkDown || !h.c.Deadline().Equal(h.c.Expiry()) {
			t.Errorf("link down: state %s deadline %v, want the expiry %v", h.c.State(), h.c.Deadline(), h.c.Expiry())
		}
		if h.c.Lease() == nil {
			t.Error("link down dropped the lease")
		}
		h.wait(time.Minute)
		h.c.LinkChanged(h.now, true)
		s := h.oneSend(dhcpv4.MessageTypeRequest)
		if h.c.State() != StateInitReboot || engOptAddr(s.Message, optRequestedIP) != engYI || engHas(s.Message, optServerID) {
			t.Errorf("link up: state %s, option 50 %v, option 54 %v", h.c.State(), engOptAddr(s.Message, optRequestedIP), engHas(s.Message, optServerID))
		}
		h.deliver(h.reply(dhcpv4.MessageTypeAck))
		a, _ := h.bindApply()
		if kinds := engKinds(a.Ops); slices.Contains(kinds, privsep.OpAddrRemove) || slices.Contains(kinds, privsep.OpRouteRemove) {
			t.Errorf("re-bind after link up removes something: %v", kinds)
		}
		engActuate(t, g, a)
	})
	t.Run("NAK after link up removes the old lease", func(t *testing.T) {
		g := engGuard()
		h := newEngHarness(t, nil, nil)
		engActuate(t, g, h.bound())
		h.c.LinkChanged(h.now, false)
		h.c.LinkChanged(h.now, true)
		h.oneSend(dhcpv4.MessageTypeRequest)
		h.deliver(h.reply(dhcpv4.MessageTypeNak))
		sends, applies := h.take()
		if len(applies) != 1 || !slices.Contains(engKinds(applies[0].Ops), privsep.OpAddrRemove) {
			t.Fatalf("want an unbind, got %+v", applies)
		}
		engActuate(t, g, applies[0])
		if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeDiscover || h.c.Lease() != nil {
			t.Errorf("sent %s, lease %v", engSendTypes(sends), h.c.Lease())
		}
	})
	t.Run("down while selecting", func(t *testing.T) {
		h := newEngHarness(t, nil, nil)
		h.linkUp()
		h.c.LinkChanged(h.now, false)
		if h.c.State() != StateLinkDown || !h.c.Deadline().IsZero() {
			t.Errorf("state %s deadline %v", h.c.State(), h.c.Deadline())
		}
		h.deliver(h.reply(dhcpv4.MessageTypeOffer))
		h.none()
		h.c.LinkChanged(h.now, true)
		h.oneSend(dhcpv4.MessageTypeDiscover)
	})
	t.Run("lease expires while the link is down", func(t *testing.T) {
		g := engGuard()
		h := newEngHarness(t, nil, nil)
		engActuate(t, g, h.bound())
		h.c.LinkChanged(h.now, false)
		h.wait(2 * time.Hour)
		h.c.LinkChanged(h.now, true)
		sends, applies := h.take()
		if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeDiscover {
			t.Fatalf("link up after expiry sent %s, want a DISCOVER", engSendTypes(sends))
		}
		if h.c.Lease() != nil {
			t.Errorf("Lease() still reports %s, expired an hour ago", h.c.Lease().Address)
		}
		if len(applies) != 1 || !slices.Contains(engKinds(applies[0].Ops), privsep.OpLeaseDrop) {
			t.Errorf("the expired lease was not dropped: applies %+v", applies)
		}
	})
}

func TestClientStop(t *testing.T) {
	t.Run("release", func(t *testing.T) {
		g := engGuard()
		h := newEngHarness(t, func(c *ClientConfig) { c.Release = true }, nil)
		engActuate(t, g, h.bound())
		h.wait(time.Minute)
		h.c.Stop(h.now)
		sends, applies := h.take()
		if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeRelease {
			t.Fatalf("Stop sent %s, want a RELEASE", engSendTypes(sends))
		}
		r := sends[0]
		engCheckRequestBasics(t, r.Message)
		if r.Unicast != engServer {
			t.Errorf("RELEASE to %v, want unicast to %s", r.Unicast, engServer)
		}
		if engCiaddr(r.Message) != engYI || engOptAddr(r.Message, optServerID) != engServer {
			t.Errorf("RELEASE ciaddr %v server ID %v", engCiaddr(r.Message), engOptAddr(r.Message, optServerID))
		}
		if !slices.Equal(r.Message.Options.Get(dhcpv4.GenericOptionCode(optClientID)), engClientID) {
			t.Error("RELEASE without the client ID used to get the lease")
		}
		if len(applies) != 1 || applies[0].Bind {
			t.Fatalf("want one unbind, got %+v", applies)
		}
		want := []privsep.Kind{privsep.OpRouteRemove, privsep.OpAddrRemove, privsep.OpLeaseDrop}
		if got := engKinds(applies[0].Ops); !slices.Equal(got, want) {
			t.Errorf("release ops %v, want %v", got, want)
		}
		engActuate(t, g, applies[0])
		if h.c.State() != StateStopped || !h.c.Deadline().IsZero() || h.c.Lease() != nil {
			t.Errorf("after Stop: state %s deadline %v lease %v", h.c.State(), h.c.Deadline(), h.c.Lease())
		}
	})
	t.Run("no release", func(t *testing.T) {
		h := newEngHarness(t, nil, nil)
		h.bound()
		h.c.Stop(h.now)
		h.none()
		if h.c.State() != StateStopped || !h.c.Deadline().IsZero() {
			t.Errorf("after Stop: state %s deadline %v", h.c.State(), h.c.Deadline())
		}
		h.wait(24 * time.Hour)
		h.none()
		h.deliver(h.reply(dhcpv4.MessageTypeAck))
		h.none()
	})
	t.Run("deconfigure", func(t *testing.T) {
		g := engGuard()
		h := newEngHarness(t, func(c *ClientConfig) { c.Deconfigure = true }, nil)
		engActuate(t, g, h.bound())
		h.c.Stop(h.now)
		sends, applies := h.take()
		if len(sends) != 0 {
			t.Errorf("Stop without release sent %s", engSendTypes(sends))
		}
		want := []privsep.Kind{privsep.OpRouteRemove, privsep.OpAddrRemove, privsep.OpLeaseDrop}
		if len(applies) != 1 || !slices.Equal(engKinds(applies[0].Ops), want) {
			t.Fatalf("want one unbind with %v, got %+v", want, applies)
		}
		engActuate(t, g, applies[0])
	})
	t.Run("release without a lease", func(t *testing.T) {
		h := newEngHarness(t, func(c *ClientConfig) { c.Release = true }, nil)
		h.linkUp()
		h.c.Stop(h.now)
		h.none()
	})
}

// TestClientRequestIgnoreRequire: dhcpcd's option, nooption and require.
func TestClientRequestIgnoreRequire(t *testing.T) {
	h := newEngHarness(t, func(c *ClientConfig) {
		c.Request = []byte{optSubnetMask, optRouter, optLeaseTime, optServerID}
		c.Ignore = []byte{optDNS}
		c.Require = []byte{optRouter}
	}, nil)
	d := h.linkUp()
	if got := d.Message.Options.Get(dhcpv4.GenericOptionCode(optParamRequest)); !slices.Equal(got, []byte{1, 3, 51, 54}) {
		t.Errorf("parameter request list %v, want the configured one", got)
	}
	// An offer without a router is dropped; one with it is taken.
	h.deliver(h.reply(dhcpv4.MessageTypeOffer, engNoOpt(optRouter)))
	h.none()
	h.deliver(h.reply(dhcpv4.MessageTypeOffer))
	h.oneSend(dhcpv4.MessageTypeRequest)
	h.deliver(h.reply(dhcpv4.MessageTypeAck))
	a, _ := h.bindApply()
	if rc := engOpsOf[*privsep.ResolvConf](a.Ops); len(rc) != 0 && len(rc[0].Nameservers) != 0 {
		t.Errorf("nooption domain_name_servers, yet resolv.conf names %v", rc[0].Nameservers)
	}
	if l := engSaved(t, a); len(l.DNS) != 0 {
		t.Errorf("the lease keeps the ignored DNS servers %v", l.DNS)
	}
}

func TestClientAppliedErrorDeclines(t *testing.T) {
	g := engGuard()
	h := newEngHarness(t, nil, nil)
	h.linkUp()
	h.deliver(h.reply(dhcpv4.MessageTypeOffer))
	h.oneSend(dhcpv4.MessageTypeRequest)
	h.deliver(h.reply(dhcpv4.MessageTypeAck))
	a, _ := h.bindApply()
	engActuate(t, g, a)
	h.c.Applied(h.now, errors.New("address already in use"))
	sends, applies := h.take()
	if len(sends) != 1 || sends[0].Message.MessageType() != dhcpv4.MessageTypeDecline {
		t.Fatalf("sent %s, want a DECLINE", engSendTypes(sends))
	}
	d := sends[0]
	engCheckRequestBasics(t, d.Message)
	if d.Unicast.IsValid() {
		t.Errorf("DECLINE unicast to %s, want broadcast", d.Unicast)
	}
	if engOptAddr(d.Message, optRequestedIP) != engYI || engOptAddr(d.Message, optServerID) != engServer {
		t.Errorf("DECLINE options 50/54 = %v/%v", engOptAddr(d.Message, optRequestedIP), engOptAddr(d.Message, optServerID))
	}
	if a := engCiaddr(d.Message); a.IsValid() && !a.IsUnspecified() {
		t.Errorf("DECLINE ciaddr %s, want 0", a)
	}
	if len(applies) != 1 || applies[0].Bind || !slices.Contains(engKinds(applies[0].Ops), privsep.OpLeaseDrop) {
		t.Errorf("want an unbind that drops the lease, got %+v", applies)
	}
	engActuate(t, g, applies[0])
	if h.c.State() != StateInit || h.c.Lease() != nil {
		t.Errorf("state %s lease %v, want INIT and no lease", h.c.State(), h.c.Lease())
	}
	if !strings.Contains(h.c.LastError(), "address already in use") {
		t.Errorf("LastError %q", h.c.LastError())
	}
	if want := h.now.Add(declineWait); !h.c.Deadline().Equal(want) {
		t.Errorf("deadline %v, want %v", h.c.Deadline(), want)
	}
	h.wait(declineWait - time.Second)
	h.none()
	h.wait(time.Second)
	h.oneSend(dhcpv4.MessageTypeDiscover)
}

// Messages that are not answers to this client change nothing.
func TestClientIgnoresForeignMessages(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*dhcpv4.DHCPv4)
	}{
		{"wrong xid", func(m *dhcpv4.DHCPv4) { m.TransactionID[0] ^= 0xff }},
		{"wrong chaddr", func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = net.HardwareAddr{2, 0, 0, 0, 0, 9} }},
		{"short chaddr", func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = m.ClientHWAddr[:5] }},
		{"BOOTREQUEST opcode", func(m *dhcpv4.DHCPv4) { m.OpCode = dhcpv4.OpcodeBootRequest }},
		{"DISCOVER echoed", func(m *dhcpv4.DHCPv4) {
			m.OpCode = dhcpv4.OpcodeBootRequest
			m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeDiscover))
		}},
		{"no message type", func(m *dhcpv4.DHCPv4) { m.Options.Del(dhcpv4.OptionDHCPMessageType) }},
	}
	for _, tc := range tests {
		for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak} {
			t.Run(tc.name+"/"+mt.String(), func(t *testing.T) {
				h := newEngHarness(t, func(c *ClientConfig) { c.RapidCommit = true }, nil)
				h.linkUp()
				var m *dhcpv4.DHCPv4
				if mt == dhcpv4.MessageTypeOffer {
					m = h.reply(mt)
				} else {
					// Reach REQUESTING first so that ACK and NAK would count.
					h.deliver(h.reply(dhcpv4.MessageTypeOffer))
					h.oneSend(dhcpv4.MessageTypeRequest)
					m = h.reply(mt, engOpt(optRapidCommit, nil))
				}
				before := h.c.State()
				tc.mod(m)
				h.deliver(engWire(t, m))
				h.none()
				if h.c.State() != before || h.c.LastError() != "" {
					t.Errorf("state %s→%s, last error %q: the message was not ignored", before, h.c.State(), h.c.LastError())
				}
			})
		}
	}
}

// Replies in states that expect none change nothing.
func TestClientIgnoresUnexpectedReplies(t *testing.T) {
	h := newEngHarness(t, nil, nil)
	h.linkUp()
	req := h.last
	h.deliver(h.reply(dhcpv4.MessageTypeOffer))
	h.oneSend(dhcpv4.MessageTypeRequest)
	// A second OFFER in REQUESTING.
	h.deliver(h.reply(dhcpv4.MessageTypeOffer, dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 77))))
	h.none()
	// An ACK from a server other than the one asked.
	h.deliver(h.reply(dhcpv4.MessageTypeAck, engOpt(optServerID, engOther.AsSlice())))
	h.none()
	if h.c.State() != StateRequesting {
		t.Fatalf("state %s, want REQUESTING", h.c.State())
	}
	h.deliver(h.reply(dhcpv4.MessageTypeAck))
	h.bindApply()
	h.c.Applied(h.now, nil)
	// OFFER, ACK and NAK in BOUND.
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak} {
		h.deliver(h.reply(mt))
		h.none()
	}
	// A reply to the old DISCOVER.
	h.last = req
	h.deliver(h.reply(dhcpv4.MessageTypeOffer))
	h.none()
	if h.c.State() != StateBound || h.c.Lease() == nil {
		t.Errorf("state %s lease %v, want BOUND with the lease", h.c.State(), h.c.Lease())
	}
}

func TestClientAckForOtherAddressIsDeclined(t *testing.T) {
	h := newEngHarness(t, nil, nil)
	h.linkUp()
	h.deliver(h.reply(dhcpv4.MessageTypeOffer))
	h.oneSend(dhcpv4.MessageTypeRequest)
	h.deliver(h.reply(dhcpv4.MessageTypeAck, dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 77))))
	d := h.oneSend(dhcpv4.MessageTypeDecline)
	if engOptAddr(d.Message, optRequestedIP) != netip.MustParseAddr("192.0.2.77") {
		t.Errorf("DECLINE of %v", engOptAddr(d.Message, optRequestedIP))
	}
	if h.c.State() != StateInit || h.c.Lease() != nil {
		t.Errorf("state %s lease %v", h.c.State(), h.c.Lease())
	}
}

// Bad server input: each case goes through DISCOVER, OFFER, REQUEST and ACK
// with the same options in the OFFER and the ACK. A refused OFFER leaves the
// client SELECTING with LastError saying why; an accepted one is bound with
// the bad values dropped.
func TestClientBadServerInput(t *testing.T) {
	classless := func(b ...byte) dhcpv4.Modifier { return engOpt(optClasslessRoutes, b) }
	yi := func(s string) dhcpv4.Modifier { return dhcpv4.WithYourIP(net.ParseIP(s)) }
	type check func(t *testing.T, l privsep.Lease, a Apply)
	noRoutes := func(t *testing.T, _ privsep.Lease, a Apply) {
		if r := engRoutes(a); len(r) != 0 {
			t.Errorf("routes %+v, want none", r)
		}
	}
	routesAre := func(want ...privsep.Route) check {
		return func(t *testing.T, _ privsep.Lease, a Apply) {
			got := engRoutes(a)
			if len(got) != len(want) {
				t.Fatalf("routes %+v, want %+v", got, want)
			}
			for i, w := range want {
				w.Interface, w.Source = engIface, engYI
				if got[i] != w {
					t.Errorf("route %d %+v, want %+v", i, got[i], w)
				}
			}
		}
	}
	noMTU := func(t *testing.T, l privsep.Lease, a Apply) {
		if l.MTU != 0 || len(engOpsOf[*privsep.LinkMTU](a.Ops)) != 0 {
			t.Errorf("MTU %d kept, ops %v", l.MTU, engKinds(a.Ops))
		}
	}
	dns := func(want ...string) check {
		return func(t *testing.T, l privsep.Lease, _ Apply) {
			var w []netip.Addr
			for _, s := range want {
				w = append(w, netip.MustParseAddr(s))
			}
			if !slices.Equal(l.DNS, w) {
				t.Errorf("DNS %v, want %v", l.DNS, w)
			}
		}
	}
	domain := func(want string) check {
		return func(t *testing.T, l privsep.Lease, _ Apply) {
			if l.Domain != want {
				t.Errorf("domain %q, want %q", l.Domain, want)
			}
		}
	}
	search := func(want ...string) check {
		return func(t *testing.T, l privsep.Lease, _ Apply) {
			if !slices.Equal(l.Search, want) {
				t.Errorf("search %q, want %q", l.Search, want)
			}
		}
	}
	hostname := func(want string) check {
		return func(t *testing.T, l privsep.Lease, _ Apply) {
			if l.Hostname != want {
				t.Errorf("host name %q, want %q", l.Hostname, want)
			}
		}
	}
	dflt := routesAre(privsep.Route{Destination: engDefaultRoute, Gateway: engRouter})
	onLink198 := privsep.Route{Destination: netip.MustParsePrefix("198.51.100.0/24")}
	// The search list "eng.example.com", then a name made of label bytes.
	searchWith := func(bad string) []byte {
		b := []byte{3, 'e', 'n', 'g', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0}
		b = append(b, byte(len(bad)))
		b = append(b, bad...)
		return append(b, 0xc0, 4) // ".example.com"
	}

	tests := []struct {
		name    string
		mods    []dhcpv4.Modifier
		refused string // substring of LastError; "" means accepted
		check   check
	}{
		// The lease itself.
		{"lease time 0", []dhcpv4.Modifier{engOpt(optLeaseTime, engU32(0))}, "lease time", nil},
		{"lease time missing", []dhcpv4.Modifier{engNoOpt(optLeaseTime)}, "lease time", nil},
		{"lease time 3 bytes", []dhcpv4.Modifier{engOpt(optLeaseTime, []byte{0, 0, 1})}, "lease time", nil},
		{"no server ID", []dhcpv4.Modifier{engNoOpt(optServerID)}, "server identifier", nil},
		{"server ID 0.0.0.0", []dhcpv4.Modifier{engOpt(optServerID, engAddrs("0.0.0.0"))}, "server identifier", nil},
		{"server ID broadcast", []dhcpv4.Modifier{engOpt(optServerID, engAddrs("255.255.255.255"))}, "server identifier", nil},
		{"two server IDs", []dhcpv4.Modifier{engOpt(optServerID, engAddrs("192.0.2.1", "192.0.2.2"))}, "server identifier", nil},
		{"non-contiguous mask", []dhcpv4.Modifier{engOpt(optSubnetMask, []byte{255, 0, 255, 0})}, "contiguous", nil},
		{"mask of 3 bytes", []dhcpv4.Modifier{engOpt(optSubnetMask, []byte{255, 255, 255})}, "subnet mask", nil},
		{"mask 0.0.0.0", []dhcpv4.Modifier{engOpt(optSubnetMask, []byte{0, 0, 0, 0})}, "prefix length", nil},
		{"yiaddr 0.0.0.0", []dhcpv4.Modifier{yi("0.0.0.0")}, "offered address", nil},
		{"yiaddr 127.0.0.1", []dhcpv4.Modifier{yi("127.0.0.1"), engOpt(optSubnetMask, []byte{255, 0, 0, 0})}, "offered address", nil},
		{"yiaddr 224.0.0.5", []dhcpv4.Modifier{yi("224.0.0.5")}, "offered address", nil},
		{"yiaddr 255.255.255.255", []dhcpv4.Modifier{yi("255.255.255.255")}, "offered address", nil},
		{"yiaddr class E", []dhcpv4.Modifier{yi("240.0.0.7")}, "offered address", nil},
		{"yiaddr link-local", []dhcpv4.Modifier{yi("169.254.3.4"), engOpt(optSubnetMask, []byte{255, 255, 0, 0})}, "link-local", nil},
		{"yiaddr network address", []dhcpv4.Modifier{yi("192.0.2.0")}, "address of its subnet", nil},
		{"yiaddr broadcast address", []dhcpv4.Modifier{yi("192.0.2.255")}, "address of its subnet", nil},
		{"yiaddr broadcast of a /28", []dhcpv4.Modifier{yi("192.0.2.15"), engOpt(optSubnetMask, []byte{255, 255, 255, 240})}, "address of its subnet", nil},
		{"yiaddr network of a classful /8, no mask", []dhcpv4.Modifier{yi("10.0.0.0"), engNoOpt(optSubnetMask), engNoOpt(optRouter)}, "address of its subnet", nil},
		{"/31 uses both addresses (RFC 3021)", []dhcpv4.Modifier{yi("192.0.2.10"), engOpt(optSubnetMask, []byte{255, 255, 255, 254}), engNoOpt(optRouter)}, "",
			func(t *testing.T, l privsep.Lease, _ Apply) {
				if l.Address != netip.MustParsePrefix("192.0.2.10/31") {
					t.Errorf("address %s", l.Address)
				}
			}},

		// Routers.
		{"router off the subnet", []dhcpv4.Modifier{engOpt(optRouter, engAddrs("198.51.100.1"))}, "", noRoutes},
		{"router is our own address", []dhcpv4.Modifier{engOpt(optRouter, engYI.AsSlice())}, "", noRoutes},
		{"router 0.0.0.0 then a good one", []dhcpv4.Modifier{engOpt(optRouter, engAddrs("0.0.0.0", "192.0.2.1"))}, "", dflt},
		{"router option of 5 bytes", []dhcpv4.Modifier{engOpt(optRouter, []byte{192, 0, 2, 1, 7})}, "", noRoutes},

		// Classless routes.
		{"classless width 33", []dhcpv4.Modifier{engNoOpt(optRouter), classless(33, 10, 0, 0, 0, 0, 192, 0, 2, 1)}, "", noRoutes},
		{"classless truncated", []dhcpv4.Modifier{engNoOpt(optRouter), classless(24, 10, 0, 0, 192, 0, 2)}, "", noRoutes},
		{"classless one good route then a truncated one", []dhcpv4.Modifier{engNoOpt(optRouter), classless(8, 10, 192, 0, 2, 1, 16, 172)}, "", noRoutes},
		{"classless empty", []dhcpv4.Modifier{engNoOpt(optRouter), classless()}, "", noRoutes},
		{"classless host bits", []dhcpv4.Modifier{engNoOpt(optRouter), classless(7, 11, 192, 0, 2, 1)}, "", noRoutes},
		{"classless off-link gateway dropped", []dhcpv4.Modifier{classless(
			8, 10, 203, 0, 113, 1, // off-link: dropped
			16, 172, 16, 192, 0, 2, 1, // on-link gateway: kept
		)}, "", routesAre(privsep.Route{Destination: netip.MustParsePrefix("172.16.0.0/16"), Gateway: engRouter})},
		{"classless gateway behind an earlier on-link route", []dhcpv4.Modifier{classless(
			24, 198, 51, 100, 0, 0, 0, 0,
			0, 198, 51, 100, 1,
		)}, "", routesAre(onLink198, privsep.Route{Destination: engDefaultRoute, Gateway: netip.MustParseAddr("198.51.100.1")})},
		{"classless loopback and multicast destinations", []dhcpv4.Modifier{classless(
			8, 127, 192, 0, 2, 1,
			4, 224, 192, 0, 2, 1,
			16, 172, 16, 192, 0, 2, 1,
		)}, "", routesAre(privsep.Route{Destination: netip.MustParsePrefix("172.16.0.0/16"), Gateway: engRouter})},
		{"classless gateway is our own address", []dhcpv4.Modifier{engNoOpt(optRouter), classless(8, 10, 192, 0, 2, 10)}, "", noRoutes},
		{"option 3 ignored when 121 is present", []dhcpv4.Modifier{
			engOpt(optRouter, engAddrs("192.0.2.1")),
			classless(16, 172, 16, 192, 0, 2, 2),
		}, "", routesAre(privsep.Route{Destination: netip.MustParsePrefix("172.16.0.0/16"), Gateway: netip.MustParseAddr("192.0.2.2")})},

		// MTU.
		{"MTU 0", []dhcpv4.Modifier{engOpt(optMTU, engU16(0))}, "", noMTU},
		{"MTU 100", []dhcpv4.Modifier{engOpt(optMTU, engU16(100))}, "", noMTU},
		{"MTU 575", []dhcpv4.Modifier{engOpt(optMTU, engU16(575))}, "", noMTU},
		{"MTU 9217", []dhcpv4.Modifier{engOpt(optMTU, engU16(9217))}, "", noMTU},
		{"MTU 65535", []dhcpv4.Modifier{engOpt(optMTU, engU16(65535))}, "", noMTU},
		{"MTU of 1 byte", []dhcpv4.Modifier{engOpt(optMTU, []byte{9})}, "", noMTU},
		{"MTU of 4 bytes", []dhcpv4.Modifier{engOpt(optMTU, engU32(1500))}, "", noMTU},

		// DNS servers.
		{"bogus DNS servers", []dhcpv4.Modifier{engOpt(optDNS, engAddrs("0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1", "240.1.2.3", "0.1.2.3", "192.0.2.53"))}, "", dns("192.0.2.53")},
		{"DNS option of 6 bytes", []dhcpv4.Modifier{engOpt(optDNS, []byte{192, 0, 2, 53, 1, 1})}, "", dns()},
		{"nine DNS servers", []dhcpv4.Modifier{engOpt(optDNS, engAddrs("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9"))}, "",
			dns("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8")},

		// Names.
		{"domain with ;", []dhcpv4.Modifier{engOpt(optDomainName, []byte("example.com;reboot"))}, "", domain("")},
		{"domain with $()", []dhcpv4.Modifier{engOpt(optDomainName, []byte("$(reboot).example.com"))}, "", domain("")},
		{"domain with backquotes", []dhcpv4.Modifier{engOpt(optDomainName, []byte("`id`.example.com"))}, "", domain("")},
		{"domain with a newline", []dhcpv4.Modifier{engOpt(optDomainName, []byte("example.com\nnameserver 203.0.113.1"))}, "", domain("")},
		{"domain with a space", []dhcpv4.Modifier{engOpt(optDomainName, []byte("example.com evil.com"))}, "", domain("")},
		{"domain with a slash", []dhcpv4.Modifier{engOpt(optDomainName, []byte("../../etc/passwd"))}, "", domain("")},
		{"domain with a NUL inside", []dhcpv4.Modifier{engOpt(optDomainName, []byte("example.com\x00evil"))}, "", domain("")},
		{"domain with trailing NULs kept", []dhcpv4.Modifier{engOpt(optDomainName, []byte("example.com\x00\x00"))}, "", domain("example.com")},
		{"search name with ;", []dhcpv4.Modifier{engOpt(optDomainSearch, searchWith("a;b"))}, "", search("eng.example.com")},
		{"search name with a newline", []dhcpv4.Modifier{engOpt(optDomainSearch, searchWith("a\nb"))}, "", search("eng.example.com")},
		{"search name with $(x)", []dhcpv4.Modifier{engOpt(optDomainSearch, searchWith("$(x)"))}, "", search("eng.example.com")},
		{"search name with a slash", []dhcpv4.Modifier{engOpt(optDomainSearch, searchWith("a/b"))}, "", search("eng.example.com")},
		{"search name with a space", []dhcpv4.Modifier{engOpt(optDomainSearch, searchWith("a b"))}, "", search("eng.example.com")},
		{"search list good", []dhcpv4.Modifier{engOpt(optDomainSearch, searchWith("lab"))}, "", search("eng.example.com", "lab.example.com")},
		{"search list with a forward pointer", []dhcpv4.Modifier{engOpt(optDomainSearch, []byte{0xc0, 2, 3, 'c', 'o', 'm', 0})}, "", search()},
		{"host name with ;", []dhcpv4.Modifier{engOpt(optHostname, []byte("node;reboot"))}, "", hostname("")},
		{"host name with a newline", []dhcpv4.Modifier{engOpt(optHostname, []byte("node\nx"))}, "", hostname("")},
		{"host name with $(x)", []dhcpv4.Modifier{engOpt(optHostname, []byte("$(x)"))}, "", hostname("")},
		{"host name with a slash", []dhcpv4.Modifier{engOpt(optHostname, []byte("a/b"))}, "", hostname("")},
		{"host name with an underscore", []dhcpv4.Modifier{engOpt(optHostname, []byte("node_1"))}, "", hostname("")},
		{"host name of 65 bytes", []dhcpv4.Modifier{engOpt(optHostname, []byte(strings.Repeat("a", 65)))}, "", hostname("")},
		{"host name good", []dhcpv4.Modifier{engOpt(optHostname, []byte("node-1.example.com"))}, "", hostname("node-1.example.com")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngHarness(t, nil, nil)
			h.linkUp()
			h.deliver(h.reply(dhcpv4.MessageTypeOffer, tc.mods...))
			if tc.refused != "" {
				h.none()
				if h.c.State() != StateSelecting {
					t.Errorf("state %s, want SELECTING after a refused OFFER", h.c.State())
				}
				if !strings.Contains(h.c.LastError(), tc.refused) {
					t.Errorf("LastError %q, want it to mention %q", h.c.LastError(), tc.refused)
				}
				return
			}
			h.oneSend(dhcpv4.MessageTypeRequest)
			h.deliver(h.reply(dhcpv4.MessageTypeAck, tc.mods...))
			a, _ := h.bindApply()
			engActuate(t, engGuard(), a)
			if tc.check != nil {
				tc.check(t, engSaved(t, a), a)
			}
		})
	}
}

// A bad ACK in REQUESTING is refused and the client keeps waiting.
func TestClientBadAck(t *testing.T) {
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		want string
	}{
		{"lease time 0", []dhcpv4.Modifier{engOpt(optLeaseTime, engU32(0))}, "lease time"},
		{"no server ID", []dhcpv4.Modifier{engNoOpt(optServerID)}, "server identifier"},
		{"yiaddr 0.0.0.0", []dhcpv4.Modifier{dhcpv4.WithYourIP(net.IPv4zero)}, "offered address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngHarness(t, nil, nil)
			h.linkUp()
			h.deliver(h.reply(dhcpv4.MessageTypeOffer))
			h.oneSend(dhcpv4.MessageTypeRequest)
			h.deliver(h.reply(dhcpv4.MessageTypeAck, tc.mods...))
			h.none()
			if h.c.State() != StateRequesting || !strings.Contains(h.c.LastError(), tc.want) {
				t.Errorf("state %s, last error %q; want REQUESTING and %q", h.c.State(), h.c.LastError(), tc.want)
			}
			// The good ACK still binds.
			h.deliver(h.reply(dhcpv4.MessageTypeAck))
			h.bindApply()
		})
	}
}
