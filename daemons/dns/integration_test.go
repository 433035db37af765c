package dns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/dyad-project/dyad/daemons/dns"
	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// inNamespace runs f on a thread of its own in network namespace ns; the
// thread ends with it.
func inNamespace(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := testnet.EnterNamespace(ns); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// bigTXT is a set of TXT records too large for 1232 bytes: over TCP only.
func bigTXT() []string {
	var rrs []string
	for i := range 20 {
		rrs = append(rrs, fmt.Sprintf(`big.example.test. 300 IN TXT "%02d %s"`, i, strings.Repeat("x", 90)))
	}
	return rrs
}

// questions are what the tests ask: each kind of answer the issue names.
var questions = []struct {
	name   string
	qtype  uint16
	rcode  int
	answer bool // records in the answer section
}{
	{"www.example.test.", mdns.TypeA, mdns.RcodeSuccess, true},
	{"www.example.test.", mdns.TypeAAAA, mdns.RcodeSuccess, true},
	{"alias.example.test.", mdns.TypeA, mdns.RcodeSuccess, true}, // a CNAME chain: alias -> www2 -> www
	{"example.test.", mdns.TypeMX, mdns.RcodeSuccess, true},
	{"example.test.", mdns.TypeTXT, mdns.RcodeSuccess, true},
	{"nowhere.example.test.", mdns.TypeA, mdns.RcodeNameError, false},
	{"www.example.test.", mdns.TypeMX, mdns.RcodeSuccess, false}, // NODATA
	{"big.example.test.", mdns.TypeTXT, mdns.RcodeSuccess, true}, // over TCP
}

// TestForwarderAnswersAsTheUpstream: through the forwarder, each question
// gets what asking the upstream directly gets (rcode and every section
// but the OPT record), from unbound and from dnsmasq, in a namespace of
// their own; the large answer comes over TCP.
func TestForwarderAnswersAsTheUpstream(t *testing.T) {
	testnet.RequireRoot(t)
	for _, peer := range []string{"unbound", "dnsmasq"} {
		t.Run(peer, func(t *testing.T) {
			n := testnet.NewNet(t)
			n.AddClientAddress(t)
			switch peer {
			case "unbound":
				n.StartUnbound(t, append([]string{
					"example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60",
					"www.example.test. 300 IN A 192.0.2.80",
					"www.example.test. 300 IN AAAA 2001:db8::80",
					"www2.example.test. 300 IN CNAME www.example.test.",
					"alias.example.test. 300 IN CNAME www2.example.test.",
					"example.test. 300 IN MX 10 mail.example.test.",
					"mail.example.test. 300 IN A 192.0.2.25",
					`example.test. 300 IN TXT "v=spf1 -all"`,
				}, bigTXT()...))
			case "dnsmasq":
				args := []string{"--local=/example.test/", "--local-ttl=300",
					"--host-record=www.example.test,192.0.2.80,2001:db8::80", "--host-record=mail.example.test,192.0.2.25",
					"--cname=alias.example.test,www2.example.test", "--cname=www2.example.test,www.example.test",
					"--mx-host=example.test,mail.example.test,10", "--txt-record=example.test,v=spf1 -all"}
				for i := range 20 {
					args = append(args, fmt.Sprintf("--txt-record=big.example.test,%02d %s", i, strings.Repeat("x", 90)))
				}
				n.StartDnsmasqDNS(t, args...)
			}
			server := netip.AddrPortFrom(n.ServerAddr.Addr(), 53)
			f, err := dns.NewForwarder(dns.ForwarderConfig{Routes: []dns.Route{{Domain: ".", Upstreams: []netip.AddrPort{server}}}, Dial: n.Dialer(t, n.Client)})
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range questions {
				t.Run(q.name+mdns.TypeToString[q.qtype], func(t *testing.T) {
					var direct, forwarded *mdns.Msg
					var derr, ferr error
					inNamespace(t, n.Client, func() {
						direct, derr = askDirectly(server, q.name, q.qtype)
						forwarded, ferr = forward(f, q.name, q.qtype)
					})
					if derr != nil || ferr != nil {
						t.Fatalf("directly: %v; through the forwarder: %v", derr, ferr)
					}
					if got, want := sections(forwarded), sections(direct); got != want {
						t.Errorf("through the forwarder:\n%s\ndirectly:\n%s", got, want)
					}
					if direct.Rcode != q.rcode || (len(direct.Answer) > 0) != q.answer {
						t.Errorf("the upstream's answer is not the kind this question is for (rcode %s, answers: %v):\n%s", mdns.RcodeToString[q.rcode], q.answer, direct)
					}
				})
			}
		})
	}
}

// askDirectly asks the upstream as a client would, over TCP when the UDP
// answer is truncated.
func askDirectly(server netip.AddrPort, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &mdns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server.String())
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, server.String())
	}
	return r, err
}

// forward asks through the forwarder, as the stub does with a client's
// query.
func forward(f *dns.Forwarder, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	b, err := m.Pack()
	if err != nil {
		return nil, err
	}
	q, err := dns.ParseQuery(b)
	if err != nil {
		return nil, err
	}
	out, err := f.Exchange(context.Background(), &q)
	if err != nil {
		return nil, err
	}
	r := new(mdns.Msg)
	return r, r.Unpack(out)
}

