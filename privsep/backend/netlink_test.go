package backend

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
)

// newNetns moves the test into a new network namespace and returns a
// Netlink there.
func newNetns(t *testing.T) *Netlink {
	t.Helper()
	enterNamespaces(t, unix.CLONE_NEWNET)
	n, err := NewNetlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// addVeth creates a veth pair in the test's namespace and returns the
// first end. A veth pair works on every kernel the tests meet (some have
// no dummy driver); the package-level netlink functions act in the calling
// thread's namespace, that is the test's.
func addVeth(t *testing.T, name, peer string) netlink.Link {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// upVeth creates a veth pair with both ends up, so that it has a carrier
// and the kernel accepts routes through it.
func upVeth(t *testing.T, n *Netlink, name, peer string) netlink.Link {
	t.Helper()
	l := addVeth(t, name, peer)
	for _, name := range []string{name, peer} {
		if err := n.LinkUp(name); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestLinkUpMTU(t *testing.T) {
	n := newNetns(t)
	addVeth(t, "dyad0", "dyad0p")

	if err := n.LinkUp("dyad0"); err != nil {
		t.Fatal(err)
	}
	if err := n.SetMTU("dyad0", 1400); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName("dyad0")
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().RawFlags&unix.IFF_UP == 0 {
		t.Errorf("dyad0 is not up after LinkUp")
	}
	if got := l.Attrs().MTU; got != 1400 {
		t.Errorf("MTU = %d, want 1400", got)
	}

	for _, err := range []error{
		n.LinkUp("nosuch0"),
		n.SetMTU("nosuch0", 1400),
		n.SetMTU("dyad0", 10), // below the minimum of 68
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "backend: ") {
			t.Errorf("got error %v, want one from backend", err)
		}
	}
}

func TestReplaceAddr(t *testing.T) {
	n := newNetns(t)
	upVeth(t, n, "dyad0", "dyad0p")
	p := netip.MustParsePrefix("192.0.2.10/24")

	if err := n.ReplaceAddr("dyad0", p, 120, 60); err != nil {
		t.Fatal(err)
	}
	a := onlyAddr(t, n, "dyad0")
	if a.Prefix != p {
		t.Errorf("address %v, want %v", a.Prefix, p)
	}
	if want := netip.MustParseAddr("192.0.2.255"); a.Broadcast != want {
		t.Errorf("broadcast %v, want %v", a.Broadcast, want)
	}
	checkLifetimes(t, a, 120, 60)

	// Refresh the lease, watching the address events: the kernel must
	// update the address in place, not delete and add it again.
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribe(updates, done); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(done)
		for range updates { // let the subscription goroutine end
		}
	}()
	if err := n.ReplaceAddr("dyad0", p, 300, 200); err != nil {
		t.Fatal(err)
	}
	// The kernel sends the notification before it acknowledges the
	// request, so it is already queued.
	u := nextAddrUpdate(t, updates)
	if !u.NewAddr || u.LinkAddress.String() != p.String() {
		t.Fatalf("first event after refresh: new %v %v, want RTM_NEWADDR %v (the address flapped)", u.NewAddr, u.LinkAddress.String(), p)
	}
	if u.ValidLft < 295 || u.ValidLft > 300 {
		t.Errorf("refresh event valid lifetime %d, want about 300", u.ValidLft)
	}
	checkLifetimes(t, onlyAddr(t, n, "dyad0"), 300, 200)

	if err := n.RemoveAddr("dyad0", p); err != nil {
		t.Fatal(err)
	}
	// The subscription does see deletions: the check above can fail.
	if u := nextAddrUpdate(t, updates); u.NewAddr {
		t.Errorf("event after RemoveAddr: RTM_NEWADDR, want RTM_DELADDR")
	}
	if as, err := n.Addrs("dyad0"); err != nil || len(as) != 0 {
		t.Errorf("Addrs after RemoveAddr = %v, %v; want none", as, err)
	}
	if err := n.RemoveAddr("dyad0", p); err != nil {
		t.Errorf("RemoveAddr of an absent address: %v", err)
	}
}

func TestReplaceAddrBroadcast(t *testing.T) {
	n := newNetns(t)
	upVeth(t, n, "dyad0", "dyad0p")
	tests := []struct {
		prefix    string
		broadcast string // "" for none
	}{
		{"10.1.2.3/8", "10.255.255.255"},
		{"172.16.5.6/20", "172.16.15.255"},
		{"192.0.2.9/30", "192.0.2.11"},
		{"198.51.100.0/31", ""},
		{"203.0.113.7/32", ""},
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.prefix)
		if err := n.ReplaceAddr("dyad0", p, Forever, Forever); err != nil {
			t.Fatal(err)
		}
		a := onlyAddr(t, n, "dyad0")
		var want netip.Addr
		if tt.broadcast != "" {
			want = netip.MustParseAddr(tt.broadcast)
		}
		if a.Prefix != p || a.Broadcast != want {
			t.Errorf("%v: got %v brd %v, want brd %v", p, a.Prefix, a.Broadcast, want)
		}
		if a.ValidLifetime != Forever || a.PreferredLifetime != Forever {
			t.Errorf("%v: lifetimes %d/%d, want forever", p, a.ValidLifetime, a.PreferredLifetime)
		}
		if err := n.RemoveAddr("dyad0", p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplaceAddrErrors(t *testing.T) {
	n := newNetns(t)
	upVeth(t, n, "dyad0", "dyad0p")
	tests := []struct {
		name             string
		link             string
		prefix           netip.Prefix
		valid, preferred uint32
	}{
		{"zero valid lifetime", "dyad0", netip.MustParsePrefix("192.0.2.10/24"), 0, 0},
		{"preferred beyond valid", "dyad0", netip.MustParsePrefix("192.0.2.10/24"), 60, 120},
		{"IPv6", "dyad0", netip.MustParsePrefix("2001:db8::1/64"), 60, 60},
		{"zero prefix", "dyad0", netip.Prefix{}, 60, 60},
		{"no such link", "nosuch0", netip.MustParsePrefix("192.0.2.10/24"), 60, 60},
	}
	for _, tt := range tests {
		if err := n.ReplaceAddr(tt.link, tt.prefix, tt.valid, tt.preferred); err == nil {
			t.Errorf("%s: ReplaceAddr succeeded, want an error", tt.name)
		}
	}
	if as, err := n.Addrs("dyad0"); err != nil || len(as) != 0 {
		t.Errorf("Addrs = %v, %v; want none", as, err)
	}
}

// TestAddrExpires checks that the lifetimes reach the kernel: it removes
// the address by itself when the valid lifetime ends.
func TestAddrExpires(t *testing.T) {
	n := newNetns(t)
	upVeth(t, n, "dyad0", "dyad0p")
	if err := n.ReplaceAddr("dyad0", netip.MustParsePrefix("192.0.2.10/24"), 1, 1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		as, err := n.Addrs("dyad0")
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("address still there 10 s after its 1 s lifetime: %+v", as)
		}
	}
}

func onlyAddr(t *testing.T, n *Netlink, name string) AddrInfo {
	t.Helper()
	as, err := n.Addrs(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("addresses on %s: %+v, want one", name, as)
	}
	return as[0]
}

// checkLifetimes allows a few seconds to have passed since they were set.
func checkLifetimes(t *testing.T, a AddrInfo, valid, preferred uint32) {
	t.Helper()
	if a.ValidLifetime > valid || a.ValidLifetime+5 < valid {
		t.Errorf("valid lifetime %d, want about %d", a.ValidLifetime, valid)
	}
	if a.PreferredLifetime > preferred || a.PreferredLifetime+5 < preferred {
		t.Errorf("preferred lifetime %d, want about %d", a.PreferredLifetime, preferred)
	}
}

func nextAddrUpdate(t *testing.T, c <-chan netlink.AddrUpdate) netlink.AddrUpdate {
	t.Helper()
	select {
	case u, ok := <-c:
		if !ok {
			t.Fatal("address subscription ended")
		}
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no address event within 5 s")
	}
	panic("unreachable")
}

func TestRoutes(t *testing.T) {
	n := newNetns(t)
	link := upVeth(t, n, "dyad0", "dyad0p")
	if err := n.ReplaceAddr("dyad0", netip.MustParsePrefix("192.0.2.10/24"), Forever, Forever); err != nil {
		t.Fatal(err)
	}
	routes := []privsep.Route{
		{ // default route via an on-link gateway
			Interface:   "dyad0",
			Destination: netip.MustParsePrefix("0.0.0.0/0"),
			Gateway:     netip.MustParseAddr("192.0.2.1"),
			Metric:      100,
		},
		{ // classless static route (RFC 3442) with a preferred source
			Interface:   "dyad0",
			Destination: netip.MustParsePrefix("198.51.100.0/24"),
			Gateway:     netip.MustParseAddr("192.0.2.254"),
			Source:      netip.MustParseAddr("192.0.2.10"),
			Metric:      100,
		},
		{ // on-link destination: no gateway
			Interface:   "dyad0",
			Destination: netip.MustParsePrefix("203.0.113.0/24"),
			Metric:      50,
		},
		{ // host route to a gateway, metric 0
			Interface:   "dyad0",
			Destination: netip.MustParsePrefix("203.0.113.77/32"),
		},
	}
	for range 2 { // replacing again must not duplicate
		for _, r := range routes {
			if err := n.ReplaceRoute(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A route someone else installed, with the destination and gateway of
	// one of ours: never listed nor removed.
	static := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4(198, 51, 100, 0).To4(), Mask: net.CIDRMask(24, 32)},
		Gw:        net.IPv4(192, 0, 2, 254).To4(),
		Protocol:  unix.RTPROT_STATIC,
		Priority:  7,
	}
	if err := netlink.RouteAdd(static); err != nil {
		t.Fatal(err)
	}

	got, err := n.Routes("dyad0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sortRoutes(got), sortRoutes(slices.Clone(routes))) {
		t.Errorf("Routes:\n got %+v\nwant %+v", got, routes)
	}

	// What the kernel has, seen through the library's own list.
	kernel, err := netlink.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		k, ok := findRoute(kernel, r.Destination, protoDHCP)
		if !ok {
			t.Errorf("%v: not in the kernel's table", r.Destination)
			continue
		}
		wantScope := netlink.SCOPE_UNIVERSE
		if !r.Gateway.IsValid() {
			wantScope = netlink.SCOPE_LINK
		}
		if k.Priority != int(r.Metric) || k.Scope != wantScope || k.Table != unix.RT_TABLE_MAIN || k.Type != unix.RTN_UNICAST {
			t.Errorf("%v: kernel has metric %d scope %v table %d type %d; want metric %d scope %v main unicast",
				r.Destination, k.Priority, k.Scope, k.Table, k.Type, r.Metric, wantScope)
		}
	}
	if _, ok := findRoute(kernel, netip.MustParsePrefix("192.0.2.0/24"), unix.RTPROT_KERNEL); !ok {
		t.Errorf("the kernel's prefix route is missing: %v", kernel)
	}

	for _, r := range routes {
		if err := n.RemoveRoute(r); err != nil {
			t.Fatal(err)
		}
		if err := n.RemoveRoute(r); err != nil {
			t.Errorf("RemoveRoute of an absent route: %v", err)
		}
	}
	// Metric 0 matches any metric in the kernel: only the protocol keeps
	// this one from removing the static route.
	if err := n.RemoveRoute(privsep.Route{Interface: "dyad0", Destination: routes[1].Destination, Gateway: routes[1].Gateway}); err != nil {
		t.Errorf("RemoveRoute of an absent route: %v", err)
	}
	if got, err := n.Routes("dyad0"); err != nil || len(got) != 0 {
		t.Errorf("Routes after removal = %v, %v; want none", got, err)
	}
	kernel, err = netlink.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findRoute(kernel, netip.MustParsePrefix("198.51.100.0/24"), unix.RTPROT_STATIC); !ok {
		t.Errorf("RemoveRoute removed a route it had not installed")
	}
}

func TestRouteErrors(t *testing.T) {
	n := newNetns(t)
	upVeth(t, n, "dyad0", "dyad0p")
	if err := n.ReplaceAddr("dyad0", netip.MustParsePrefix("192.0.2.10/24"), Forever, Forever); err != nil {
		t.Fatal(err)
	}
	r := func(link, dst, gw string) privsep.Route {
		r := privsep.Route{Interface: link, Destination: netip.MustParsePrefix(dst)}
		if gw != "" {
			r.Gateway = netip.MustParseAddr(gw)
		}
		return r
	}
	tests := []struct {
		name  string
		route privsep.Route
	}{
		{"host bits set", r("dyad0", "198.51.100.1/24", "192.0.2.1")},
		{"IPv6 destination", r("dyad0", "2001:db8::/32", "")},
		{"IPv6 gateway", r("dyad0", "0.0.0.0/0", "fe80::1")},
		{"gateway not on-link", r("dyad0", "0.0.0.0/0", "10.0.0.1")},
		{"no such link", r("nosuch0", "0.0.0.0/0", "192.0.2.1")},
		{"zero destination", privsep.Route{Interface: "dyad0"}},
	}
	for _, tt := range tests {
		if err := n.ReplaceRoute(tt.route); err == nil {
			t.Errorf("%s: ReplaceRoute succeeded, want an error", tt.name)
		}
	}
	if got, err := n.Routes("dyad0"); err != nil || len(got) != 0 {
		t.Errorf("Routes = %v, %v; want none", got, err)
	}
}

func sortRoutes(rs []privsep.Route) []privsep.Route {
	slices.SortFunc(rs, func(a, b privsep.Route) int {
		return cmp.Compare(a.Destination.String(), b.Destination.String())
	})
	return rs
}

func findRoute(rs []netlink.Route, dst netip.Prefix, proto netlink.RouteProtocol) (netlink.Route, bool) {
	for _, r := range rs {
		d := "0.0.0.0/0"
		if r.Dst != nil {
			d = r.Dst.String()
		}
		if d == dst.String() && r.Protocol == proto {
			return r, true
		}
	}
	return netlink.Route{}, false
}
