package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// fakeUpstream answers on loopback with what reply makes of each query:
// the hostile replies a real server cannot be made to send. A nil reply
// sends nothing.
type fakeUpstream struct {
	addr    netip.AddrPort
	queries atomic.Int32
}

func startFake(t *testing.T, reply func(q *mdns.Msg) [][]byte, tcp func(q *mdns.Msg) []byte) *fakeUpstream {
	t.Helper()
	return startFakeTCP(t, func(q *mdns.Msg, _ net.Addr) [][]byte { return reply(q) }, tcp, false)
}

// startFakeFrom is startFake for a reply that depends on the source
// address, or takes its time (each query is answered on a goroutine of
// its own).
func startFakeFrom(t *testing.T, reply func(q *mdns.Msg, from net.Addr) [][]byte) *fakeUpstream {
	t.Helper()
	return startFakeTCP(t, reply, nil, true)
}

func startFakeTCP(t *testing.T, reply func(q *mdns.Msg, from net.Addr) [][]byte, tcp func(q *mdns.Msg) []byte, concurrent bool) *fakeUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, MaxMessage)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.queries.Add(1)
			q := new(mdns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			answer := func() {
				for _, r := range reply(q, from) {
					pc.WriteTo(r, from)
				}
			}
			if concurrent {
				go answer()
			} else {
				answer()
			}
		}
	}()
	if tcp != nil {
		ln, err := net.Listen("tcp", f.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				var size [2]byte
				io.ReadFull(c, size[:])
				b := make([]byte, binary.BigEndian.Uint16(size[:]))
				io.ReadFull(c, b)
				q := new(mdns.Msg)
				if q.Unpack(b) == nil {
					r := tcp(q)
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(r))), r...))
				}
				c.Close()
			}
		}()
	}
	return f
}

// reply is an answer to q with an A record, edited by edit.
func reply(q *mdns.Msg, edit func(m *mdns.Msg)) []byte {
	m := new(mdns.Msg)
	m.SetReply(q)
	rr, _ := mdns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
	m.Answer = []mdns.RR{rr}
	if edit != nil {
		edit(m)
	}
	b, _ := m.Pack()
	return b
}

// exchangeModes are the forwarder's two ways to ask: Exchange, which
// waits, and ExchangeAsync, which calls back. The forwarder's tests run
// both.
func exchangeModes() []exchangeMode {
	return []exchangeMode{
		{"Exchange", func(t *testing.T, ctx context.Context, f *Forwarder, q *Query) ([]byte, error) {
			return f.Exchange(ctx, q)
		}},
		{"ExchangeAsync", exchangeAsync},
	}
}

type exchangeMode struct {
	name     string
	exchange func(t *testing.T, ctx context.Context, f *Forwarder, q *Query) ([]byte, error)
}

// exchangeAsync waits for ExchangeAsync's outcome, with ctx's deadline
// (10 s without one), and fails t if done is called more than once.
func exchangeAsync(t *testing.T, ctx context.Context, f *Forwarder, q *Query) ([]byte, error) {
	t.Helper()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	type result struct {
		reply []byte
		err   error
	}
	done := make(chan result, 2)
	f.ExchangeAsync(q, deadline, func(reply []byte, err error) {
		done <- result{append([]byte(nil), reply...), err}
	})
	t.Cleanup(func() {
		if len(done) > 0 {
			t.Errorf("ExchangeAsync called done twice for %s", q.Name)
		}
	})
	select {
	case r := <-done:
		return r.reply, r.err
	case <-time.After(30 * time.Second):
		// Errorf, not Fatalf: some tests ask from goroutines.
		t.Errorf("ExchangeAsync never called done for %s", q.Name)
		return nil, errors.New("no outcome")
	}
}

func clientQuery(t *testing.T, name string) *Query {
	t.Helper()
	_, q := query(t, name, mdns.TypeA, 0)
	return q
}

func TestForwarderDropsWhatDoesNotAnswerTheQuery(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				edit  func(m *mdns.Msg)
				valid bool
			}{
				{"the answer", nil, true},
				{"another ID", func(m *mdns.Msg) { m.Id++ }, false},
				{"not a response", func(m *mdns.Msg) { m.Response = false }, false},
				{"another name", func(m *mdns.Msg) { m.Question[0].Name = "other.test." }, false},
				{"the name in another case", func(m *mdns.Msg) { m.Question[0].Name = strings.ToUpper(m.Question[0].Name) }, false},
				{"another type", func(m *mdns.Msg) { m.Question[0].Qtype = mdns.TypeAAAA }, false},
				{"another class", func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }, false},
				{"another opcode", func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					// The spoof comes first, the answer after it: a forwarder
					// that takes the spoof fails the check below.
					up := startFake(t, func(q *mdns.Msg) [][]byte {
						if tc.valid {
							return [][]byte{reply(q, nil)}
						}
						return [][]byte{reply(q, tc.edit), reply(q, func(m *mdns.Msg) { m.Answer[0].(*mdns.A).A = net.IPv4(192, 0, 2, 99) })}
					}, nil)
					f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}, Timeout: time.Second})
					if err != nil {
						t.Fatal(err)
					}
					out, err := mode.exchange(t, context.Background(), f, clientQuery(t, "Www.Example.Test."))
					if err != nil {
						t.Fatal(err)
					}
					m := new(mdns.Msg)
					if err := m.Unpack(out); err != nil {
						t.Fatal(err)
					}
					want := "192.0.2.1"
					if !tc.valid {
						want = "192.0.2.99"
					}
					if got := m.Answer[0].(*mdns.A).A.String(); got != want || m.Id != 0 {
						t.Errorf("took the reply with %s, ID %d: want %s, ID 0", got, m.Id, want)
					}
				})
			}
		})
	}
}

