package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/dyad-project/dyad/privsep"
)

// ltLease runs InterpretLease on a normal ACK changed by mods, after a trip
// through the wire format.
func ltLease(t *testing.T, mods ...dhcpv4.Modifier) (privsep.Lease, []string, error) {
	t.Helper()
	all := append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(engMAC),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
	}, engLeaseMods()...)
	m, err := dhcpv4.New(append(all, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = dhcpv4.OpcodeBootReply
	return InterpretLease(engIface, engWire(t, m), engT0)
}

func TestInterpretLeaseTimers(t *testing.T) {
	t1 := func(v uint32) dhcpv4.Modifier { return engOpt(optRenewalTime, engU32(v)) }
	t2 := func(v uint32) dhcpv4.Modifier { return engOpt(optRebindingTime, engU32(v)) }
	lease := func(v uint32) dhcpv4.Modifier { return engOpt(optLeaseTime, engU32(v)) }
	tests := []struct {
		name             string
		mods             []dhcpv4.Modifier
		lease, want1, w2 uint32
		warn             bool
	}{
		{"defaults are 0.5 and 0.875", nil, 3600, 1800, 3150, false},
		{"sane T1 and T2", []dhcpv4.Modifier{t1(600), t2(1200)}, 3600, 600, 1200, false},
		{"T1 == T2", []dhcpv4.Modifier{t1(1200), t2(1200)}, 3600, 1800, 3150, true},
		{"T1 > T2", []dhcpv4.Modifier{t1(2000), t2(1000)}, 3600, 1800, 3150, true},
		{"T2 == lease", []dhcpv4.Modifier{t1(1000), t2(3600)}, 3600, 1800, 3150, true},
		{"T2 > lease", []dhcpv4.Modifier{t1(1000), t2(4000)}, 3600, 1800, 3150, true},
		{"T1 = 0", []dhcpv4.Modifier{t1(0), t2(1200)}, 3600, 1800, 3150, true},
		{"only T1, sane", []dhcpv4.Modifier{t1(600)}, 3600, 600, 3150, false},
		{"only T1, at the default T2", []dhcpv4.Modifier{t1(3150)}, 3600, 1800, 3150, true},
		{"only T2, sane", []dhcpv4.Modifier{t2(3000)}, 3600, 1800, 3000, false},
		{"only T2, at the default T1", []dhcpv4.Modifier{t2(1800)}, 3600, 1800, 3150, true},
		{"T1 of 2 bytes", []dhcpv4.Modifier{engOpt(optRenewalTime, []byte{1, 0}), t2(3000)}, 3600, 1800, 3000, false},
		{"both garbage", []dhcpv4.Modifier{engOpt(optRenewalTime, []byte{1}), engOpt(optRebindingTime, []byte{1, 2, 3, 4, 5})}, 3600, 1800, 3150, true},
		{"longer lease", []dhcpv4.Modifier{lease(86400)}, 86400, 43200, 75600, false},
		{"infinite lease", []dhcpv4.Modifier{lease(infiniteLft)}, infiniteLft, infiniteLft, infiniteLft, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, warn, err := ltLease(t, tc.mods...)
			if err != nil {
				t.Fatal(err)
			}
			if l.LeaseTime != tc.lease || l.RenewTime != tc.want1 || l.RebindTime != tc.w2 {
				t.Errorf("lease/T1/T2 = %d/%d/%d, want %d/%d/%d", l.LeaseTime, l.RenewTime, l.RebindTime, tc.lease, tc.want1, tc.w2)
			}
			if got := len(warn) > 0; got != tc.warn {
				t.Errorf("warnings %q, want some: %v", warn, tc.warn)
			}
		})
	}
}

// RFC 2131 4.4.5: T1 < T2 < lease, also for short leases.
func TestInterpretLeaseShortLeaseTimersOrdered(t *testing.T) {
	for lt := uint32(2); lt <= 64; lt++ {
		l, _, err := ltLease(t, engOpt(optLeaseTime, engU32(lt)))
		if err != nil {
			t.Fatal(err)
		}
		if !(l.RenewTime <= l.RebindTime && l.RebindTime <= l.LeaseTime) {
			t.Errorf("lease %d s: T1 %d, T2 %d are not ordered", lt, l.RenewTime, l.RebindTime)
		}
	}
}

