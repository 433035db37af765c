package privsep

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const polIface = "eth0"

var polAllOps = []Kind{OpLinkUp, OpLinkMTU, OpAddrReplace, OpAddrRemove, OpRouteReplace, OpRouteRemove,
	OpResolvConf, OpNTPServers, OpHostname, OpLeaseSave, OpLeaseDrop}

func polPolicy() Policy {
	return Policy{Daemon: "dhcp", Ops: polAllOps, Interfaces: []string{"eth*", "ens3"}}.WithDefaultBounds()
}

var (
	polAddr = netip.MustParsePrefix("192.0.2.10/24")
	polGW   = netip.MustParseAddr("192.0.2.1")
)

// polGuardHolding returns a guard whose ledger holds polAddr on polIface.
func polGuardHolding(t *testing.T) *Guard {
	t.Helper()
	g := NewGuard(polPolicy())
	polDo(t, g, &AddrReplace{Interface: polIface, Address: polAddr, ValidLifetime: 3600, PreferredLifetime: 3600})
	return g
}

// polDo checks and records an operation that must pass.
func polDo(t *testing.T, g *Guard, m Message) {
	t.Helper()
	if err := g.Check(m); err != nil {
		t.Fatalf("%s %+v refused: %v", m.Kind(), m, err)
	}
	g.Record(m)
}