// sections is an answer's rcode, flags and records, OPT aside, each
// section sorted: servers rotate the order of a set's records.
func sections(m *mdns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rcode %s, aa %v, tc %v\n", mdns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated)
	for i, section := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		var lines []string
		for _, rr := range section {
			if rr.Header().Rrtype != mdns.TypeOPT {
				lines = append(lines, rr.String())
			}
		}
		slices.Sort(lines)
		fmt.Fprintf(&b, "section %d:\n%s\n", i+1, strings.Join(lines, "\n"))
	}
	return b.String()
}

// kdigAnswer is what the tests read of kdig's JSON (RFC 8427).
type kdigAnswer struct {
	RCODE     int
	TC        int
	AnswerRRs []struct {
		NAME string
		TYPE int
		TTL  int
	} `json:"answerRRs"`
}

// kdig asks the stub at server a question from the client's namespace.
func kdig(t *testing.T, n *testnet.Net, server netip.Addr, args ...string) kdigAnswer {
	t.Helper()
	out, err := n.Run(t, n.Client, "kdig", append([]string{"+json", "+time=2", "+retry=0", "@" + server.String()}, args...)...)
	if err != nil {
		t.Fatalf("kdig %v: %v\n%s", args, err, out)
	}
	var a kdigAnswer
	// kdig prints its warnings before the JSON.
	if i := strings.IndexByte(string(out), '{'); i < 0 || json.Unmarshal(out[i:], &a) != nil {
		t.Fatalf("kdig %v: no JSON:\n%s", args, out)
	}
	return a
}

// TestStub runs the resolver in the client's namespace in front of
// unbound, and asks it with kdig: answers come with their TTLs counted
// down, a negative answer is kept, the large answer comes over TCP, and
// once unbound is gone an expired answer is still served (RFC 8767) while
// a name never asked gets SERVFAIL.
func TestStub(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	stub := n.AddClientAddress(t).Addr()
	unbound := n.StartUnbound(t, append([]string{
		"example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60",
		"www.example.test. 300 IN A 192.0.2.80",
	}, bigTXT()...))
	// The resolver's goroutines run on any thread: its upstream sockets
	// are opened in the client's namespace by the Net's dialer.
	f, err := dns.NewForwarder(dns.ForwarderConfig{Routes: []dns.Route{{Domain: ".", Upstreams: []netip.AddrPort{netip.AddrPortFrom(n.ServerAddr.Addr(), 53)}}},
		Timeout: 500 * time.Millisecond, Dial: n.Dialer(t, n.Client)})
	if err != nil {
		t.Fatal(err)
	}
	r := dns.NewResolver(dns.NewCache(dns.CacheConfig{ServeStale: time.Hour}), f, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	r.ExchangeTimeout = time.Second
	var mu sync.Mutex
	now := time.Now()
	r.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var udp *net.UDPConn
	var tcp *net.TCPListener
	inNamespace(t, n.Client, func() {
		addr := netip.AddrPortFrom(stub, 53)
		if udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr)); err == nil {
			tcp, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.ServeUDP(ctx, udp) }()
	go func() { defer wg.Done(); r.ServeTCP(ctx, tcp) }()
	t.Cleanup(func() { cancel(); wg.Wait(); udp.Close(); tcp.Close() })

	if a := kdig(t, n, stub, "www.example.test.", "A"); a.RCODE != 0 || len(a.AnswerRRs) != 1 || a.AnswerRRs[0].TTL != 300 {
		t.Fatalf("first answer: %+v", a)
	}
	advance(100 * time.Second)
	if a := kdig(t, n, stub, "WWW.example.TEST.", "A"); len(a.AnswerRRs) != 1 || a.AnswerRRs[0].TTL != 200 {
		t.Errorf("100 s later: %+v, want the TTL at 200", a)
	}
	if a := kdig(t, n, stub, "nowhere.example.test.", "A"); a.RCODE != 3 {
		t.Errorf("nowhere: %+v, want NXDOMAIN", a)
	}
	if a := kdig(t, n, stub, "big.example.test.", "TXT"); a.RCODE != 0 || len(a.AnswerRRs) != 20 || a.TC != 0 {
		t.Errorf("big TXT (kdig goes to TCP on TC): %+v", a)
	}
	if a := kdig(t, n, stub, "+tcp", "big.example.test.", "TXT"); len(a.AnswerRRs) != 20 {
		t.Errorf("big TXT over TCP: %+v", a)
	}
	hits := r.Stats().Hits.Load()

	unbound.Stop()
	// Kept: the negative answer, for its SOA's minimum of 60 s.
	if a := kdig(t, n, stub, "nowhere.example.test.", "A"); a.RCODE != 3 {
		t.Errorf("nowhere, unbound gone: %+v, want NXDOMAIN from the cache", a)
	}
	if got := r.Stats().Hits.Load() - hits; got != 1 {
		t.Errorf("%d hits for the negative answer, want 1", got)
	}
	// Expired, and no upstream: served stale, with a TTL of 30 s.
	advance(time.Hour - 100*time.Second - time.Minute)
	if a := kdig(t, n, stub, "www.example.test.", "A"); a.RCODE != 0 || len(a.AnswerRRs) != 1 || a.AnswerRRs[0].TTL != 30 {
		t.Errorf("expired, unbound gone: %+v, want the stale answer with TTL 30", a)
	}
	if a := kdig(t, n, stub, "other.example.test.", "A"); a.RCODE != 2 {
		t.Errorf("never asked, unbound gone: %+v, want SERVFAIL", a)
	}
	if r.Stats().Stale.Load() != 1 || r.Stats().ServFail.Load() != 1 {
		t.Errorf("stats: %d stale, %d SERVFAIL: want 1 and 1", r.Stats().Stale.Load(), r.Stats().ServFail.Load())
	}
}
