package dns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// answer is an upstream's answer to name/qtype, with an OPT record as
// upstreams send it.
func answer(t testing.TB, name string, qtype uint16, rcode int, rrs ...string) []byte {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(name, qtype)
	m := new(mdns.Msg)
	m.SetRcode(q, rcode)
	m.Id = 0xbeef
	for _, s := range rrs {
		rr, err := mdns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Header().Rrtype == mdns.TypeSOA {
			m.Ns = append(m.Ns, rr)
		} else {
			m.Answer = append(m.Answer, rr)
		}
	}
	m.SetEdns0(1232, false)
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// query is a client's query for name/qtype, accepted; udpSize 0 means
// no EDNS.
func query(t testing.TB, name string, qtype uint16, udpSize uint16) ([]byte, *Query) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	if udpSize > 0 {
		m.SetEdns0(udpSize, false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, &q
}

// ask looks name/qtype up and decodes what the cache serves.
func ask(t *testing.T, c *Cache, name string, qtype uint16, at time.Duration, stale bool) (*mdns.Msg, Hit) {
	t.Helper()
	b, q := query(t, name, qtype, 1232)
	out, hit := c.Answer(nil, b, q, q.Key(nil), t0.Add(at), stale, 1232)
	if hit == Miss {
		return nil, hit
	}
	m := new(mdns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("the cache served what does not decode: %v\n%x", err, out)
	}
	return m, hit
}

func ttls(m *mdns.Msg) []uint32 {
	var out []uint32
	for _, rr := range append(append([]mdns.RR{}, m.Answer...), m.Ns...) {
		out = append(out, rr.Header().Ttl)
	}
	return out
}

func TestCacheServesWithQueryIDCaseAndCountdown(t *testing.T) {
	c := NewCache(CacheConfig{})
	if err := c.Store(answer(t, "www.example.test.", mdns.TypeA, mdns.RcodeSuccess,
		"www.example.test. 300 IN CNAME web.example.test.", "web.example.test. 600 IN A 192.0.2.7"), t0); err != nil {
		t.Fatal(err)
	}
	b, q := query(t, "WwW.ExAmPlE.tEsT.", mdns.TypeA, 1232)
	out, hit := c.Answer(nil, b, q, q.Key(nil), t0.Add(100*time.Second), false, 1232)
	if hit != Fresh {
		t.Fatalf("hit %v, want Fresh", hit)
	}
	m := new(mdns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if m.Id != 0x1234 || !m.RecursionDesired || !m.Response {
		t.Errorf("header %+v: want the query's ID and RD, and QR", m.MsgHdr)
	}
	if m.Question[0].Name != "WwW.ExAmPlE.tEsT." {
		t.Errorf("question %q: want the client's case", m.Question[0].Name)
	}
	if got := fmt.Sprint(ttls(m)); got != "[200 500]" {
		t.Errorf("TTLs %s after 100 s, want [200 500]", got)
	}
	if a, ok := m.Answer[1].(*mdns.A); !ok || !a.A.Equal(net.IPv4(192, 0, 2, 7)) {
		t.Errorf("answer %v", m.Answer)
	}
	if opt := m.IsEdns0(); opt == nil || opt.UDPSize() != 1232 || len(m.Extra) != 1 {
		t.Errorf("additional %v: want one OPT of 1232", m.Extra)
	}
	// Without EDNS in the query, none in the answer.
	b, q = query(t, "www.example.test.", mdns.TypeA, 0)
	out, _ = c.Answer(nil, b, q, q.Key(nil), t0, false, 512)
	if err := m.Unpack(out); err != nil || m.IsEdns0() != nil {
		t.Errorf("answer to a query without EDNS: %v, OPT %v", err, m.IsEdns0())
	}
	// Another type of the same name is another entry.
	if _, hit := ask(t, c, "www.example.test.", mdns.TypeAAAA, 0, false); hit != Miss {
		t.Errorf("AAAA: hit %v, want Miss", hit)
	}
	// Expired: a miss.
	if _, hit := ask(t, c, "www.example.test.", mdns.TypeA, 300*time.Second, false); hit != Miss {
		t.Errorf("after the TTL: hit %v, want Miss", hit)
	}
}

func TestCacheNegative(t *testing.T) {
	soa := "example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60"
	for _, tc := range []struct {
		name    string
		rcode   int
		rrs     []string
		want    error
		wantTTL string
	}{
		{"nxdomain", mdns.RcodeNameError, []string{soa}, nil, "[30]"},
		{"nodata", mdns.RcodeSuccess, []string{soa}, nil, "[30]"},
		{"nxdomain without SOA", mdns.RcodeNameError, nil, errUncacheable, ""},
		{"servfail", mdns.RcodeServerFailure, []string{soa}, errUncacheable, ""},
		{"refused", mdns.RcodeRefused, nil, errUncacheable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(CacheConfig{})
			err := c.Store(answer(t, "nx.example.test.", mdns.TypeA, tc.rcode, tc.rrs...), t0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("store: %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if c.Len() != 0 {
					t.Errorf("kept an uncacheable answer")
				}
				return
			}
			// The SOA's MINIMUM, 60 s, bounds it (RFC 2308).
			m, hit := ask(t, c, "nx.example.test.", mdns.TypeA, 30*time.Second, false)
			if hit != Fresh || m.Rcode != tc.rcode || fmt.Sprint(ttls(m)) != tc.wantTTL {
				t.Fatalf("after 30 s: hit %v, rcode %d, TTLs %v", hit, m.Rcode, ttls(m))
			}
			if _, hit := ask(t, c, "nx.example.test.", mdns.TypeA, 61*time.Second, false); hit != Miss {
				t.Errorf("after 61 s: hit %v, want Miss", hit)
			}
		})
	}
}

func TestCacheClampsTTLs(t *testing.T) {
	c := NewCache(CacheConfig{MinTTL: 30 * time.Second, MaxTTL: time.Hour})
	c.Store(answer(t, "short.test.", mdns.TypeA, mdns.RcodeSuccess, "short.test. 5 IN A 192.0.2.1"), t0)
	c.Store(answer(t, "long.test.", mdns.TypeA, mdns.RcodeSuccess, "long.test. 1000000 IN A 192.0.2.2"), t0)
	if m, hit := ask(t, c, "short.test.", mdns.TypeA, 10*time.Second, false); hit != Fresh || ttls(m)[0] != 20 {
		t.Errorf("TTL 5 under a floor of 30, after 10 s: %v %v", hit, m)
	}
	if m, hit := ask(t, c, "long.test.", mdns.TypeA, 0, false); hit != Fresh || ttls(m)[0] != 3600 {
		t.Errorf("TTL 1000000 under a ceiling of 1 h: %v %v", hit, m)
	}
	if _, hit := ask(t, c, "long.test.", mdns.TypeA, time.Hour, false); hit != Miss {
		t.Errorf("past the ceiling: %v, want Miss", hit)
	}
}

func TestCacheServesStaleOnlyWhenAsked(t *testing.T) {
	c := NewCache(CacheConfig{ServeStale: time.Hour})
	c.Store(answer(t, "s.test.", mdns.TypeA, mdns.RcodeSuccess, "s.test. 60 IN A 192.0.2.1"), t0)
	if _, hit := ask(t, c, "s.test.", mdns.TypeA, 2*time.Minute, false); hit != Miss {
		t.Errorf("expired, not asked stale: %v, want Miss", hit)
	}
	m, hit := ask(t, c, "s.test.", mdns.TypeA, 2*time.Minute, true)
	if hit != Stale || ttls(m)[0] != staleTTL {
		t.Errorf("expired, asked stale: %v, TTLs %v: want Stale, %d", hit, ttls(m), staleTTL)
	}
	if _, hit := ask(t, c, "s.test.", mdns.TypeA, 2*time.Hour, true); hit != Miss || c.Len() != 0 {
		t.Errorf("past the stale window: %v, %d entries: want Miss, and the entry gone", hit, c.Len())
	}
}

func TestCachePrefetchesPopularNamesOnce(t *testing.T) {
	c := NewCache(CacheConfig{PrefetchHits: 2})
	_, q := query(t, "p.test.", mdns.TypeA, 0)
	key := q.Key(nil)
	c.Store(answer(t, "p.test.", mdns.TypeA, mdns.RcodeSuccess, "p.test. 100 IN A 192.0.2.1"), t0)
	var got []Hit
	for _, at := range []time.Duration{10, 95, 96, 97} {
		_, hit := ask(t, c, "p.test.", mdns.TypeA, at*time.Second, false)
		got = append(got, hit)
	}
	if want := []Hit{Fresh, FreshPrefetch, Fresh, Fresh}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hits %v, want %v: one prefetch, near expiry, of a name asked twice", got, want)
	}
	c.PrefetchFailed(key) // the refresh failed: the next hit asks again
	if _, hit := ask(t, c, "p.test.", mdns.TypeA, 98*time.Second, false); hit != FreshPrefetch {
		t.Errorf("after a failed prefetch: %v, want FreshPrefetch", hit)
	}
}

func TestCacheBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  CacheConfig
	}{
		{"entries", CacheConfig{MaxEntries: 10}},
		{"bytes", CacheConfig{MaxBytes: 10 * (entryOverhead + 100)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(tc.cfg)
			for i := range 100 {
				name := fmt.Sprintf("n%d.test.", i)
				if err := c.Store(answer(t, name, mdns.TypeA, mdns.RcodeSuccess, name+" 300 IN A 192.0.2.1"), t0); err != nil {
					t.Fatal(err)
				}
				if tc.cfg.MaxEntries > 0 && c.Len() > tc.cfg.MaxEntries || tc.cfg.MaxBytes > 0 && c.Bytes() > tc.cfg.MaxBytes {
					t.Fatalf("after %d: %d entries, %d bytes", i+1, c.Len(), c.Bytes())
				}
			}
			// The most recent stay; the first went.
			if _, hit := ask(t, c, "n99.test.", mdns.TypeA, 0, false); hit != Fresh {
				t.Errorf("the last name stored: %v", hit)
			}
			if _, hit := ask(t, c, "n0.test.", mdns.TypeA, 0, false); hit != Miss {
				t.Errorf("the first name stored: %v, want evicted", hit)
			}
		})
	}
}

