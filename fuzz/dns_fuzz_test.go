package fuzz

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/dyad-project/dyad/daemons/dns"
	"github.com/dyad-project/dyad/privsep"
)

// dnsPack packs m, compressed, as a server would.
func dnsPack(m *mdns.Msg) []byte {
	m.Id, m.Compress = 0, true // SetQuestion's ID is random
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// dnsAnswerSeeds are upstreams' answers: a CNAME chain, an NXDOMAIN and a
// NODATA with their SOA, a large TXT set, each with an OPT record.
func dnsAnswerSeeds() [][]byte {
	mk := func(name string, qtype uint16, rcode int, rrs ...string) []byte {
		q := new(mdns.Msg)
		q.SetQuestion(name, qtype)
		m := new(mdns.Msg)
		m.SetRcode(q, rcode)
		for _, s := range rrs {
			rr, err := mdns.NewRR(s)
			if err != nil {
				panic(err)
			}
			if rr.Header().Rrtype == mdns.TypeSOA {
				m.Ns = append(m.Ns, rr)
			} else {
				m.Answer = append(m.Answer, rr)
			}
		}
		m.SetEdns0(1232, false)
		return dnsPack(m)
	}
	soa := "example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60"
	var txt []string
	for range 12 {
		txt = append(txt, `big.example.test. 300 IN TXT "`+string(bytes.Repeat([]byte("x"), 100))+`"`)
	}
	return [][]byte{
		mk("www.example.test.", mdns.TypeA, mdns.RcodeSuccess, "www.example.test. 300 IN CNAME web.example.test.", "web.example.test. 60 IN A 192.0.2.7"),
		mk("nx.example.test.", mdns.TypeAAAA, mdns.RcodeNameError, soa),
		mk("www.example.test.", mdns.TypeMX, mdns.RcodeSuccess, soa),
		mk("big.example.test.", mdns.TypeTXT, mdns.RcodeSuccess, txt...),
	}
}

// dnsQuerySeeds are clients' queries: plain, with EDNS and DO, and NOTIFY.
func dnsQuerySeeds() [][]byte {
	mk := func(f func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg)
		m.SetQuestion("WwW.Example.Test.", mdns.TypeA)
		f(m)
		return dnsPack(m)
	}
	return [][]byte{
		mk(func(*mdns.Msg) {}),
		mk(func(m *mdns.Msg) { m.SetEdns0(4096, true) }),
		mk(func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }),
	}
}

