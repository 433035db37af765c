package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/dyad-project/dyad/internal/testnet"
)

func newTestResolver(t *testing.T, up *fakeUpstream) *Resolver {
	t.Helper()
	f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return NewResolver(NewCache(CacheConfig{}), f, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func decode(t *testing.T, b []byte) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("%v: %x", err, b)
	}
	return m
}

// TestResolverAsksOnceForManyClients: clients asking the same question
// while it is being asked upstream wait for that one exchange.
func TestResolverAsksOnceForManyClients(t *testing.T) {
	up := startFake(t, func(q *mdns.Msg) [][]byte {
		time.Sleep(100 * time.Millisecond)
		return [][]byte{reply(q, nil)}
	}, nil)
	r := newTestResolver(t, up)
	b, _ := query(t, "same.test.", mdns.TypeA, 0)
	var wg sync.WaitGroup
	answers := make([]*mdns.Msg, 20)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(mdns.Msg)
			if m.Unpack(r.Answer(context.Background(), nil, b, false)) == nil {
				answers[i] = m
			}
		}()
	}
	wg.Wait()
	for i, m := range answers {
		if m == nil || len(m.Answer) != 1 || m.Id != 0x1234 {
			t.Errorf("client %d: %v", i, m)
		}
	}
	if n := up.queries.Load(); n != 1 {
		t.Errorf("%d queries upstream for 20 clients at once, want 1", n)
	}
}

func TestResolverErrorAnswers(t *testing.T) {
	up := startFake(t, func(q *mdns.Msg) [][]byte { return [][]byte{reply(q, nil)} }, nil)
	r := newTestResolver(t, up)
	pack := func(f func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg)
		m.SetQuestion("q.test.", mdns.TypeA)
		m.Id = 99
		f(m)
		b, _ := m.Pack()
		return b
	}
	for _, tc := range []struct {
		name  string
		msg   []byte
		rcode int
		opt   bool
	}{
		{"NOTIFY", pack(func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), mdns.RcodeNotImplemented, false},
		{"EDNS version 1", pack(func(m *mdns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), mdns.RcodeBadVers, true},
		{"class CH", pack(func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }), mdns.RcodeRefused, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, r.Answer(context.Background(), nil, tc.msg, false))
			if m.Id != 99 || !m.Response || m.Rcode != tc.rcode || len(m.Question) != 1 || (m.IsEdns0() != nil) != tc.opt {
				t.Errorf("answer %v: want rcode %s, the question, OPT %v", m, mdns.RcodeToString[tc.rcode], tc.opt)
			}
		})
	}
	// Nothing to answer: a response, and a header alone.
	resp := pack(func(m *mdns.Msg) { m.Response = true })
	if out := r.Answer(context.Background(), []byte("x"), resp, false); string(out) != "x" {
		t.Errorf("answered a response: %x", out)
	}
	if up.queries.Load() != 0 {
		t.Errorf("%d refused queries went upstream", up.queries.Load())
	}
}

// TestResolverServesWhatItDoesNotKeep: a negative answer without SOA is
// served, and not kept (the next client's question goes upstream again).
func TestResolverServesWhatItDoesNotKeep(t *testing.T) {
	up := startFake(t, func(q *mdns.Msg) [][]byte {
		return [][]byte{reply(q, func(m *mdns.Msg) { m.Rcode, m.Answer = mdns.RcodeNameError, nil })}
	}, nil)
	r := newTestResolver(t, up)
	b, _ := query(t, "nx.test.", mdns.TypeA, 1232)
	for i := range 2 {
		m := decode(t, r.Answer(context.Background(), nil, b, false))
		if m.Rcode != mdns.RcodeNameError || m.Id != 0x1234 || m.IsEdns0() == nil {
			t.Errorf("answer %d: %v", i, m)
		}
	}
	if n := up.queries.Load(); n != 2 {
		t.Errorf("%d queries upstream, want 2: nothing kept", n)
	}
}

