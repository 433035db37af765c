package dns_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
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
			f, err := dns.NewForwarder(dns.ForwarderConfig{Routes: []dns.Route{{Domain: ".", Upstreams: []netip.AddrPort{server}}}})
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
