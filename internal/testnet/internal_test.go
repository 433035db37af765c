package testnet

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClasslessRoutes(t *testing.T) {
	gw := netip.MustParseAddr("198.18.1.1")
	tests := []struct {
		name   string
		routes []StaticRoute
		want   []byte
	}{
		{"none", nil, nil},
		// RFC 3442's examples of destination encodings.
		{"/0", []StaticRoute{{netip.MustParsePrefix("0.0.0.0/0"), gw}}, []byte{0, 198, 18, 1, 1}},
		{"/8", []StaticRoute{{netip.MustParsePrefix("10.0.0.0/8"), gw}}, []byte{8, 10, 198, 18, 1, 1}},
		{"/9", []StaticRoute{{netip.MustParsePrefix("10.0.0.0/9"), gw}}, []byte{9, 10, 0, 198, 18, 1, 1}},
		{"/24", []StaticRoute{{netip.MustParsePrefix("10.17.0.0/24"), gw}}, []byte{24, 10, 17, 0, 198, 18, 1, 1}},
		{"/32", []StaticRoute{{netip.MustParsePrefix("10.27.129.1/32"), gw}}, []byte{32, 10, 27, 129, 1, 198, 18, 1, 1}},
		{"unmasked and two", []StaticRoute{
			{netip.MustParsePrefix("10.99.1.2/16"), gw},
			{netip.MustParsePrefix("192.0.2.128/25"), netip.MustParseAddr("198.18.1.4")},
		}, []byte{16, 10, 99, 198, 18, 1, 1, 25, 192, 0, 2, 128, 198, 18, 1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classlessRoutes(tt.routes); !slices.Equal(got, tt.want) {
				t.Errorf("classlessRoutes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaultRange(t *testing.T) {
	tests := []struct {
		subnet, start, end string
	}{
		{"198.18.5.0/24", "198.18.5.100", "198.18.5.199"},
		{"198.18.0.0/16", "198.18.0.100", "198.18.0.199"},
		{"198.18.5.0/28", "198.18.5.8", "198.18.5.14"},
		{"198.18.5.0/30", "198.18.5.2", "198.18.5.2"},
	}
	for _, tt := range tests {
		start, end := defaultRange(netip.MustParsePrefix(tt.subnet))
		if start.String() != tt.start || end.String() != tt.end {
			t.Errorf("defaultRange(%s) = %v-%v, want %s-%s", tt.subnet, start, end, tt.start, tt.end)
		}
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		in   ipRouteJSON
		want string
		err  bool
	}{
		{ipRouteJSON{Dst: "default", Gateway: "198.18.1.1", Dev: "veth-c", Protocol: "dhcp", PrefSrc: "198.18.1.50", Metric: 1024},
			"default via 198.18.1.1 dev veth-c proto dhcp src 198.18.1.50 metric 1024", false},
		{ipRouteJSON{Dst: "198.18.1.0/24", Dev: "veth-c", Protocol: "kernel", Scope: "link", PrefSrc: "198.18.1.50"},
			"198.18.1.0/24 dev veth-c proto kernel scope link src 198.18.1.50", false},
		{ipRouteJSON{Dst: "10.1.2.3", Gateway: "198.18.1.1", Dev: "veth-c", Protocol: "boot", Flags: []string{"onlink"}},
			"10.1.2.3/32 via 198.18.1.1 dev veth-c onlink", false},
		{ipRouteJSON{Dst: "bogus", Dev: "veth-c"}, "", true},
		{ipRouteJSON{Dst: "default", Gateway: "x", Dev: "veth-c"}, "", true},
	}
	for _, tt := range tests {
		r, err := parseRoute(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("parseRoute(%+v): error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && r.String() != tt.want {
			t.Errorf("parseRoute(%+v) = %q, want %q", tt.in, r, tt.want)
		}
	}
}

func TestParseScriptEnv(t *testing.T) {
	out := []byte("udhcpc: started\ntestnet-event=deconfig\ntestnet-env:ip=\n" +
		"testnet-event=bound\ntestnet-env:ip=198.18.1.50\ntestnet-env:dns=198.18.1.1 198.18.1.2\ntestnet-env:x=a=b\nudhcpc: lease obtained\n")
	env, ok := parseScriptEnv(out, "bound")
	want := map[string]string{"ip": "198.18.1.50", "dns": "198.18.1.1 198.18.1.2", "x": "a=b"}
	if !ok || len(env) != len(want) {
		t.Fatalf("parseScriptEnv = %v, %v; want %v", env, ok, want)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := parseScriptEnv(out, "renew"); ok {
		t.Error("parseScriptEnv found an event that never happened")
	}
}

func testNet() *Net {
	return &Net{
		ServerIf: "veth-s", ClientIf: "veth-c",
		ServerAddr: netip.MustParsePrefix("198.18.1.1/24"),
		ClientMAC:  net.HardwareAddr{2, 'd', 'c', 0, 0, 1},
	}
}

func TestWithDefaults(t *testing.T) {
	n := testNet()
	tests := []struct {
		name string
		o    ServerOptions
		err  string
	}{
		{"zero", ServerOptions{}, ""},
		{"defaults", n.DefaultOptions(), ""},
		{"range outside", ServerOptions{RangeStart: netip.MustParseAddr("198.18.2.10"), RangeEnd: netip.MustParseAddr("198.18.2.20")}, "range"},
		{"range reversed", ServerOptions{RangeStart: netip.MustParseAddr("198.18.1.20"), RangeEnd: netip.MustParseAddr("198.18.1.10")}, "range"},
		{"fractional lease", ServerOptions{LeaseTime: 1500 * time.Millisecond}, "whole"},
		{"router outside", ServerOptions{Router: netip.MustParseAddr("198.18.2.1")}, "router"},
		{"prefix", ServerOptions{PrefixLen: 31}, "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.o.withDefaults(n)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.LeaseTime != time.Hour || o.PrefixLen != 24 || !o.RangeStart.IsValid() {
					t.Errorf("defaults not filled in: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one about %q", err, tt.err)
			}
		})
	}
}

func TestDnsmasqArgs(t *testing.T) {
	n := testNet()
	o, err := n.DefaultOptions().withDefaults(n)
	if err != nil {
		t.Fatal(err)
	}
	o.Hostname = "client-1"
	o.Hosts = []Host{{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, Addr: netip.MustParseAddr("198.18.1.120")}}
	args, err := dnsmasqArgs(n, o, "/tmp/x/leases")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--port=0", "--dhcp-authoritative", "--interface=veth-s", "--pid-file=",
		"--dhcp-range=198.18.1.100,198.18.1.199,255.255.255.0,3600",
		"--dhcp-option=option:router,198.18.1.1",
		"--dhcp-option=option:dns-server,198.18.1.1",
		"--dhcp-host=02:00:00:00:00:09,198.18.1.120",
		"--dhcp-host=02:64:63:00:00:01,client-1",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("dnsmasq's arguments lack %q: %q", want, args)
		}
	}
	none, err := ServerOptions{}.withDefaults(n)
	if err != nil {
		t.Fatal(err)
	}
	args, err = dnsmasqArgs(n, none, "/tmp/x/leases")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--dhcp-option=3", "--dhcp-option=6"} {
		if !slices.Contains(args, want) {
			t.Errorf("without router and DNS, dnsmasq's arguments lack %q: %q", want, args)
		}
	}
	none.RapidCommit = true
	if args, err = dnsmasqArgs(n, none, "/tmp/x/leases"); err != nil || !slices.Contains(args, "--dhcp-rapid-commit") {
		t.Errorf("rapid commit: %v, arguments %q lack --dhcp-rapid-commit", err, args)
	}
	none.LeaseTime = time.Minute
	if _, err := dnsmasqArgs(n, none, "/tmp/x/leases"); err == nil || !strings.Contains(err.Error(), "2m") {
		t.Errorf("a one-minute lease for dnsmasq: error %v, want one about its 2m minimum", err)
	}
}

func TestKeaConfigRapidCommit(t *testing.T) {
	n := testNet()
	o, err := ServerOptions{RapidCommit: true}.withDefaults(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keaConfig(n, o, "/tmp/x", "/tmp/x/leases"); err == nil {
		t.Error("kea accepted rapid commit, which 2.2 does not have")
	}
}