// serveUDP serves r on a loopback UDP socket until the test ends, and
// returns its address.
func serveUDP(t *testing.T, r *Resolver) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.ServeUDP(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
		conn.Close()
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestServeUDPAsksOnceForManyClients: over UDP, where a miss waits on no
// goroutine of its own, clients asking the same question while it is
// asked upstream each get that one exchange's answer, with their own ID,
// whether the exchange is a UDP client's or one asked the way TCP's
// clients ask (which waits).
func TestServeUDPAsksOnceForManyClients(t *testing.T) {
	for _, waiting := range []bool{false, true} {
		t.Run(fmt.Sprintf("first asked waiting %v", waiting), func(t *testing.T) {
			release := make(chan struct{})
			up := startFakeFrom(t, func(q *mdns.Msg, _ net.Addr) [][]byte {
				<-release
				return [][]byte{reply(q, nil)}
			})
			var once sync.Once
			releaseOnce := func() { once.Do(func() { close(release) }) }
			defer releaseOnce()
			r := newTestResolver(t, up)
			stub := serveUDP(t, r)

			const clients = 20
			ask := func(id uint16) net.Conn {
				c, err := net.Dial("udp", stub.String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				c.SetDeadline(time.Now().Add(10 * time.Second))
				m := new(mdns.Msg)
				m.SetQuestion("same.test.", mdns.TypeA)
				m.Id = id
				b, _ := m.Pack()
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
				return c
			}
			var conns []net.Conn
			first := make(chan *mdns.Msg, 1)
			if waiting {
				go func() {
					b, _ := query(t, "same.test.", mdns.TypeA, 0)
					m := new(mdns.Msg)
					if m.Unpack(r.Answer(context.Background(), nil, b, false)) != nil {
						m = nil
					}
					first <- m
				}()
			} else {
				conns = append(conns, ask(1))
			}
			// The others ask once the exchange is under way, and the
			// upstream answers once they all wait on it.
			if !testnet.WaitFor(10*time.Second, func() bool { return up.queries.Load() == 1 }) {
				t.Fatal("the first query never reached the upstream")
			}
			for len(conns) < clients {
				conns = append(conns, ask(uint16(len(conns)+1)))
			}
			key := string(CacheKey(nil, []byte("\x04same\x04test\x00"), mdns.TypeA, mdns.ClassINET))
			if !testnet.WaitFor(10*time.Second, func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				f := r.inflight[key]
				return f != nil && len(f.then) == clients
			}) {
				t.Fatalf("%d UDP clients never all waited on the exchange", clients)
			}
			releaseOnce()
			for i, c := range conns {
				buf := make([]byte, MaxMessage)
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				m := decode(t, buf[:n])
				if len(m.Answer) != 1 || m.Id != uint16(i+1) {
					t.Errorf("client %d: ID %d, %d answers: want ID %d, 1 answer", i, m.Id, len(m.Answer), i+1)
				}
			}
			if waiting {
				if m := <-first; m == nil || len(m.Answer) != 1 || m.Id != 0x1234 {
					t.Errorf("the waiting client: %v", m)
				}
			}
			if n := up.queries.Load(); n != 1 {
				t.Errorf("%d queries upstream for the clients at once, want 1", n)
			}
		})
	}
}

// TestServeUDPBoundsTheMisses: past maxPending misses waiting on an
// upstream, a miss gets SERVFAIL at once; once they have failed, misses
// are asked upstream again.
func TestServeUDPBoundsTheMisses(t *testing.T) {
	release := make(chan struct{})
	up := startFakeFrom(t, func(q *mdns.Msg, _ net.Addr) [][]byte {
		<-release
		return [][]byte{reply(q, func(m *mdns.Msg) { m.Rcode, m.Answer = mdns.RcodeServerFailure, nil })}
	})
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	defer releaseOnce()
	f, err := NewForwarder(ForwarderConfig{Routes: []Route{{".", []netip.AddrPort{up.addr}}}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(NewCache(CacheConfig{}), f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.ExchangeTimeout = time.Minute
	stub := serveUDP(t, r)
	c, err := net.Dial("udp", stub.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(i int) {
		m := new(mdns.Msg)
		m.SetQuestion(fmt.Sprintf("n%d.test.", i), mdns.TypeA)
		m.Id = uint16(i)
		b, _ := m.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// In steps, each waited for: the stub's socket holds a few hundred
	// queries, not maxPending.
	for i := range maxPending {
		ask(i)
		if (i+1)%100 == 0 || i+1 == maxPending {
			if !testnet.WaitFor(10*time.Second, func() bool { return r.stats.Misses.Load() == uint64(i+1) }) {
				t.Fatalf("%d misses waiting, want %d", r.stats.Misses.Load(), i+1)
			}
		}
	}
	ask(maxPending)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, MaxMessage)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m := decode(t, buf[:n]); m.Id != maxPending || m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("ID %d, rcode %s: want ID %d, SERVFAIL", m.Id, mdns.RcodeToString[m.Rcode], maxPending)
	}
	if r.stats.Misses.Load() != maxPending {
		t.Errorf("%d misses: the one past the bound was asked upstream", r.stats.Misses.Load())
	}
	// The upstream fails them all: each miss's place is given back.
	releaseOnce()
	if !testnet.WaitFor(30*time.Second, func() bool { return r.stats.ServFail.Load() == maxPending+1 }) {
		t.Fatalf("%d SERVFAIL answers, want %d", r.stats.ServFail.Load(), maxPending+1)
	}
	ask(maxPending + 1)
	if !testnet.WaitFor(10*time.Second, func() bool { return r.stats.Misses.Load() == maxPending+1 }) {
		t.Errorf("%d misses: a miss after the others failed was not asked upstream", r.stats.Misses.Load())
	}
}

// TestServeUDPHitAllocatesNothing: a query answered from the cache over
// UDP costs the engine no allocation, so that a warm stream makes no
// garbage to collect (a Query that escaped to the heap on every query
// once did).
func TestServeUDPHitAllocatesNothing(t *testing.T) {
	up := startFake(t, func(q *mdns.Msg) [][]byte { return [][]byte{reply(q, nil)} }, nil)
	r := newTestResolver(t, up)
	b, _ := query(t, "hit.test.", mdns.TypeA, 1232)
	if m := decode(t, r.Answer(context.Background(), nil, b, false)); len(m.Answer) != 1 {
		t.Fatalf("priming the cache: %v", m)
	}
	stub := serveUDP(t, r)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(stub))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, MaxMessage)
	ask := func() {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	ask() // the first, and the socket's buffers, out of the count
	if n := testing.AllocsPerRun(200, ask); n != 0 {
		t.Errorf("%v allocations a cached answer over UDP, want 0", n)
	}
	if hits := r.stats.Hits.Load(); hits < 200 {
		t.Errorf("%d hits: the queries were not answered from the cache", hits)
	}
}