func polRefused(t *testing.T, g *Guard, m Message, want string) {
	t.Helper()
	err := g.Check(m)
	if err == nil {
		t.Errorf("%s %+v accepted", m.Kind(), m)
		return
	}
	// Removing what is not held is answered as a no-op, not a refusal.
	if want == "not held" {
		if !errors.Is(err, ErrNotHeld) {
			t.Errorf("%s: error %v does not wrap ErrNotHeld", m.Kind(), err)
		}
		return
	}
	if !errors.Is(err, ErrRefused) {
		t.Errorf("%s: error %v does not wrap ErrRefused", m.Kind(), err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q, want it to mention %q", m.Kind(), err, want)
	}
}

func polRoute(dst, gw string) Route {
	r := Route{Interface: polIface, Destination: netip.MustParsePrefix(dst), Source: polAddr.Addr()}
	if gw != "" {
		r.Gateway = netip.MustParseAddr(gw)
	}
	return r
}

func polLease() Lease {
	return Lease{
		Interface: polIface, Address: polAddr, Server: polGW,
		Routers: []netip.Addr{polGW}, Routes: []Route{polRoute("10.0.0.0/8", "192.0.2.1")},
		DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, NTP: []netip.Addr{netip.MustParseAddr("192.0.2.123")},
		Domain: "example.com", Search: []string{"example.com", "lab.example.com."}, Hostname: "node-1", MTU: 1500,
		LeaseTime: 3600, RenewTime: 1800, RebindTime: 3150, Acquired: 1700000000,
	}
}

func TestGuardAccepts(t *testing.T) {
	g := polGuardHolding(t)
	for _, m := range []Message{
		&LinkUp{Interface: polIface},
		&LinkUp{Interface: "ens3"},
		&LinkMTU{Interface: polIface, MTU: 576},
		&LinkMTU{Interface: polIface, MTU: 1500},
		&LinkMTU{Interface: polIface, MTU: 9216},
		// Refreshing the address held, with new lifetimes.
		&AddrReplace{Interface: polIface, Address: polAddr, ValidLifetime: 100, PreferredLifetime: 50},
		&AddrReplace{Interface: polIface, Address: polAddr, ValidLifetime: 0xffffffff, PreferredLifetime: 0xffffffff},
		// Another link holds its own address.
		&AddrReplace{Interface: "eth1", Address: netip.MustParsePrefix("198.51.100.7/31"), ValidLifetime: 1, PreferredLifetime: 0},
		&AddrReplace{Interface: "eth2", Address: netip.MustParsePrefix("10.1.2.3/8"), ValidLifetime: 1, PreferredLifetime: 1},
		&AddrReplace{Interface: "eth3", Address: netip.MustParsePrefix("203.0.113.9/32"), ValidLifetime: 1, PreferredLifetime: 1},
		&AddrRemove{Interface: polIface, Address: polAddr},
		&RouteReplace{Route: polRoute("0.0.0.0/0", "192.0.2.1")},
		&RouteReplace{Route: Route{Interface: polIface, Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: polGW, Source: polAddr.Addr(), Metric: 100}},
		&RouteReplace{Route: polRoute("198.51.100.0/24", "")},
		&RouteReplace{Route: polRoute("10.0.0.0/8", "192.0.2.254")},
		&ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")}, Domain: "example.com", Search: []string{"example.com", "a-b.example_x.org."}},
		&ResolvConf{},
		&NTPServers{Servers: []netip.Addr{netip.MustParseAddr("192.0.2.123")}},
		&NTPServers{},
		&Hostname{Name: "node-1"},
		&Hostname{Name: "node-1.example.com"},
		&Hostname{Name: strings.Repeat("a", 63)},
		&LeaseSave{Lease: polLease()},
		&LeaseDrop{Interface: polIface},
	} {
		if err := g.Check(m); err != nil {
			t.Errorf("%s %+v refused: %v", m.Kind(), m, err)
		}
	}
}

func TestGuardRefuses(t *testing.T) {
	addr := func(iface, p string) *AddrReplace {
		return &AddrReplace{Interface: iface, Address: netip.MustParsePrefix(p), ValidLifetime: 3600, PreferredLifetime: 3600}
	}
	lease := func(f func(*Lease)) *LeaseSave {
		l := polLease()
		f(&l)
		return &LeaseSave{Lease: l}
	}
	tests := []struct {
		name string
		m    Message
		want string
	}{
		// Interfaces.
		{"interface not configured", &LinkUp{Interface: "wlan0"}, "not one this daemon"},
		{"lo", &LinkUp{Interface: "lo"}, "lo is never owned"},
		{"empty interface name", &LinkUp{Interface: ""}, "1 to 15 bytes"},
		{"interface name of 16 bytes", &LinkUp{Interface: "eth0123456789012"}, "1 to 15 bytes"},
		{"interface name with a slash", &LinkUp{Interface: "eth/0"}, "invalid byte"},
		{"interface name with a colon", &LinkUp{Interface: "eth0:1"}, "invalid byte"},
		{"interface name with a space", &LinkUp{Interface: "eth 0"}, "invalid byte"},
		{"interface name with a newline", &LinkUp{Interface: "eth\n"}, "invalid byte"},
		{"interface ..", &LinkUp{Interface: ".."}, "not allowed"},
		{"MTU on a link not owned", &LinkMTU{Interface: "wlan0", MTU: 1500}, "not one this daemon"},
		{"address on a link not owned", addr("wlan0", "192.0.2.10/24"), "not one this daemon"},
		{"address on lo", addr("lo", "192.0.2.10/24"), "lo is never owned"},
		{"route on a link not owned", &RouteReplace{Route: Route{Interface: "wlan0", Destination: netip.MustParsePrefix("10.0.0.0/8")}}, "not one this daemon"},
		{"lease drop on a link not owned", &LeaseDrop{Interface: "wlan0"}, "not one this daemon"},

		// Addresses.
		{"loopback address", addr("eth1", "127.0.0.5/8"), "loopback"},
		{"multicast address", addr("eth1", "224.0.0.5/24"), "multicast"},
		{"broadcast address", addr("eth1", "255.255.255.255/32"), "broadcast"},
		{"zero address", addr("eth1", "0.0.0.0/8"), "zero"},
		{"address in 0/8", addr("eth1", "0.1.2.3/8"), "0.0.0.0/8"},
		{"class E address", addr("eth1", "240.0.0.1/8"), "class E"},
		{"link-local address", addr("eth1", "169.254.7.7/16"), "link-local"},
		{"IPv6 address", addr("eth1", "2001:db8::1/64"), "not IPv4"},
		{"missing address", &AddrReplace{Interface: "eth1", ValidLifetime: 1}, "missing"},
		{"prefix /7", addr("eth1", "10.1.2.3/7"), "outside 8..32"},
		{"prefix /0", addr("eth1", "10.1.2.3/0"), "outside 8..32"},
		{"network address", addr("eth1", "10.0.0.0/24"), "network address"},
		{"broadcast address of the subnet", addr("eth1", "10.0.0.255/24"), "broadcast address of its subnet"},
		{"network address of a /30", addr("eth1", "10.0.0.4/30"), "network address"},
		{"second address while one is held", addr(polIface, "192.0.2.11/24"), "already holds"},
		{"same address, other prefix length", addr(polIface, "192.0.2.10/25"), "already holds"},
		{"valid lifetime 0", &AddrReplace{Interface: "eth1", Address: polAddr, ValidLifetime: 0}, "lifetimes"},
		{"preferred above valid", &AddrReplace{Interface: "eth1", Address: polAddr, ValidLifetime: 10, PreferredLifetime: 11}, "lifetimes"},
		{"remove an address not installed", &AddrRemove{Interface: polIface, Address: netip.MustParsePrefix("192.0.2.11/24")}, "not held"},
		{"remove from a link holding nothing", &AddrRemove{Interface: "eth1", Address: polAddr}, "not held"},
		{"remove a zero address from a link holding nothing", &AddrRemove{Interface: "eth1"}, "not held"},

		// Routes.
		{"route via an off-link gateway", &RouteReplace{Route: polRoute("0.0.0.0/0", "198.51.100.1")}, "not on-link"},
		{"route via our own address", &RouteReplace{Route: polRoute("0.0.0.0/0", "192.0.2.10")}, "own address"},
		{"route via a broadcast gateway", &RouteReplace{Route: polRoute("0.0.0.0/0", "255.255.255.255")}, "gateway"},
		{"route via a multicast gateway", &RouteReplace{Route: polRoute("0.0.0.0/0", "224.0.0.1")}, "gateway"},
		{"route via a loopback gateway", &RouteReplace{Route: polRoute("0.0.0.0/0", "127.0.0.1")}, "gateway"},
		{"route with host bits", &RouteReplace{Route: polRoute("10.0.0.1/8", "192.0.2.1")}, "host bits"},
		{"route to loopback", &RouteReplace{Route: polRoute("127.0.0.0/8", "192.0.2.1")}, "loopback"},
		{"route to multicast", &RouteReplace{Route: polRoute("224.0.0.0/4", "")}, "multicast"},
		{"route to class E", &RouteReplace{Route: polRoute("240.0.0.0/4", "")}, "class E"},
		{"IPv6 route", &RouteReplace{Route: polRoute("2001:db8::/32", "")}, "not an IPv4 prefix"},
		{"route without a destination", &RouteReplace{Route: Route{Interface: polIface}}, "not an IPv4 prefix"},
		{"route with a foreign source", &RouteReplace{Route: Route{Interface: polIface, Destination: netip.MustParsePrefix("10.0.0.0/8"), Gateway: polGW, Source: netip.MustParseAddr("192.0.2.99")}}, "source"},
		{"route with an absurd metric", &RouteReplace{Route: Route{Interface: polIface, Destination: netip.MustParsePrefix("10.0.0.0/8"), Gateway: polGW, Metric: 1<<20 + 1}}, "metric"},
		{"route via a gateway on a link holding nothing", &RouteReplace{Route: Route{Interface: "eth1", Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: polGW}}, "not on-link"},
		{"remove a route not installed", &RouteRemove{Route: polRoute("0.0.0.0/0", "192.0.2.1")}, "not held"},

		// MTU.
		{"MTU 575", &LinkMTU{Interface: polIface, MTU: 575}, "MTU 575"},
		{"MTU 9217", &LinkMTU{Interface: polIface, MTU: 9217}, "MTU 9217"},
		{"MTU 0", &LinkMTU{Interface: polIface, MTU: 0}, "MTU 0"},
		{"MTU -1", &LinkMTU{Interface: polIface, MTU: -1}, "MTU -1"},

		// resolv.conf.
		{"9 nameservers", &ResolvConf{Nameservers: polAddrs(9)}, "at most 8"},
		{"nameserver 0.0.0.0", &ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("0.0.0.0")}}, "nameserver"},
		{"nameserver multicast", &ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("224.0.0.1")}}, "nameserver"},
		{"nameserver ::1", &ResolvConf{Nameservers: []netip.Addr{netip.MustParseAddr("::1")}}, "not a unicast"},
		{"nameserver missing", &ResolvConf{Nameservers: []netip.Addr{{}}}, "nameserver"},
		{"domain with ;", &ResolvConf{Domain: "example.com;reboot"}, "domain"},
		{"domain with a space", &ResolvConf{Domain: "example.com evil"}, "domain"},
		{"domain with a newline", &ResolvConf{Domain: "example.com\nnameserver 203.0.113.66"}, "domain"},
		{"domain with a slash", &ResolvConf{Domain: "../etc"}, "domain"},
		{"domain with $(x)", &ResolvConf{Domain: "$(x).example.com"}, "domain"},
		{"domain with an empty label", &ResolvConf{Domain: "a..b"}, "domain"},
		{"domain label of 64 bytes", &ResolvConf{Domain: strings.Repeat("a", 64) + ".com"}, "domain"},
		{"domain label starting with a hyphen", &ResolvConf{Domain: "-a.com"}, "domain"},
		{"domain of 254 bytes", &ResolvConf{Domain: strings.Repeat("a.", 126) + "ab"}, "domain"},
		{"search with ;", &ResolvConf{Search: []string{"a;b"}}, "search"},
		{"search with a space", &ResolvConf{Search: []string{"a b"}}, "search"},
		{"search with a newline", &ResolvConf{Search: []string{"a\nb"}}, "search"},
		{"search with a slash", &ResolvConf{Search: []string{"a/b"}}, "search"},
		{"search with $(x)", &ResolvConf{Search: []string{"$(x)"}}, "search"},
		{"search empty name", &ResolvConf{Search: []string{""}}, "search"},
		{"9 search domains", &ResolvConf{Search: strings.Split("a b c d e f g h i", " ")}, "at most 8"},

		// NTP servers.
		{"9 NTP servers", &NTPServers{Servers: polAddrs(9)}, "at most 8"},
		{"NTP server IPv6", &NTPServers{Servers: []netip.Addr{netip.MustParseAddr("2001:db8::123")}}, "not IPv4"},
		{"NTP server loopback", &NTPServers{Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, "loopback"},

		// Host names.
		{"hostname with ;", &Hostname{Name: "a;b"}, "hostname"},
		{"hostname with $(x)", &Hostname{Name: "$(x)"}, "hostname"},
		{"hostname with a newline", &Hostname{Name: "a\nb"}, "hostname"},
		{"hostname with a slash", &Hostname{Name: "a/b"}, "hostname"},
		{"hostname with a space", &Hostname{Name: "a b"}, "hostname"},
		{"hostname with an underscore", &Hostname{Name: "a_b"}, "underscores"},
		{"hostname with a final dot", &Hostname{Name: "a.b."}, "final dot"},
		{"hostname of 65 bytes", &Hostname{Name: strings.Repeat("a", 30) + "." + strings.Repeat("b", 34)}, "64 bytes"},
		{"empty hostname", &Hostname{Name: ""}, "hostname"},

		// Saved leases.
		{"lease on a link not owned", lease(func(l *Lease) { l.Interface = "wlan0" }), "not one this daemon"},
		{"lease with a bad address", lease(func(l *Lease) { l.Address = netip.MustParsePrefix("192.0.2.0/24") }), "network address"},
		{"lease with no server", lease(func(l *Lease) { l.Server = netip.Addr{} }), "lease server"},
		{"lease with a bad router", lease(func(l *Lease) { l.Routers = []netip.Addr{netip.MustParseAddr("0.0.0.0")} }), "lease router"},
		{"lease with a bad route", lease(func(l *Lease) { l.Routes = []Route{polRoute("10.0.0.1/8", "")} }), "lease route"},
		{"lease with a bad route gateway", lease(func(l *Lease) { l.Routes = []Route{polRoute("10.0.0.0/8", "224.0.0.1")} }), "lease route gateway"},
		{"lease with too many routes", lease(func(l *Lease) { l.Routes = make([]Route, 65) }), "too many routes"},
		{"lease with 9 DNS servers", lease(func(l *Lease) { l.DNS = polAddrs(9) }), "at most 8"},
		{"lease with a bad NTP server", lease(func(l *Lease) { l.NTP = []netip.Addr{netip.MustParseAddr("255.255.255.255")} }), "NTP server"},
		{"lease with a bad domain", lease(func(l *Lease) { l.Domain = "a;b" }), "lease"},
		{"lease with a bad search domain", lease(func(l *Lease) { l.Search = []string{"a b"} }), "lease"},
		{"lease with 9 search domains", lease(func(l *Lease) { l.Search = strings.Split("a b c d e f g h i", " ") }), "search domains"},
		{"lease with a bad host name", lease(func(l *Lease) { l.Hostname = "a/b" }), "lease"},
		{"lease with MTU 100", lease(func(l *Lease) { l.MTU = 100 }), "MTU"},
		{"lease time 0", lease(func(l *Lease) { l.LeaseTime, l.RenewTime, l.RebindTime = 0, 0, 0 }), "inconsistent"},
		{"lease time over the address's cap", lease(func(l *Lease) { l.LeaseTime = DefaultMaxLifetime + 1 }), "over the"},
		{"renew after expiry", lease(func(l *Lease) { l.RenewTime = 3601 }), "inconsistent"},
		{"rebind after expiry", lease(func(l *Lease) { l.RebindTime = 3601 }), "inconsistent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := polGuardHolding(t)
			polRefused(t, g, tc.m, tc.want)
		})
	}
}