func TestCacheTruncatesWhatDoesNotFit(t *testing.T) {
	var txt []string
	for i := range 20 {
		txt = append(txt, fmt.Sprintf("big.test. 300 IN TXT %q", strings.Repeat(fmt.Sprint(i), 60)))
	}
	c := NewCache(CacheConfig{})
	if err := c.Store(answer(t, "big.test.", mdns.TypeTXT, mdns.RcodeSuccess, txt...), t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		udp     uint16
		limit   int
		wantTC  bool
		wantOPT bool
	}{
		{0, 512, true, false},
		{1232, 1232, true, true},
		{4096, 4096, false, true},
		{0, MaxMessage, false, false}, // TCP
	} {
		b, q := query(t, "big.test.", mdns.TypeTXT, tc.udp)
		out, hit := c.Answer(nil, b, q, q.Key(nil), t0, false, tc.limit)
		m := new(mdns.Msg)
		if err := m.Unpack(out); err != nil || hit != Fresh {
			t.Fatalf("udp %d: %v, %v", tc.udp, hit, err)
		}
		if len(out) > tc.limit || m.Truncated != tc.wantTC || (m.IsEdns0() != nil) != tc.wantOPT {
			t.Errorf("udp %d, limit %d: %d bytes, TC %v, OPT %v", tc.udp, tc.limit, len(out), m.Truncated, m.IsEdns0() != nil)
		}
		if tc.wantTC && len(m.Answer) != 0 || !tc.wantTC && len(m.Answer) != 20 {
			t.Errorf("udp %d: %d answers", tc.udp, len(m.Answer))
		}
	}
}