func TestDNSSeeds(t *testing.T) {
	var cache [][]any
	for _, a := range dnsAnswerSeeds() {
		cache = append(cache, []any{a, uint16(0x0100), true})
	}
	if err := syncSeeds("FuzzDNSCache", cache); err != nil {
		t.Fatal(err)
	}
	if err := syncSeeds("FuzzDNSQuery", oneArg(dnsQuerySeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzDNSQuery covers dyad-dns's reading of a client's query, the first
// thing it does with bytes from any container of the node, and its
// answer to it when no upstream answers (SERVFAIL, or the error answer of
// a refusal). The invariants: no panic; an accepted query has one
// question of class IN whose bytes lie in the query, offers at least 512
// bytes, and its question parses back the same; a refusal names an RCODE
// and a reason; an answer decodes, carries the query's ID and fits in 512
// bytes.
func FuzzDNSQuery(f *testing.F) {
	for _, s := range dnsQuerySeeds() {
		f.Add(s)
	}
	// No route: every miss fails at once, without a packet.
	fwd, err := dns.NewForwarder(dns.ForwarderConfig{})
	if err != nil {
		f.Fatal(err)
	}
	r := dns.NewResolver(dns.NewCache(dns.CacheConfig{}), fwd, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if out := r.Answer(context.Background(), nil, msg, false); len(out) > 0 {
			m := new(mdns.Msg)
			if err := m.Unpack(out); err != nil || len(out) > 512 || !m.Response || len(msg) < 2 || !bytes.Equal(out[:2], msg[:2]) {
				t.Fatalf("answered %x to %x (%v)", out, msg, err)
			}
		}
		q, err := dns.ParseQuery(msg)
		var r *dns.Refusal
		if errors.As(err, &r) {
			if r.Rcode == 0 || r.Reason == "" {
				t.Fatalf("a refusal without an RCODE or a reason: %+v", r)
			}
			return
		}
		if err != nil {
			return
		}
		if q.Class != 1 || q.UDPSize < 512 || q.End > len(msg) || !bytes.Equal(msg[12:12+len(q.Name)], q.Name) {
			t.Fatalf("accepted as %+v", q)
		}
		back, err := dns.ParseQuestion(msg)
		if err != nil || !bytes.Equal(back.Name, q.Name) || back.Type != q.Type || back.End != q.End {
			t.Fatalf("its question parses back as %+v, %v", back, err)
		}
	})
}

// FuzzDNSCache covers the cache's keeping of an upstream's answer (every
// byte untrusted: the upstream may lie, or someone may spoof it) and its
// serving of it to a client who asks the same question. The inputs: the
// answer, the flags of the client's query and whether it has EDNS. The
// invariants: no panic; what the cache serves is a well-formed message no
// longer than the client may receive, with the client's ID and question
// bytes, TTLs within the cache's ceiling, and every record stored unless
// it is cut and says so (TC).
func FuzzDNSCache(f *testing.F) {
	for _, s := range dnsAnswerSeeds() {
		f.Add(s, uint16(0x0100), true)
	}
	cfg := dns.CacheConfig{MinTTL: 10 * time.Second, MaxTTL: time.Hour, MaxNegativeTTL: 10 * time.Minute, ServeStale: time.Hour, PrefetchHits: 1}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, answer []byte, flags uint16, edns bool) {
		c := dns.NewCache(cfg)
		if err := c.Store(answer, now); err != nil {
			return
		}
		question, err := dns.ParseQuestion(answer)
		if err != nil {
			t.Fatalf("stored an answer whose question does not parse: %v", err)
		}
		// The client's query: the same question, its own ID and flags
		// (opcode QUERY, not a response).
		query := binary.BigEndian.AppendUint16(nil, 0x4242)
		query = binary.BigEndian.AppendUint16(query, flags&^0xf800)
		var additional byte
		if edns {
			additional = 1
		}
		query = append(query, 0, 1, 0, 0, 0, 0, 0, additional)
		query = append(query, answer[12:question.End]...)
		if edns {
			query = append(query, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0)
		}
		q, err := dns.ParseQuery(query)
		if err != nil {
			return // not class IN
		}
		// Records are counted where miekg/dns decodes the answer: it
		// refuses some record data the cache carries as opaque bytes.
		stored, decodes := records(t, answer, false)
		for _, tc := range []struct {
			at    time.Duration
			stale bool
			limit int
		}{{0, false, int(q.UDPSize)}, {30 * time.Minute, true, dns.MaxMessage}, {2 * time.Hour, true, 512}} {
			out, hit := c.Answer(nil, query, &q, q.Key(nil), now.Add(tc.at), tc.stale, tc.limit)
			if hit == dns.Miss {
				continue
			}
			if len(out) > tc.limit {
				t.Fatalf("served %d bytes to a client who takes %d", len(out), tc.limit)
			}
			if !bytes.Equal(out[:2], query[:2]) || !bytes.Equal(out[12:q.End], query[12:q.End]) {
				t.Fatalf("served another ID or question:\n%x\nfor\n%x", out, query)
			}
			if !decodes {
				continue
			}
			got, ok := records(t, out, true)
			truncated := out[2]&0x02 != 0
			if !ok || !truncated && got != stored || truncated && got != 0 {
				t.Fatalf("served %d records of %d (TC %v), decoding: %v", got, stored, truncated, ok)
			}
		}
	})
}

// records counts the records of a message other than OPT, if miekg/dns
// decodes it, and with ceiling checks that no TTL exceeds an hour.
func records(t *testing.T, msg []byte, ceiling bool) (int, bool) {
	m := new(mdns.Msg)
	if err := m.Unpack(msg); err != nil {
		return 0, false
	}
	n := 0
	for _, rr := range append(append(append([]mdns.RR{}, m.Answer...), m.Ns...), m.Extra...) {
		if rr.Header().Rrtype == mdns.TypeOPT {
			continue
		}
		n++
		if ceiling && rr.Header().Ttl > 3600 {
			t.Fatalf("served a TTL of %d s above the ceiling of 1 h", rr.Header().Ttl)
		}
	}
	return n, true
}

// dnsFileSeeds are a hosts file and a resolv.conf as dyad-dhcp writes it.
func dnsFileSeeds() [][2]string {
	return [][2]string{
		{"127.0.0.1 localhost\n::1 localhost ip6-localhost\n192.0.2.9 printer.lan printer # a comment\n",
			"# written by dyad-dhcp\ndomain example.lan\nsearch a.lan b.lan\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions edns0\n"},
	}
}

func TestDNSFileSeeds(t *testing.T) {
	var seeds [][]any
	for _, s := range dnsFileSeeds() {
		seeds = append(seeds, []any{s[0], s[1]})
	}
	if err := syncSeeds("FuzzDNSFiles", seeds); err != nil {
		t.Fatal(err)
	}
}