func polAddrs(n int) []netip.Addr {
	var out []netip.Addr
	for i := range n {
		out = append(out, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}))
	}
	return out
}

// Operations outside the grant, and messages that are not operations, are
// refused whatever they say.
func TestGuardGrant(t *testing.T) {
	g := NewGuard(Policy{Daemon: "dns", Ops: []Kind{OpResolvConf}, Interfaces: []string{"*"}}.WithDefaultBounds())
	if err := g.Check(&ResolvConf{}); err != nil {
		t.Errorf("granted op refused: %v", err)
	}
	for _, m := range []Message{
		&LinkUp{Interface: polIface},
		&LinkMTU{Interface: polIface, MTU: 1500},
		&AddrReplace{Interface: polIface, Address: polAddr, ValidLifetime: 1},
		&AddrRemove{Interface: polIface, Address: polAddr},
		&RouteReplace{Route: polRoute("10.0.0.0/8", "")},
		&RouteRemove{Route: polRoute("10.0.0.0/8", "")},
		&NTPServers{},
		&Hostname{Name: "a"},
		&LeaseSave{Lease: polLease()},
		&LeaseDrop{Interface: polIface},
	} {
		polRefused(t, g, m, "not in the dns grant")
	}
	// "*" never matches lo.
	g = NewGuard(Policy{Daemon: "dhcp", Ops: []Kind{OpLinkUp}, Interfaces: []string{"*"}}.WithDefaultBounds())
	polRefused(t, g, &LinkUp{Interface: "lo"}, "never owned")
	if g.OwnsInterface("lo") || !g.OwnsInterface("eth7") {
		t.Error("OwnsInterface disagrees with the policy")
	}
	// A denied pattern wins over an allowed one (dhcpcd's denyinterfaces).
	g = NewGuard(Policy{Daemon: "dhcp", Ops: []Kind{OpLinkUp}, Interfaces: []string{"eth*"}, DenyInterfaces: []string{"eth9*"}}.WithDefaultBounds())
	polRefused(t, g, &LinkUp{Interface: "eth90"}, `denied by pattern "eth9*"`)
	if g.OwnsInterface("eth91") || !g.OwnsInterface("eth1") {
		t.Error("OwnsInterface disagrees with the deny list")
	}

	// Conversation messages are never operations, even if a grant names them.
	g = NewGuard(Policy{Daemon: "dhcp", Ops: []Kind{KindHello, KindWelcome, KindReply, KindLink}, Interfaces: []string{"*"}}.WithDefaultBounds())
	for _, m := range []Message{&Hello{}, &Welcome{}, &Reply{}, &LinkEvent{}} {
		polRefused(t, g, m, "not an operation")
	}
}