// TestCacheRefusesMalformedAnswers: what miekg/dns cannot decode, or
// decodes as no answer, is not kept.
func TestCacheRefusesMalformedAnswers(t *testing.T) {
	good := answer(t, "a.test.", mdns.TypeA, mdns.RcodeSuccess, "a.test. 300 IN A 192.0.2.1")
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"short", good[:11]},
		{"two questions", mutate(func(b []byte) []byte { b[5] = 2; return b })},
		{"counts beyond the message", mutate(func(b []byte) []byte { b[6] = 0xff; return b })},
		{"cut inside a record", good[:len(good)-3]},
		{"label type 0x40", mutate(func(b []byte) []byte { b[12] = 0x41; return b })},
		{"a pointer loop in the question", mutate(func(b []byte) []byte { b[12], b[13] = 0xc0, 12; return b })},
		{"a query", mutate(func(b []byte) []byte { b[2] &^= 0x80; return b })},
		{"truncated", mutate(func(b []byte) []byte { b[2] |= 0x02; return b })},
		{"NOTIFY", mutate(func(b []byte) []byte { b[2] |= 4 << 3; return b })},
		// miekg/dns decodes an SOA without data and encodes it as data
		// it cannot decode (found by FuzzDNSCache).
		{"an SOA without data", []byte("00\x810\x00\x01000000\x0200\x040000\x0000\x00\x01\xc0 \x00\x06000\x0000\x00\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(CacheConfig{})
			err := c.Store(tc.msg, t0)
			if err == nil || !strings.HasPrefix(err.Error(), "dns: ") {
				t.Errorf("store: %v, want an error saying it is dns's", err)
			}
			if c.Len() != 0 {
				t.Errorf("kept it")
			}
		})
	}
}

