package dns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLocalRecordsAnswerAndAreNotForwarded(t *testing.T) {
	hosts, err := ReadHosts(writeFile(t, "127.0.0.1 localhost\n# a comment\n192.0.2.9 printer.lan printer # trailing\n2001:db8::9 printer.lan\n"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := NewLocal(hosts, []string{"lan. 300 IN MX 10 mail.lan.", `lan. 300 IN TXT "hello"`}, 0)
	if err != nil {
		t.Fatal(err)
	}
	up := startFake(t, func(q *mdns.Msg) [][]byte { return [][]byte{reply(q, nil)} }, nil)
	r := newTestResolver(t, up)
	r.SetLocal(local)
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string // the answer section, or "" for NODATA
	}{
		{"Printer.LAN.", mdns.TypeA, "printer.lan.\t0\tIN\tA\t192.0.2.9"},
		{"printer.lan.", mdns.TypeAAAA, "printer.lan.\t0\tIN\tAAAA\t2001:db8::9"},
		{"printer.", mdns.TypeA, "printer.\t0\tIN\tA\t192.0.2.9"},
		{"printer.lan.", mdns.TypeMX, ""},
		{"9.2.0.192.in-addr.arpa.", mdns.TypePTR, "9.2.0.192.in-addr.arpa.\t0\tIN\tPTR\tprinter.lan."},
		{"lan.", mdns.TypeMX, "lan.\t300\tIN\tMX\t10 mail.lan."},
		{"lan.", mdns.TypeA, ""},
	} {
		b, _ := query(t, tc.name, tc.qtype, 0)
		m := decode(t, r.Answer(context.Background(), nil, b, false))
		var got []string
		for _, rr := range m.Answer {
			got = append(got, rr.String())
		}
		// The owner name points at the question, which carries the
		// client's case.
		if m.Rcode != mdns.RcodeSuccess || !m.Authoritative || !strings.EqualFold(strings.Join(got, "\n"), tc.want) || m.Question[0].Name != tc.name {
			t.Errorf("%s %s: %v", tc.name, mdns.TypeToString[tc.qtype], m)
		}
	}
	if n := up.queries.Load(); n != 0 {
		t.Errorf("%d local questions went upstream", n)
	}
	// A name they do not hold goes upstream.
	b, _ := query(t, "elsewhere.test.", mdns.TypeA, 0)
	if m := decode(t, r.Answer(context.Background(), nil, b, false)); len(m.Answer) != 1 || up.queries.Load() != 1 {
		t.Errorf("elsewhere: %v, %d upstream queries", m, up.queries.Load())
	}
}

func TestReadHostsRefusesBadLines(t *testing.T) {
	for _, text := range []string{"notanaddress name\n", "192.0.2.1\n", "192.0.2.1 bad\"name\n", "192.0.2.1 " + strings.Repeat("a", 64) + "\n"} {
		_, err := ReadHosts(writeFile(t, text))
		if err == nil || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("%q: %v, want an error naming line 1", text, err)
		}
	}
	if _, err := NewLocal(nil, []string{"lan. 300 CH TXT \"x\""}, 0); err == nil {
		t.Error("a static record of class CH accepted")
	}
	if _, err := NewLocal(nil, []string{"not a record"}, 0); err == nil {
		t.Error("a static record that does not parse accepted")
	}
}

func TestReadResolvConf(t *testing.T) {
	rc, err := ReadResolvConf(writeFile(t, "# written by dyad-dhcp\ndomain example.lan\nsearch a.lan b.lan\nnameserver 192.0.2.53\nnameserver 2001:db8::53 ; comment\noptions edns0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rc.Nameservers, rc.Search); got != "[192.0.2.53 2001:db8::53] [a.lan b.lan]" {
		t.Errorf("read %s", got)
	}
	for _, text := range []string{"nameserver\n", "nameserver 0.0.0.0\n", "nameserver 224.0.0.1\n", "nameserver example.com\n", "frobnicate yes\n",
		// Found by FuzzDNSFiles under libFuzzer: miekg/dns's IsDomainName
		// took it; a route, and the actuator, would not.
		"search a\xd2\x93\x9e\x91\xd7\x9d\x05\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\xf7\x00\x00\x00\xd1s%rver\n",
		"search " + strings.Repeat("a", 64) + ".lan\n"} {
		if _, err := ReadResolvConf(writeFile(t, text)); err == nil || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("%q: %v, want an error naming line 1", text, err)
		}
	}
}

func TestSetRoutesKeepsHealthAndRefusesBadRoutes(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:53")
	b := netip.MustParseAddrPort("192.0.2.2:53")
	f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{a}}}})
	f.routes[0].upstreams[0].failures = 2
	if err := f.SetRoutes([]Route{{".", []netip.AddrPort{b, a}}}); err != nil {
		t.Fatal(err)
	}
	if got := f.routes[0].upstreams; len(got) != 2 || got[0].addr != b || got[1].failures != 2 {
		t.Errorf("routes after the change: %+v", got)
	}
	if err := f.SetRoutes([]Route{{".", nil}}); err == nil || len(f.routes[0].upstreams) != 2 {
		t.Errorf("a route without upstream: %v, and the routes changed", err)
	}
}
