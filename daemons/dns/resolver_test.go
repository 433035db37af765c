package dns

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
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