func TestGuardDefaultBounds(t *testing.T) {
	p := Policy{}.WithDefaultBounds()
	p.Now = nil // a function: compared apart
	want := Policy{PrefixMin: 8, PrefixMax: 32, MTUMin: 576, MTUMax: 9216, MaxRoutes: 64, MaxNameservers: 8, MaxSearch: 8, MaxLifetime: 366 * 24 * 3600, MaxLeases: 16,
		Clock: ClockPolicy{MaxSlew: 500 * time.Millisecond, MaxFrequency: 500 << 16, PanicThreshold: 1000 * time.Second, MinStepInterval: time.Minute}}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("default bounds %+v, want %+v", p, want)
	}
	// Bounds a config sets are kept.
	if Policy.WithDefaultBounds(Policy{}).Now == nil {
		t.Error("no default clock")
	}
	p = Policy{PrefixMin: 16, PrefixMax: 30, MTUMin: 1280, MTUMax: 1500, MaxRoutes: 2, MaxNameservers: 1, MaxSearch: 1}.WithDefaultBounds()
	if fmt.Sprint(NewGuard(p).Policy()) != fmt.Sprint(p) {
		t.Errorf("Policy() = %+v, want %+v", NewGuard(p).Policy(), p)
	}
	p.Ops, p.Interfaces = polAllOps, []string{polIface}
	g := NewGuard(p)
	polRefused(t, g, &AddrReplace{Interface: polIface, Address: netip.MustParsePrefix("10.1.2.3/8"), ValidLifetime: 1}, "outside 16..30")
	polRefused(t, g, &AddrReplace{Interface: polIface, Address: netip.MustParsePrefix("10.1.2.3/31"), ValidLifetime: 1}, "outside 16..30")
	polRefused(t, g, &LinkMTU{Interface: polIface, MTU: 1279}, "outside 1280..1500")
	polRefused(t, g, &ResolvConf{Nameservers: polAddrs(2)}, "at most 1")
	polRefused(t, g, &ResolvConf{Search: []string{"a", "b"}}, "at most 1")
}