// TestCacheServesWhatItReencoded: an answer with bytes after its last
// record is served as the message it decodes to.
func TestCacheServesWhatItReencoded(t *testing.T) {
	good := answer(t, "a.test.", mdns.TypeA, mdns.RcodeSuccess, "a.test. 300 IN A 192.0.2.1")
	c := NewCache(CacheConfig{})
	if err := c.Store(append(append([]byte(nil), good...), 1, 2, 3), t0); err != nil {
		t.Fatal(err)
	}
	if m, hit := ask(t, c, "a.test.", mdns.TypeA, 0, false); hit != Fresh || len(m.Answer) != 1 {
		t.Errorf("%v %v", hit, m)
	}
}

func TestRecode(t *testing.T) {
	good := answer(t, "a.test.", mdns.TypeMX, mdns.RcodeSuccess, "a.test. 300 IN CNAME b.test.", "b.test. 200 IN MX 10 a.test.",
		"a.test. 60 IN SOA ns.a.test. host.a.test. 1 7200 900 1209600 30")
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	r, err := recode(good)
	if err != nil || len(r.rrs) != 3 || r.rrs[0].ttl != 300 || r.rrs[1].ttl != 200 || r.answers != 2 || !r.haveSOA || r.soaTTL != 60 || r.soaMin != 30 {
		t.Fatalf("recode: %+v, %v", r, err)
	}
	// Written again, it decodes to the same records, without OPT, and
	// with every name compressed that RFC 1035 lets be.
	in, out := new(mdns.Msg), new(mdns.Msg)
	if err := errors.Join(in.Unpack(good), out.Unpack(r.msg)); err != nil {
		t.Fatal(err)
	}
	in.Extra, in.Id = nil, 0
	if in.String() != out.String() {
		t.Errorf("written again:\n%v\nwant\n%v", out, in)
	}
	if len(r.msg) > len(good)-11 {
		t.Errorf("%d bytes written for %d, of which 11 of OPT: compression lost", len(r.msg), len(good))
	}
	for _, p := range r.rrs {
		if got := binary.BigEndian.Uint32(r.msg[p.ttlAt:]); got != p.ttl {
			t.Errorf("a TTL at %d reads %d, want %d", p.ttlAt, got, p.ttl)
		}
	}
	aRecord := answer(t, "a.test.", mdns.TypeA, mdns.RcodeSuccess, "a.test. 300 IN A 192.0.2.1")
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"short", good[:11], "shorter than a header"},
		{"two questions", mutate(func(b []byte) []byte { b[5] = 2; return b }), "2 questions"},
		{"counts beyond the message", mutate(func(b []byte) []byte { b[6] = 0xff; return b }), "records in"},
		{"cut inside a record", good[:len(good)-3], "ends inside"},
		{"label type 0x40", mutate(func(b []byte) []byte { b[12] = 0x41; return b }), "label type"},
		{"compressed question", mutate(func(b []byte) []byte { b[12], b[13] = 0xc0, 12; return b }), "compressed"},
		{"a pointer forward", mutate(func(b []byte) []byte {
			q, _ := ParseQuestion(b)
			b[q.End], b[q.End+1] = 0xc0, byte(q.End+2) // the first answer's owner
			return b
		}), "does not point back"},
		{"a pointer to itself", mutate(func(b []byte) []byte {
			q, _ := ParseQuestion(b)
			b[q.End], b[q.End+1] = 0xc0, byte(q.End)
			return b
		}), "does not point back"},
		{"an A record of 5 bytes", func() []byte {
			b := append([]byte(nil), aRecord[:len(aRecord)-11]...) // without OPT
			b[11] = 0
			b[len(b)-5] = 5 // rdlength
			return append(b, 9)
		}(), "want 4"},
		{"an OPT record in the answer section", func() []byte {
			b := append([]byte(nil), aRecord...)
			b[7], b[11] = 2, 0
			return b
		}(), "outside the additional section"},
		{"two OPT records", func() []byte {
			b := append(append([]byte(nil), aRecord...), aRecord[len(aRecord)-11:]...)
			b[11] = 2
			return b
		}(), "a second OPT"},
		{"an SOA cut short", func() []byte {
			soa := answer(t, "a.test.", mdns.TypeA, mdns.RcodeNameError, "a.test. 60 IN SOA ns.a.test. host.a.test. 1 7200 900 1209600 30")
			b := append([]byte(nil), soa[:len(soa)-11-4]...) // without OPT, nor MINIMUM
			b[11] = 0
			q, _ := ParseQuestion(b)
			rdlen := q.End + 2 + 8 // after the owner, a pointer to the question
			binary.BigEndian.PutUint16(b[rdlen:], binary.BigEndian.Uint16(b[rdlen:])-4)
			return b
		}(), "type 6"},
		{"name too long", func() []byte {
			b := append([]byte(nil), good[:12]...)
			for range 5 {
				b = append(b, 63)
				b = append(b, make([]byte, 63)...)
			}
			return append(b, 0, 0, 1, 0, 1)
		}(), "longer than 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := recode(tc.msg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("recode: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// hostile is a message of one question, name, type A, and the records
// after it, whose counts the caller gives.
func hostile(name []byte, an, ar int, records ...[]byte) []byte {
	b := []byte{0, 1, 0x81, 0x80, 0, 1, byte(an >> 8), byte(an), 0, 0, byte(ar >> 8), byte(ar)}
	b = append(b, name...)
	b = append(b, 0, 1, 0, 1)
	for _, r := range records {
		b = append(b, r...)
	}
	return b
}

// record is a record of owner (wire form), type rtype, TTL 60, with data.
func record(owner []byte, rtype uint16, data []byte) []byte {
	b := append([]byte(nil), owner...)
	b = binary.BigEndian.AppendUint16(b, rtype)
	b = append(b, 0, 1, 0, 0, 0, 60)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// longName is a name of 255 bytes in wire form, the longest there is.
func longName() []byte {
	var b []byte
	for range 3 {
		b = append(b, 63)
		b = append(b, bytes.Repeat([]byte{'a'}, 63)...)
	}
	b = append(b, 61)
	b = append(b, bytes.Repeat([]byte{'b'}, 61)...)
	return append(b, 0)
}

func TestRecodeHostile(t *testing.T) {
	long := longName()
	ptr := []byte{0xc0, 12} // to the question's name
	t.Run("a name of 255 bytes", func(t *testing.T) {
		if _, err := recode(hostile(long, 1, 0, record(ptr, typeA, []byte{192, 0, 2, 1}))); err != nil {
			t.Error(err)
		}
	})
	t.Run("names written out in full past 64 KiB", func(t *testing.T) {
		// RP's names are not compressed on output: each pointer to the
		// 255-byte question becomes the name itself.
		rp := record(ptr, typeRP, append(append([]byte(nil), ptr...), ptr...))
		var rs [][]byte
		for len(rs)*len(rp) < MaxMessage-300 {
			rs = append(rs, rp)
		}
		if _, err := recode(hostile(long, len(rs), 0, rs...)); err == nil || !strings.Contains(err.Error(), "once written again") {
			t.Errorf("%v: want the answer refused", err)
		}
	})
	t.Run("a chain of pointers", func(t *testing.T) {
		// The first record's data is a chain: each pointer points to
		// the one before it, the first to the question.
		chain := []byte{0xc0, 12}
		start := headerLen + 3 + 4 + 2 + 10 // past the question, and the first record's owner and fixed fields
		for i := range 200 {
			at := start + 2*i
			chain = append(chain, 0xc0|byte(at>>8), byte(at))
		}
		owner := []byte{0xc0 | byte((start+2*200)>>8), byte(start + 2*200)}
		msg := hostile([]byte{1, 'x', 0}, 2, 0, record(ptr, 9999, chain), record(owner, typeA, []byte{192, 0, 2, 1}))
		if _, err := recode(msg); err == nil || !strings.Contains(err.Error(), "compression pointers") {
			t.Errorf("%v: want the chain refused", err)
		}
	})
	t.Run("a pointer in an RRSIG's signer", func(t *testing.T) {
		data := append(make([]byte, 18), ptr...)
		data = append(data, 1, 2, 3, 4) // the signature
		r, err := recode(hostile([]byte{1, 'x', 0}, 1, 0, record(ptr, typeRRSIG, data)))
		if err != nil {
			t.Fatal(err)
		}
		if want := append(append(make([]byte, 18), 1, 'x', 0), 1, 2, 3, 4); !bytes.HasSuffix(r.msg, want) {
			t.Errorf("written as %x: want the signer written out, %x", r.msg, want)
		}
	})
}

// BenchmarkPrepare measures what a miss spends making an upstream's
// answer ready: go test -run '^$' -bench Prepare -benchmem ./daemons/dns/
func BenchmarkPrepare(b *testing.B) {
	msg := answer(b, "www.example.test.", mdns.TypeA, mdns.RcodeSuccess, "www.example.test. 300 IN A 192.0.2.1")
	c := NewCache(CacheConfig{})
	b.ReportAllocs()
	for range b.N {
		if _, err := c.Prepare(msg, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHit measures what the resolver spends on a cached answer, the
// socket aside: go test -run '^$' -bench Hit -benchmem ./daemons/dns/
func BenchmarkHit(b *testing.B) {
	c := NewCache(CacheConfig{})
	if err := c.Store(answer(b, "www.example.test.", mdns.TypeA, mdns.RcodeSuccess, "www.example.test. 300 IN A 192.0.2.1"), t0); err != nil {
		b.Fatal(err)
	}
	r := NewResolver(c, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Now = func() time.Time { return t0.Add(time.Second) }
	msg, _ := query(b, "www.example.test.", mdns.TypeA, 1232)
	out := make([]byte, 0, MaxMessage)
	b.ReportAllocs()
	for range b.N {
		if _, _, ok := r.answerCached(out[:0], msg, false); !ok {
			b.Fatal("a miss")
		}
	}
}
