package dhcp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/sdk"
)

// recorder is a back end that performs nothing and remembers what reached it.
type recorder struct {
	mu      sync.Mutex
	applied []privsep.Message
}

func (r *recorder) Apply(_ context.Context, m privsep.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, m)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// compromised plays an engine that an attacker controls, talking to the
// real Server, Guard and grant of dyad-dhcp in front of a recording back end.
type compromised struct {
	t    *testing.T
	eng  *privsep.Conn
	rec  *recorder
	logs *syncBuffer
	done chan error
	id   uint64
}

func newCompromised(t *testing.T, maxRefusals int) *compromised {
	t.Helper()
	cfg, err := ParseArgs([]string{"-f", "/dev/null", "--resolv-conf", "/tmp/x/resolv.conf", "eth0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	act, eng, err := privsep.Pair()
	if err != nil {
		t.Fatal(err)
	}
	c := &compromised{t: t, eng: eng, rec: &recorder{}, logs: &syncBuffer{}, done: make(chan error, 1)}
	srv := &privsep.Server{
		Daemon:      "dhcp",
		Guard:       privsep.NewGuard(grant(cfg)),
		Backend:     c.rec,
		Log:         slog.New(slog.NewTextHandler(c.logs, nil)),
		MaxRefusals: maxRefusals,
		Welcome:     func() (*privsep.Welcome, error) { return &privsep.Welcome{}, nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { c.done <- srv.ServeSession(ctx, act) }()
	t.Cleanup(func() {
		cancel()
		eng.Close()
		act.Close()
	})
	c.request(&privsep.Hello{Version: privsep.ProtocolVersion, Daemon: "dhcp"})
	return c
}

// request sends m and returns the actuator's answer.
func (c *compromised) request(m privsep.Message) privsep.Message {
	c.t.Helper()
	c.id++
	if err := c.eng.Send(c.id, m); err != nil {
		c.t.Fatal(err)
	}
	return c.answer()
}

func (c *compromised) answer() privsep.Message {
	c.t.Helper()
	type got struct {
		m   privsep.Message
		err error
	}
	ch := make(chan got, 1)
	go func() {
		_, m, _, err := c.eng.Receive()
		ch <- got{m, err}
	}()
	select {
	case g := <-ch:
		if g.err != nil {
			c.t.Fatalf("receive: %v", g.err)
		}
		return g.m
	case <-time.After(5 * time.Second):
		c.t.Fatal("no answer from the actuator")
	}
	return nil
}

func (c *compromised) refused(m privsep.Message, want string) {
	c.t.Helper()
	r, ok := c.request(m).(*privsep.Reply)
	if !ok {
		c.t.Fatalf("%s: answer is not a reply", m.Kind())
	}
	if r.Error == "" || !strings.Contains(r.Error, want) {
		c.t.Errorf("%s: reply %q, want a refusal mentioning %q", m.Kind(), r.Error, want)
	}
}

func (c *compromised) rawWrite(b []byte) {
	c.t.Helper()
	if _, err := unix.Write(int(c.eng.File().Fd()), b); err != nil {
		c.t.Fatal(err)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

func TestCompromisedEngineIsRefused(t *testing.T) {
	c := newCompromised(t, 1000)
	cases := []struct {
		m    privsep.Message
		want string
	}{
		{&privsep.LinkUp{Interface: "eth1"}, "not one this daemon was configured for"},
		{&privsep.LinkUp{Interface: "lo"}, "lo is never owned"},
		{&privsep.AddrReplace{Interface: "eth1", Address: mustPrefix("10.0.0.5/24"), ValidLifetime: 60, PreferredLifetime: 60}, "not one this daemon"},
		{&privsep.AddrReplace{Interface: "eth0", Address: mustPrefix("127.0.0.2/8"), ValidLifetime: 60, PreferredLifetime: 60}, "loopback"},
		{&privsep.AddrReplace{Interface: "eth0", Address: mustPrefix("224.0.0.5/24"), ValidLifetime: 60, PreferredLifetime: 60}, "multicast"},
		{&privsep.AddrReplace{Interface: "eth0", Address: mustPrefix("10.0.0.255/24"), ValidLifetime: 60, PreferredLifetime: 60}, "broadcast"},
		{&privsep.AddrReplace{Interface: "eth0", Address: mustPrefix("0.0.0.0/0"), ValidLifetime: 60, PreferredLifetime: 60}, "zero"},
		{&privsep.AddrReplace{Interface: "eth0", Address: mustPrefix("10.0.0.5/4"), ValidLifetime: 60, PreferredLifetime: 60}, "prefix length"},
		{&privsep.RouteReplace{Route: privsep.Route{Interface: "eth0", Destination: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("192.0.2.1")}}, "not on-link"},
		{&privsep.LinkMTU{Interface: "eth0", MTU: 100000}, "MTU"},
		{&privsep.ResolvConf{Nameservers: []netip.Addr{mustAddr("10.0.0.1")}, Search: []string{"evil.com\nnameserver 6.6.6.6"}}, "invalid byte"},
		{&privsep.ResolvConf{Nameservers: []netip.Addr{mustAddr("255.255.255.255")}}, "broadcast"},
		{&privsep.Hostname{Name: "x"}, "not in the dhcp grant"}, // apply_hostname is off
		{&privsep.LeaseSave{Lease: privsep.Lease{Interface: "../../etc/passwd"}}, "interface name"},
		{&privsep.Welcome{}, "not an operation"},
	}
	for _, tc := range cases {
		c.refused(tc.m, tc.want)
	}

	// Removing what the daemon does not hold is answered as done, and
	// nothing reaches the host.
	for _, m := range []privsep.Message{
		&privsep.RouteRemove{Route: privsep.Route{Interface: "eth0", Destination: mustPrefix("0.0.0.0/0"), Gateway: mustAddr("10.0.0.1")}},
		&privsep.AddrRemove{Interface: "eth0", Address: mustPrefix("10.0.0.5/24")},
	} {
		if r := c.request(m).(*privsep.Reply); r.Error != "" {
			t.Errorf("%s of what is not held: %q, want a no-op", m.Kind(), r.Error)
		}
	}

	// Garbage, an unknown kind, an oversize datagram and a message with
	// ten thousand routes: each refused, none applied.
	c.rawWrite([]byte{0xff, 0x00, 0x13, 0x37})
	if r, ok := c.answer().(*privsep.Reply); !ok || r.Error == "" {
		t.Errorf("garbage: got %#v, want a refusal", r)
	}
	unknown, _ := cbor.Marshal(map[int]any{1: "exec.shell", 2: uint64(99), 3: []byte{0xa0}})
	c.rawWrite(unknown)
	if r, ok := c.answer().(*privsep.Reply); !ok || !strings.Contains(r.Error, "not in the catalogue") {
		t.Errorf("unknown kind: got %#v", r)
	}
	c.rawWrite(make([]byte, privsep.MaxMessage+100))
	if r, ok := c.answer().(*privsep.Reply); !ok || !strings.Contains(r.Error, "limit") {
		t.Errorf("oversize: got %#v", r)
	}
	routes := make([]privsep.Route, 10000)
	for i := range routes {
		routes[i] = privsep.Route{Interface: "eth0", Destination: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}
	}
	body, _ := cbor.Marshal(privsep.LeaseSave{Lease: privsep.Lease{Interface: "eth0", Routes: routes}})
	env, _ := cbor.Marshal(map[int]any{1: string(privsep.OpLeaseSave), 2: uint64(100), 3: body})
	if len(env) <= privsep.MaxMessage {
		t.Fatalf("test message of %d bytes is not oversize", len(env))
	}
	c.rawWrite(env[:privsep.MaxMessage]) // the most a datagram may carry, cut short
	if r, ok := c.answer().(*privsep.Reply); !ok || r.Error == "" {
		t.Errorf("10000 routes: got %#v", r)
	}

	if n := c.rec.count(); n != 0 {
		t.Errorf("%d operations reached the back end; want none", n)
	}
	if logs := c.logs.String(); strings.Count(logs, "refused engine request") < len(cases)+3 {
		t.Errorf("refusals not logged:\n%s", logs)
	}
	select {
	case err := <-c.done:
		t.Fatalf("the actuator's session ended: %v", err)
	default:
	}
	// The actuator still serves a legitimate request.
	if r := c.request(&privsep.LinkUp{Interface: "eth0"}).(*privsep.Reply); r.Error != "" {
		t.Errorf("legitimate request refused: %s", r.Error)
	}
}

func TestCompromisedEngineRouteFloodEndsSession(t *testing.T) {
	c := newCompromised(t, sdk.MaxRefusals)
	c.request(&privsep.AddrReplace{Interface: "eth0", Address: mustPrefix("10.0.0.5/16"), ValidLifetime: 60, PreferredLifetime: 60})
	for i := 0; i < 10000; i++ {
		c.id++
		// Half vary the destination, half only the metric: the kernel
		// holds each as a separate route, so each counts.
		dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), 32)
		metric := uint32(0)
		if i%2 == 1 {
			dst, metric = mustPrefix("172.17.0.0/16"), uint32(i)
		}
		r := privsep.Route{Interface: "eth0", Destination: dst, Gateway: mustAddr("10.0.0.1"), Source: mustAddr("10.0.0.5"), Metric: metric}
		if err := c.eng.Send(c.id, &privsep.RouteReplace{Route: r}); err != nil {
			break // the actuator hung up
		}
		if _, _, _, err := c.eng.Receive(); err != nil {
			break
		}
		select {
		case err := <-c.done:
			if !errors.Is(err, privsep.ErrHostile) {
				t.Fatalf("session ended with %v, want ErrHostile", err)
			}
			// One address plus the route limit got through; nothing more.
			if n := c.rec.count(); n != 1+64 {
				t.Errorf("%d operations applied, want %d", n, 1+64)
			}
			return
		default:
		}
	}
	t.Fatal("ten thousand routes and the session is still open")
}