// The ledger: what was recorded decides what may be removed, which gateways
// are on-link and how many routes are held.
func TestGuardLedger(t *testing.T) {
	t.Run("address", func(t *testing.T) {
		g := NewGuard(polPolicy())
		if len(g.Installed()) != 0 {
			t.Fatal("new guard holds addresses")
		}
		polRefused(t, g, &AddrRemove{Interface: polIface, Address: polAddr}, "not held")
		add := &AddrReplace{Interface: polIface, Address: polAddr, ValidLifetime: 60, PreferredLifetime: 60}
		// Check alone records nothing.
		if err := g.Check(add); err != nil {
			t.Fatal(err)
		}
		if len(g.Installed()) != 0 {
			t.Fatal("Check changed the ledger")
		}
		g.Record(add)
		if got := g.Installed(); len(got) != 1 || got[polIface] != polAddr {
			t.Fatalf("Installed() = %v", got)
		}
		// Installed returns a copy.
		g.Installed()[polIface] = netip.MustParsePrefix("10.0.0.1/8")
		if g.Installed()[polIface] != polAddr {
			t.Error("Installed() exposes the ledger")
		}
		other := &AddrReplace{Interface: polIface, Address: netip.MustParsePrefix("192.0.2.11/24"), ValidLifetime: 60, PreferredLifetime: 60}
		polRefused(t, g, other, "already holds")
		polDo(t, g, &AddrRemove{Interface: polIface, Address: polAddr})
		if len(g.Installed()) != 0 {
			t.Errorf("Installed() = %v after remove", g.Installed())
		}
		polDo(t, g, other)
	})
	t.Run("gateway on-link through an on-link route", func(t *testing.T) {
		g := polGuardHolding(t)
		via := &RouteReplace{Route: polRoute("0.0.0.0/0", "198.51.100.1")}
		polRefused(t, g, via, "not on-link")
		// A default on-link route does not make everything on-link.
		polDo(t, g, &RouteReplace{Route: polRoute("0.0.0.0/0", "")})
		polRefused(t, g, via, "not on-link")
		polDo(t, g, &RouteReplace{Route: polRoute("198.51.100.0/24", "")})
		polDo(t, g, via)
		// The on-link route on another link does not count.
		polRefused(t, g, &RouteReplace{Route: Route{Interface: "eth1", Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("198.51.100.1")}}, "not on-link")
		polDo(t, g, &RouteRemove{Route: via.Route})
		polDo(t, g, &RouteRemove{Route: polRoute("198.51.100.0/24", "")})
		polRefused(t, g, via, "not on-link")
		polRefused(t, g, &RouteRemove{Route: via.Route}, "not held")
	})
	t.Run("route limit", func(t *testing.T) {
		g := polGuardHolding(t)
		max := g.Policy().MaxRoutes
		var routes []Route
		for i := range max {
			r := polRoute(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), "192.0.2.1")
			routes = append(routes, r)
			polDo(t, g, &RouteReplace{Route: r})
		}
		extra := &RouteReplace{Route: polRoute("172.16.0.0/16", "192.0.2.1")}
		polRefused(t, g, extra, fmt.Sprintf("route limit of %d", max))
		// Replacing a route already held is not a new one.
		polDo(t, g, &RouteReplace{Route: routes[3]})
		polDo(t, g, &RouteRemove{Route: routes[0]})
		polDo(t, g, extra)
		polRefused(t, g, &RouteReplace{Route: routes[0]}, "route limit")
	})
	t.Run("removing the address drops its routes", func(t *testing.T) {
		g := polGuardHolding(t)
		r := polRoute("0.0.0.0/0", "192.0.2.1")
		polDo(t, g, &RouteReplace{Route: r})
		polDo(t, g, &AddrRemove{Interface: polIface, Address: polAddr})
		polRefused(t, g, &RouteRemove{Route: r}, "not held")
		polRefused(t, g, &RouteReplace{Route: r}, "not on-link")
	})
	t.Run("refused operations are not recorded by the caller", func(t *testing.T) {
		g := polGuardHolding(t)
		polRefused(t, g, &RouteReplace{Route: polRoute("0.0.0.0/0", "198.51.100.1")}, "not on-link")
		polRefused(t, g, &RouteRemove{Route: polRoute("0.0.0.0/0", "198.51.100.1")}, "not held")
	})
}