// FuzzDNSFiles covers dyad-dns's readers of a hosts file and of the
// resolv.conf a DHCP client writes from what a DHCP server said. The
// invariants: no panic; what a hosts file gives builds local records;
// what a resolv.conf gives are addresses a forwarder takes, and domain
// names.
func FuzzDNSFiles(f *testing.F) {
	for _, s := range dnsFileSeeds() {
		f.Add(s[0], s[1])
	}
	hosts, err := newMemFile("hosts")
	if err != nil {
		f.Fatal(err)
	}
	resolv, err := newMemFile("resolv.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { hosts.Close(); resolv.Close() })
	f.Fuzz(func(t *testing.T, hostsText, resolvText string) {
		if err := hosts.Set(hostsText); err != nil {
			t.Fatal(err)
		}
		if err := resolv.Set(resolvText); err != nil {
			t.Fatal(err)
		}
		if entries, err := dns.ReadHosts(hosts.Path); err == nil {
			if _, err := dns.NewLocal(entries, nil, 0); err != nil {
				t.Fatalf("hosts entries that build no local records: %v", err)
			}
		}
		rc, err := dns.ReadResolvConf(resolv.Path)
		if err != nil {
			return
		}
		var ups []netip.AddrPort
		for _, a := range rc.Nameservers {
			ups = append(ups, netip.AddrPortFrom(a, 53))
		}
		if len(ups) > 0 {
			if _, err := dns.NewForwarder(dns.ForwarderConfig{Routes: []dns.Route{{Domain: ".", Upstreams: ups}}}); err != nil {
				t.Fatalf("nameservers a forwarder refuses: %v", err)
			}
		}
		for _, d := range rc.Search {
			if _, err := dns.NewForwarder(dns.ForwarderConfig{Routes: []dns.Route{{Domain: d, Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}}}}); err != nil {
				t.Fatalf("search domain %q a route refuses: %v", d, err)
			}
		}
	})
}

// dnsConfigSeeds are the dns image's dns.yaml and hand-made files and
// command lines.
func dnsConfigSeeds() [][2]string {
	seeds := [][2]string{
		{"listen: [127.0.0.53, \"169.254.20.10:53\"]\nupstreams: [192.0.2.53, \"[2001:db8::53]:5353\"]\nroutes: {corp.example: [10.0.0.53]}\n", "-d"},
		{"hosts_file: none\nlocal_records: [\"printer.lan. 300 IN A 192.168.1.9\"]\ncache_entries: 100\nmin_ttl: 5s\nmax_ttl: 1h\nserve_stale: 0s\n", "192.0.2.1"},
		{"resolv_conf: none\nsearch: [lan, corp.example]\nprefetch_hits: 2\nmax_negative_ttl: 10m\n", "--listen 127.0.0.53,::1 --upstreams-file none 192.0.2.1"},
		{"tls_upstreams: {192.0.2.53: dns.example, \"[2001:db8::53]:853\": dns6.example}\ntls_ca_file: /etc/ssl/certs/ca-certificates.crt\nupstreams_file: none\n", ""},
	}
	if conf, err := os.ReadFile("../images/dns/dns.yaml"); err == nil {
		seeds = append(seeds, [2]string{string(conf), ""})
	}
	return seeds
}

func TestDNSConfigSeeds(t *testing.T) {
	var seeds [][]any
	for _, s := range dnsConfigSeeds() {
		seeds = append(seeds, []any{s[0], s[1]})
	}
	if err := syncSeeds("FuzzDNSConfig", seeds); err != nil {
		t.Fatal(err)
	}
}

// FuzzDNSConfig covers dyad-dns's reading of its command line and
// configuration file. The invariants: no panic; an accepted configuration
// listens somewhere, runs the engine as non-root, gives the actuator a
// grant that names the stub's addresses when it writes a resolv.conf, and
// an engine configuration that encodes for the Welcome.
func FuzzDNSConfig(f *testing.F) {
	for _, s := range dnsConfigSeeds() {
		f.Add(s[0], s[1])
	}
	mem, err := newMemFile("dns.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	f.Fuzz(func(t *testing.T, conf, args string) {
		if err := mem.Set(conf); err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(args)
		// The file is the fuzzer's: a file option of its own would read
		// the host's.
		for _, a := range fields {
			if strings.HasPrefix(a, "-") && strings.HasPrefix(strings.TrimLeft(a, "-"), "f") {
				return
			}
		}
		c, err := dns.ParseArgs(append([]string{"-f", mem.Path}, fields...), io.Discard)
		if err != nil {
			return
		}
		if len(c.ListenAddrs()) == 0 || c.EngineUID == 0 || c.EngineGID == 0 {
			t.Fatalf("accepted %+v", c)
		}
		if g := dns.Grant(c); c.ResolvConf != "" && len(g.OwnNameservers) != len(c.ListenAddrs()) {
			t.Fatalf("a grant %+v for listeners %v", g, c.ListenAddrs())
		}
		if _, err := privsep.WelcomeWith(c.Engine()); err != nil {
			t.Fatalf("an engine configuration that does not encode: %v", err)
		}
	})
}