func TestForwarderFallsBackToTCP(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			up := startFake(t, func(q *mdns.Msg) [][]byte {
				return [][]byte{reply(q, func(m *mdns.Msg) { m.Truncated, m.Answer = true, nil })}
			}, func(q *mdns.Msg) []byte {
				return reply(q, func(m *mdns.Msg) {
					for range 99 {
						m.Answer = append(m.Answer, m.Answer[0])
					}
				})
			})
			f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}})
			out, err := mode.exchange(t, context.Background(), f, clientQuery(t, "big.test."))
			if err != nil {
				t.Fatal(err)
			}
			m := new(mdns.Msg)
			if err := m.Unpack(out); err != nil || m.Truncated || len(m.Answer) != 100 {
				t.Errorf("%v: TC %v, %d answers: want the TCP answer's 100", err, m.Truncated, len(m.Answer))
			}
		})
	}
}

func TestForwarderFailsOverAndSetsAsideWhatFails(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			silent := startFake(t, func(*mdns.Msg) [][]byte { return nil }, nil)
			servfail := startFake(t, func(q *mdns.Msg) [][]byte {
				return [][]byte{reply(q, func(m *mdns.Msg) { m.Rcode, m.Answer = mdns.RcodeServerFailure, nil })}
			}, nil)
			good := startFake(t, func(q *mdns.Msg) [][]byte { return [][]byte{reply(q, nil)} }, nil)
			f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{silent.addr, servfail.addr, good.addr}}}, Timeout: 100 * time.Millisecond})
			for i := range failuresToDown {
				if _, err := mode.exchange(t, context.Background(), f, clientQuery(t, "a.test.")); err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
			}
			if silent.queries.Load() != failuresToDown || servfail.queries.Load() != failuresToDown {
				t.Fatalf("queries: silent %d, servfail %d: want %d each, in order", silent.queries.Load(), servfail.queries.Load(), failuresToDown)
			}
			health := f.Healthy(time.Now())
			if health[silent.addr] || health[servfail.addr] || !health[good.addr] {
				t.Errorf("health %v: want the first two set aside", health)
			}
			// Set aside: the good one is asked first.
			if _, err := mode.exchange(t, context.Background(), f, clientQuery(t, "a.test.")); err != nil {
				t.Fatal(err)
			}
			if silent.queries.Load() != failuresToDown || good.queries.Load() != failuresToDown+1 {
				t.Errorf("after setting aside: silent %d, good %d queries", silent.queries.Load(), good.queries.Load())
			}
		})
	}
}

// TestForwarderDeadline: an exchange ends by its deadline, though the
// upstream's own timeout is longer, and counts the upstream's silence.
func TestForwarderDeadline(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			silent := startFake(t, func(*mdns.Msg) [][]byte { return nil }, nil)
			f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{silent.addr}}}, Timeout: time.Hour})
			for range failuresToDown {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				_, err := mode.exchange(t, ctx, f, clientQuery(t, "a.test."))
				cancel()
				if !errors.Is(err, ErrNoUpstream) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), silent.addr.String()) {
					t.Fatalf("%v: want no upstream, the deadline, and the upstream named", err)
				}
			}
			if f.Healthy(time.Now())[silent.addr] {
				t.Errorf("the silent upstream is still in use after %d exchanges it did not answer", failuresToDown)
			}
		})
	}
}

func TestForwarderNoRoute(t *testing.T) {
	f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{"example.", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}}}})
	for _, mode := range exchangeModes() {
		if _, err := mode.exchange(t, context.Background(), f, clientQuery(t, "a.test.")); !errors.Is(err, ErrNoUpstream) {
			t.Errorf("%s: %v: want ErrNoUpstream", mode.name, err)
		}
	}
}