func TestCheckDomainAndHostName(t *testing.T) {
	for _, ok := range []string{"a", "example.com", "example.com.", "a-b.c_d.e1", strings.Repeat("a", 63), strings.Repeat("abcdefg.", 31) + "abcd"} {
		if err := CheckDomainName(ok); err != nil {
			t.Errorf("CheckDomainName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a..b", ".a", "a b", "a;b", "a\nb", "a/b", "$(x)", "`x`", "a|b", "a&b", "a\x00b", "ä.com", "-a", "a-", strings.Repeat("a", 64), strings.Repeat("abcdefg.", 31) + "abcdef"} {
		if err := CheckDomainName(bad); err == nil {
			t.Errorf("CheckDomainName(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"node", "node-1", "node-1.example.com", strings.Repeat("a", 63)} {
		if err := CheckHostname(ok); err != nil {
			t.Errorf("CheckHostname(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a_b", "a.", "a b", "a;b", "$(x)", "a/b", strings.Repeat("a", 32) + "." + strings.Repeat("b", 32)} {
		if err := CheckHostname(bad); err == nil {
			t.Errorf("CheckHostname(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"eth0", "enp0s3", "a", "veth-x.y", strings.Repeat("a", 15)} {
		if err := CheckInterfaceName(ok); err != nil {
			t.Errorf("CheckInterfaceName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a:b", "a b", "a\tb", "é", strings.Repeat("a", 16)} {
		if err := CheckInterfaceName(bad); err == nil {
			t.Errorf("CheckInterfaceName(%q) accepted", bad)
		}
	}
}

// A stub's grant: a resolv.conf may point only at the stub.
func TestGuardOwnNameservers(t *testing.T) {
	stub := netip.MustParseAddr("127.0.0.53")
	g := NewGuard(Policy{Daemon: "dns", Ops: []Kind{OpResolvConf}, OwnNameservers: []netip.Addr{stub}}.WithDefaultBounds())
	if err := g.Check(&ResolvConf{Nameservers: []netip.Addr{stub}, Search: []string{"lan"}}); err != nil {
		t.Errorf("the stub's own address refused: %v", err)
	}
	for _, m := range []*ResolvConf{
		{},
		{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}},
		{Nameservers: []netip.Addr{stub, netip.MustParseAddr("8.8.8.8")}},
	} {
		polRefused(t, g, m, "nameserver")
	}
}