func TestInterpretLeaseRefusals(t *testing.T) {
	yi := func(s string) dhcpv4.Modifier { return dhcpv4.WithYourIP(net.ParseIP(s)) }
	mask := func(b ...byte) dhcpv4.Modifier { return engOpt(optSubnetMask, b) }
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		want string
	}{
		{"lease time 0", []dhcpv4.Modifier{engOpt(optLeaseTime, engU32(0))}, "lease time 0"},
		{"lease time missing", []dhcpv4.Modifier{engNoOpt(optLeaseTime)}, "lease time"},
		{"lease time 5 bytes", []dhcpv4.Modifier{engOpt(optLeaseTime, []byte{0, 0, 0, 1, 0})}, "lease time"},
		{"no server identifier", []dhcpv4.Modifier{engNoOpt(optServerID)}, "server identifier"},
		{"server identifier of 3 bytes", []dhcpv4.Modifier{engOpt(optServerID, []byte{192, 0, 2})}, "server identifier"},
		{"server identifier multicast", []dhcpv4.Modifier{engOpt(optServerID, engAddrs("224.0.0.1"))}, "server identifier"},
		{"server identifier loopback", []dhcpv4.Modifier{engOpt(optServerID, engAddrs("127.0.0.1"))}, "server identifier"},
		{"mask not contiguous", []dhcpv4.Modifier{mask(255, 255, 0, 255)}, "not contiguous"},
		{"mask too short", []dhcpv4.Modifier{mask(255, 255)}, "subnet mask"},
		{"mask /7", []dhcpv4.Modifier{mask(254, 0, 0, 0)}, "below 8"},
		{"yiaddr 0.0.0.0", []dhcpv4.Modifier{yi("0.0.0.0")}, "offered address"},
		{"yiaddr 127.0.0.1", []dhcpv4.Modifier{yi("127.0.0.1"), mask(255, 0, 0, 0)}, "offered address"},
		{"yiaddr 224.0.0.5", []dhcpv4.Modifier{yi("224.0.0.5")}, "offered address"},
		{"yiaddr 0.1.2.3", []dhcpv4.Modifier{yi("0.1.2.3"), mask(255, 0, 0, 0)}, "offered address"},
		{"yiaddr 250.1.2.3", []dhcpv4.Modifier{yi("250.1.2.3")}, "offered address"},
		{"yiaddr 169.254.0.9", []dhcpv4.Modifier{yi("169.254.0.9"), mask(255, 255, 0, 0)}, "link-local"},
		{"yiaddr network of a /24", []dhcpv4.Modifier{yi("192.0.2.0")}, "address of its subnet"},
		{"yiaddr broadcast of a /24", []dhcpv4.Modifier{yi("192.0.2.255")}, "address of its subnet"},
		{"yiaddr network of a /30", []dhcpv4.Modifier{yi("192.0.2.8"), mask(255, 255, 255, 252)}, "address of its subnet"},
		{"yiaddr broadcast of a /30", []dhcpv4.Modifier{yi("192.0.2.11"), mask(255, 255, 255, 252)}, "address of its subnet"},
		{"yiaddr broadcast of a classful /16", []dhcpv4.Modifier{yi("172.16.255.255"), engNoOpt(optSubnetMask)}, "address of its subnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ltLease(t, tc.mods...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestInterpretLeaseAddress(t *testing.T) {
	tests := []struct {
		yi   string
		mask []byte // nil: no option 1
		want string
	}{
		{"192.0.2.10", []byte{255, 255, 255, 0}, "192.0.2.10/24"},
		{"192.0.2.10", []byte{255, 255, 255, 254}, "192.0.2.10/31"},
		{"192.0.2.11", []byte{255, 255, 255, 254}, "192.0.2.11/31"},
		{"192.0.2.10", []byte{255, 255, 255, 255}, "192.0.2.10/32"},
		{"10.1.2.3", nil, "10.1.2.3/8"},
		{"172.16.5.4", nil, "172.16.5.4/16"},
		{"192.168.1.7", nil, "192.168.1.7/24"},
		{"223.1.1.1", nil, "223.1.1.1/24"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			mods := []dhcpv4.Modifier{dhcpv4.WithYourIP(net.ParseIP(tc.yi)), engNoOpt(optRouter)}
			if tc.mask == nil {
				mods = append(mods, engNoOpt(optSubnetMask))
			} else {
				mods = append(mods, engOpt(optSubnetMask, tc.mask))
			}
			l, _, err := ltLease(t, mods...)
			if err != nil {
				t.Fatal(err)
			}
			if l.Address != netip.MustParsePrefix(tc.want) {
				t.Errorf("address %s, want %s", l.Address, tc.want)
			}
		})
	}
}