func TestForwarderNoUpstream(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			silent := startFake(t, func(*mdns.Msg) [][]byte { return nil }, nil)
			f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{silent.addr}}}, Timeout: 50 * time.Millisecond})
			if _, err := mode.exchange(t, context.Background(), f, clientQuery(t, "a.test.")); !errors.Is(err, ErrNoUpstream) {
				t.Errorf("%v: want ErrNoUpstream", err)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:53")
	b := netip.MustParseAddrPort("192.0.2.2:53")
	c := netip.MustParseAddrPort("192.0.2.3:53")
	f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{a}}, {"corp.example.", []netip.AddrPort{b}}, {"Lab.Corp.Example", []netip.AddrPort{c}}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]netip.AddrPort{
		"www.example.":           a,
		"corp.example.":          b,
		"x.corp.example.":        b,
		"X.LAB.CORP.EXAMPLE.":    c,
		"notcorp.example.":       a, // a suffix, not a label boundary
		"lab.corp.example.test.": a,
	} {
		q := clientQuery(t, name)
		if got := f.routeFor(q.Name); len(got) != 1 || got[0].addr != want {
			t.Errorf("%s: routed to %v, want %s", name, got, want)
		}
	}
	for _, bad := range []Route{{"a..b", []netip.AddrPort{a}}, {"x.", nil}, {"x.", []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}}, {"x.", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:0")}}} {
		if _, err := NewForwarder(ForwarderConfig{Routes: []Route{bad}}); err == nil {
			t.Errorf("route %+v accepted", bad)
		}
	}
}

// openSockets counts the process's open sockets.
func openSockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

func TestForwarderSharesAndRenewsSockets(t *testing.T) {
	var mu sync.Mutex
	ports := map[int]int{} // source port: queries
	up := startFakeFrom(t, func(q *mdns.Msg, from net.Addr) [][]byte {
		mu.Lock()
		ports[from.(*net.UDPAddr).Port]++
		mu.Unlock()
		return [][]byte{reply(q, nil)}
	})
	f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before := openSockets(t)
	const queries = 2*socketQueries + socketQueries/2
	for i := range queries {
		if _, err := f.Exchange(context.Background(), clientQuery(t, fmt.Sprintf("n%d.test.", i))); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ports) != 3 {
		t.Errorf("%d queries came from %d ports (%v): want a new port every %d", queries, len(ports), ports, socketQueries)
	}
	for p, n := range ports {
		if n > socketQueries {
			t.Errorf("port %d carried %d queries: want at most %d", p, n, socketQueries)
		}
	}
	if n := openSockets(t) - before; n != 1 {
		t.Errorf("%d more sockets open: want the current one only", n)
	}
	// An upstream no longer asked closes its socket.
	if err := f.SetRoutes([]Route{{".", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}}}); err != nil {
		t.Fatal(err)
	}
	if n := openSockets(t) - before; n != 0 {
		t.Errorf("%d more sockets open after the upstream's route went: want none", n)
	}
}

func TestForwarderQueriesShareASocket(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			// The fake upstream answers each query after a delay of its own, so
			// that replies come back out of order; each carries the query's name
			// in its TXT record.
			up := startFakeFrom(t, func(q *mdns.Msg, _ net.Addr) [][]byte {
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
				return [][]byte{reply(q, func(m *mdns.Msg) {
					rr, _ := mdns.NewRR(q.Question[0].Name + ` 300 IN TXT "` + q.Question[0].Name + `"`)
					m.Answer = []mdns.RR{rr}
				})}
			})
			f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Go(func() {
					name := fmt.Sprintf("q%d.test.", i)
					_, q := query(t, name, mdns.TypeTXT, 0)
					out, err := mode.exchange(t, context.Background(), f, q)
					if err != nil {
						t.Error(err)
						return
					}
					m := new(mdns.Msg)
					if err := m.Unpack(out); err != nil || len(m.Answer) != 1 {
						t.Errorf("%s: %v, %d answers", name, err, len(m.Answer))
						return
					}
					if got := m.Answer[0].(*mdns.TXT).Txt[0]; got != name {
						t.Errorf("%s: answered with %s's reply", name, got)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestForwarderPortUnreachable(t *testing.T) {
	for _, mode := range exchangeModes() {
		t.Run(mode.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closed := pc.LocalAddr().(*net.UDPAddr).AddrPort()
			pc.Close()
			f, _ := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{closed}}}, Timeout: time.Minute})
			for range 2 {
				if _, err := mode.exchange(t, context.Background(), f, clientQuery(t, "a.test.")); !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("%v: want ECONNREFUSED, from the ICMP the port sends back", err)
				}
			}
		})
	}
}

// An exchange that took its upstream before SetRoutes dropped it still
// gets its answer, and leaves no socket open.
func TestForwarderDroppedUpstreamKeepsNoSocket(t *testing.T) {
	up := startFake(t, func(q *mdns.Msg) [][]byte { return [][]byte{reply(q, nil)} }, nil)
	f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before := openSockets(t)
	u := f.routeFor(clientQuery(t, "a.test.").Name)[0]
	if err := f.SetRoutes([]Route{{".", []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.exchangeWith(context.Background(), u, clientQuery(t, "a.test.")); err != nil {
		t.Fatal(err)
	}
	if n := openSockets(t) - before; n != 0 {
		t.Errorf("%d more sockets open: want none", n)
	}
}