func TestInterpretLeaseAllFields(t *testing.T) {
	search := []byte{3, 'e', 'n', 'g', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 3, 'o', 'p', 's', 0xc0, 4}
	l, warn, err := ltLease(t,
		engOpt(optRouter, engAddrs("192.0.2.1", "192.0.2.2")),
		engOpt(optDNS, engAddrs("192.0.2.53", "198.51.100.53")),
		engOpt(optNTP, engAddrs("192.0.2.123")),
		engOpt(optDomainName, []byte("example.com\x00")),
		engOpt(optDomainSearch, search),
		engOpt(optHostname, []byte("node-1")),
		engOpt(optMTU, engU16(9000)),
		engOpt(optClasslessRoutes, []byte{16, 172, 16, 192, 0, 2, 2, 0, 192, 0, 2, 1}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings %q for a clean lease", warn)
	}
	want := privsep.Lease{
		Interface:  engIface,
		Address:    engPfx,
		Server:     engServer,
		Routers:    []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")},
		Routes:     []privsep.Route{{Destination: netip.MustParsePrefix("172.16.0.0/16"), Gateway: netip.MustParseAddr("192.0.2.2")}, {Destination: engDefaultRoute, Gateway: netip.MustParseAddr("192.0.2.1")}},
		DNS:        []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("198.51.100.53")},
		NTP:        []netip.Addr{netip.MustParseAddr("192.0.2.123")},
		Domain:     "example.com",
		Search:     []string{"eng.example.com", "ops.example.com"},
		Hostname:   "node-1",
		MTU:        9000,
		LeaseTime:  3600,
		RenewTime:  1800,
		RebindTime: 3150,
		Acquired:   engT0.Unix(),
	}
	if got, w := fmt.Sprintf("%+v", l), fmt.Sprintf("%+v", want); got != w {
		t.Errorf("lease\n got %s\nwant %s", got, w)
	}
	if err := engGuard().Check(&privsep.LeaseSave{Lease: l}); err != nil {
		t.Errorf("the actuator would refuse the lease: %v", err)
	}
}

// A bad optional value costs that value only, with a warning that says so.
func TestInterpretLeaseWarnings(t *testing.T) {
	tests := []struct {
		name string
		mod  dhcpv4.Modifier
		want string
	}{
		{"router off subnet", engOpt(optRouter, engAddrs("198.51.100.1")), "router"},
		{"DNS multicast", engOpt(optDNS, engAddrs("224.0.0.1")), "DNS server"},
		{"NTP broadcast", engOpt(optNTP, engAddrs("255.255.255.255")), "NTP server"},
		{"NTP odd length", engOpt(optNTP, []byte{1, 2, 3}), "NTP server"},
		{"MTU absurd", engOpt(optMTU, engU16(65535)), "MTU"},
		{"domain bad", engOpt(optDomainName, []byte("a;b")), "domain name"},
		{"search bad", engOpt(optDomainSearch, []byte{3, 'a', ';', 'b', 0}), "search domain"},
		{"search garbage", engOpt(optDomainSearch, []byte{5, 'a'}), "search list"},
		{"host name bad", engOpt(optHostname, []byte("a b")), "host name"},
		{"classless garbage", engOpt(optClasslessRoutes, []byte{33, 1, 2, 3, 4, 5, 6, 7, 8, 9}), "classless"},
		{"classless off-link", engOpt(optClasslessRoutes, []byte{8, 10, 203, 0, 113, 1}), "not on-link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, warn, err := ltLease(t, tc.mod)
			if err != nil {
				t.Fatalf("a bad optional value refused the lease: %v", err)
			}
			if l.Address != engPfx {
				t.Errorf("address %s", l.Address)
			}
			if !slices.ContainsFunc(warn, func(w string) bool { return strings.Contains(w, tc.want) }) {
				t.Errorf("warnings %q, want one mentioning %q", warn, tc.want)
			}
		})
	}
}

func TestInterpretLeaseLimits(t *testing.T) {
	var routes []byte
	for i := range 70 {
		routes = append(routes, 32, 10, 0, 0, byte(i), 192, 0, 2, 1)
	}
	var search []byte
	for i := range 10 {
		search = append(search, 2, 'd', byte('0'+i), 3, 'c', 'o', 'm', 0)
	}
	var servers []string
	for i := range 12 {
		servers = append(servers, fmt.Sprintf("192.0.2.%d", 100+i))
	}
	l, warn, err := ltLease(t,
		engOpt(optClasslessRoutes, routes), // 630 bytes: split and concatenated (RFC 3396)
		engOpt(optDomainSearch, search),
		engOpt(optNTP, engAddrs(servers...)),
		engOpt(optDNS, engAddrs(servers...)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Routes) != maxRoutes {
		t.Errorf("%d routes kept, want %d", len(l.Routes), maxRoutes)
	}
	if len(l.Routes) > 0 && l.Routes[0].Destination != netip.MustParsePrefix("10.0.0.0/32") {
		t.Errorf("first route %+v", l.Routes[0])
	}
	if len(l.Search) != maxSearch || l.Search[0] != "d0.com" {
		t.Errorf("search %q, want the first %d", l.Search, maxSearch)
	}
	if len(l.NTP) != maxServers || len(l.DNS) != maxServers {
		t.Errorf("%d NTP and %d DNS servers, want %d", len(l.NTP), len(l.DNS), maxServers)
	}
	if len(warn) == 0 {
		t.Error("no warning for what was cut")
	}
	if err := engGuard().Check(&privsep.LeaseSave{Lease: l}); err != nil {
		t.Errorf("the actuator would refuse the lease: %v", err)
	}
}
