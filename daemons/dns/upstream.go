package dns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// The forwarder: what the stub does on a miss. It asks an upstream the
// client's question over UDP, from a socket of its own (a port the kernel
// picks at random) with an ID of its own, and over TCP when the answer is
// truncated; it accepts only a reply that carries that ID and the
// question exactly as sent, case and all. Upstreams that fail are set
// aside for a while, and the next one is asked.

// Route sends the names under Domain to Upstreams; the longest domain
// that holds a name wins, and "." holds every name.
type Route struct {
	Domain    string           `cbor:"1,keyasint"`
	Upstreams []netip.AddrPort `cbor:"2,keyasint"`
}

// ForwarderConfig is what the forwarder needs.
type ForwarderConfig struct {
	Routes []Route
	// Timeout bounds one exchange with one upstream.
	Timeout time.Duration
	// Dial opens the connections to upstreams; nil is a net.Dialer's.
	// (Tests give one that opens them in a network namespace.)
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// TLS names the upstreams asked over TLS (RFC 7858), each with the
	// name its certificate must carry; RootCAs are the authorities that
	// certificate must chain to (nil: the system's).
	TLS     map[netip.AddrPort]string
	RootCAs *x509.CertPool
}

// Defaults of the forwarder.
const (
	DefaultUpstreamTimeout = 2 * time.Second
	// failuresToDown is how many failures in a row set an upstream aside.
	failuresToDown = 3
	minDownFor     = time.Second
	maxDownFor     = time.Minute
)

// Forwarder is safe for concurrent use.
type Forwarder struct {
	timeout time.Duration
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	tls     map[netip.AddrPort]string
	roots   *x509.CertPool

	mu     sync.Mutex
	routes []route
}

type route struct {
	suffix    []byte // the domain in wire form, lower case, without the root label
	upstreams []*upstream
}

type upstream struct {
	addr netip.AddrPort
	udp  udpSockets

	// Under the Forwarder's mu.
	failures  int
	downUntil time.Time
	downFor   time.Duration
}

// NewForwarder checks the routes and returns a forwarder.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	f := &Forwarder{timeout: cfg.Timeout, dial: cfg.Dial, tls: cfg.TLS, roots: cfg.RootCAs}
	for a, name := range cfg.TLS {
		if _, err := domainWire(name); err != nil || name == "" {
			return nil, fmt.Errorf("dns: upstream %s over TLS: name %q: not a domain name", a, name)
		}
	}
	if f.dial == nil {
		f.dial = new(net.Dialer).DialContext
	}
	if f.timeout <= 0 {
		f.timeout = DefaultUpstreamTimeout
	}
	if err := f.SetRoutes(cfg.Routes); err != nil {
		return nil, err
	}
	return f, nil
}

// SetRoutes replaces the routes, as when the DHCP client's resolv.conf
// names other upstreams; an upstream that stays keeps its health. The
// routes are all checked first: on an error nothing changes.
func (f *Forwarder) SetRoutes(routes []Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	known := map[netip.AddrPort]*upstream{}
	for _, r := range f.routes {
		for _, u := range r.upstreams {
			known[u.addr] = u
		}
	}
	var out []route
	for _, r := range routes {
		wire, err := domainWire(r.Domain)
		if err != nil {
			return fmt.Errorf("dns: route %q: %w", r.Domain, err)
		}
		if len(r.Upstreams) == 0 {
			return fmt.Errorf("dns: route %q: no upstream", r.Domain)
		}
		rt := route{suffix: wire}
		for _, a := range r.Upstreams {
			if !a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified() || a.Addr().IsMulticast() {
				return fmt.Errorf("dns: route %q: upstream %s: not a unicast address and port", r.Domain, a)
			}
			if known[a] == nil {
				known[a] = &upstream{addr: a}
			}
			rt.upstreams = append(rt.upstreams, known[a])
		}
		out = append(out, rt)
	}
	// An upstream no longer asked closes its socket.
	for _, r := range out {
		for _, u := range r.upstreams {
			delete(known, u.addr)
		}
	}
	for _, u := range known {
		u.udp.drop()
	}
	f.routes = out
	return nil
}

// domainWire is a domain's labels in wire form, lower case, without the
// root's empty label: "Example.test." gives "\x07example\x04test".
func domainWire(domain string) ([]byte, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if domain == "" {
		return []byte{}, nil
	}
	var out []byte
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 {
			return nil, fmt.Errorf("label %q: want 1 to 63 bytes", label)
		}
		out = append(out, byte(len(label)))
		out = append(out, label...)
	}
	if len(out) > 254 {
		return nil, errors.New("longer than 255 bytes")
	}
	return out, nil
}

// routeFor returns the upstreams of the longest route that holds name (in
// wire form, uncompressed), or nil.
func (f *Forwarder) routeFor(name []byte) []*upstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	lower := bytes.ToLower(name[:len(name)-1]) // without the root label
	var best *route
	for i := range f.routes {
		r := &f.routes[i]
		if best != nil && len(r.suffix) <= len(best.suffix) {
			continue
		}
		if len(r.suffix) == 0 || bytes.HasSuffix(lower, r.suffix) && labelBoundary(lower, len(lower)-len(r.suffix)) {
			best = r
		}
	}
	if best == nil {
		return nil
	}
	return best.upstreams
}

// labelBoundary reports whether a label of name starts at off.
func labelBoundary(name []byte, off int) bool {
	for i := 0; i < len(name); i += int(name[i]) + 1 {
		if i == off {
			return true
		}
	}
	return off == len(name)
}

// ErrNoUpstream means no upstream answered.
var ErrNoUpstream = errors.New("dns: no upstream answered")

// Exchange asks the question of q upstream and returns the reply, checked
// (its ID set back to 0), or an error wrapping ErrNoUpstream when none
// answered within ctx.
func (f *Forwarder) Exchange(ctx context.Context, q *Query) ([]byte, error) {
	ups := f.routeFor(q.Name)
	if len(ups) == 0 {
		return nil, errNoRoute
	}
	return f.exchange(ctx, q, f.order(ups, time.Now()), nil)
}

var errNoRoute = fmt.Errorf("%w: no route for the name", ErrNoUpstream)

// ExchangeAsync is Exchange that does not wait: it calls done with what
// Exchange would return with a context that ends at deadline. On the
// common path, the first upstream's reply over UDP, done runs on the
// goroutine that reads that upstream's socket, with the reader's buffer:
// it must copy what it keeps, and should not block, for the replies to
// the other queries on that socket wait meanwhile. Whatever else it takes
// (TCP for a truncated answer, TLS, the next upstream) goes on a goroutine
// of its own. q must stay as it is until done is called.
//
// A miss costs less so: no goroutine waits on it, nor is woken to hand
// the reply on.
func (f *Forwarder) ExchangeAsync(q *Query, deadline time.Time, done func(reply []byte, err error)) {
	ups := f.routeFor(q.Name)
	if len(ups) == 0 {
		done(nil, errNoRoute)
		return
	}
	order := f.order(ups, time.Now())
	u := order[0]
	slow := func(first *udpOutcome) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		done(f.exchange(ctx, q, order, first))
	}
	if _, ok := f.tls[u.addr]; ok {
		go slow(nil)
		return
	}
	timeout := max(min(f.timeout, time.Until(deadline)), 0)
	_, _, err := f.sendUDP(u, q, timeout, func(query, reply []byte, err error) {
		if err == nil && !truncated(reply) {
			if reply, err := accept(reply); err == nil {
				f.report(u, nil)
				done(reply, nil)
				return
			}
		}
		go slow(&udpOutcome{query: query, reply: append([]byte(nil), reply...), err: err})
	})
	if err != nil {
		go slow(&udpOutcome{err: err})
	}
}

// udpOutcome is what the first upstream's exchange over UDP came to.
type udpOutcome struct {
	query, reply []byte
	err          error
}

// exchange asks the upstreams in order, and returns the first answer;
// first, when not nil, is what order[0] answered over UDP already, which
// counts even if it came as ctx ended.
func (f *Forwarder) exchange(ctx context.Context, q *Query, order []*upstream, first *udpOutcome) ([]byte, error) {
	var errs []error
	for i, u := range order {
		if ctx.Err() != nil && (i > 0 || first == nil) {
			break
		}
		var reply []byte
		var err error
		if i == 0 && first != nil {
			reply, err = f.afterUDP(ctx, u, first.query, first.reply, first.err)
		} else {
			reply, err = f.exchangeWith(ctx, u, q)
		}
		if err == nil {
			f.report(u, nil)
			return reply, nil
		}
		f.report(u, err)
		errs = append(errs, fmt.Errorf("%s: %w", u.addr, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoUpstream, ctx.Err())
	}
	return nil, fmt.Errorf("%w: %w", ErrNoUpstream, errors.Join(errs...))
}

// order returns the upstreams to try, those not set aside first, each
// group in the configured order.
func (f *Forwarder) order(ups []*upstream, now time.Time) []*upstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*upstream, 0, len(ups))
	for _, u := range ups {
		if !now.Before(u.downUntil) {
			out = append(out, u)
		}
	}
	for _, u := range ups {
		if now.Before(u.downUntil) {
			out = append(out, u)
		}
	}
	return out
}

// report counts an upstream's success or failure; failuresToDown in a row
// set it aside, for twice as long each time, up to maxDownFor.
func (f *Forwarder) report(u *upstream, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		u.failures, u.downUntil, u.downFor = 0, time.Time{}, 0
		return
	}
	u.failures++
	if u.failures >= failuresToDown {
		u.downFor = min(max(2*u.downFor, minDownFor), maxDownFor)
		u.downUntil = time.Now().Add(u.downFor)
		u.failures = 0
	}
}

// Healthy says of each upstream whether it is in use (not set aside).
func (f *Forwarder) Healthy(now time.Time) map[netip.AddrPort]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.AddrPort]bool{}
	for _, r := range f.routes {
		for _, u := range r.upstreams {
			out[u.addr] = !now.Before(u.downUntil)
		}
	}
	return out
}

// errServerFailure is an upstream's SERVFAIL or REFUSED: the next one may
// do better.
var errServerFailure = errors.New("the upstream failed")

func (f *Forwarder) exchangeWith(ctx context.Context, u *upstream, q *Query) ([]byte, error) {
	if name, ok := f.tls[u.addr]; ok {
		reply, err := f.exchangeStream(ctx, u.addr, upstreamQuery(randomID(), q), name)
		if err != nil {
			return nil, err
		}
		return accept(reply)
	}
	query, reply, err := f.exchangeUDP(ctx, u, q)
	return f.afterUDP(ctx, u, query, reply, err)
}

// afterUDP takes an exchange over UDP on: to TCP for a truncated answer.
func (f *Forwarder) afterUDP(ctx context.Context, u *upstream, query, reply []byte, err error) ([]byte, error) {
	if err == nil && truncated(reply) {
		reply, err = f.exchangeStream(ctx, u.addr, query, "")
	}
	if err != nil {
		return nil, err
	}
	return accept(reply)
}

func truncated(reply []byte) bool { return binary.BigEndian.Uint16(reply[2:])&flagTC != 0 }

// accept returns a checked reply, its ID set back to 0, or an error for
// a reply that another upstream may better: SERVFAIL, REFUSED.
func accept(reply []byte) ([]byte, error) {
	switch rcode := binary.BigEndian.Uint16(reply[2:]) & 0xf; rcode {
	case RcodeServFail, RcodeRefused:
		return nil, fmt.Errorf("%w: rcode %d", errServerFailure, rcode)
	}
	binary.BigEndian.PutUint16(reply, 0)
	return reply, nil
}

// randomID is a query ID no spoofer can foresee: math/rand/v2's
// top-level generator is ChaCha8, seeded by the kernel, for each thread.
func randomID() uint16 { return uint16(rand.Uint32()) }

// upstreamQuery is the query the stub sends for q: its question as the
// client wrote it, recursion desired, and an OPT record offering 1232
// bytes with the client's DO bit.
func upstreamQuery(id uint16, q *Query) []byte {
	b := make([]byte, 0, headerLen+len(q.Name)+4+11)
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, flagRD)
	b = append(b, 0, 1, 0, 0, 0, 0, 0, 1)
	b = append(b, q.Name...)
	b = binary.BigEndian.AppendUint16(b, q.Type)
	b = binary.BigEndian.AppendUint16(b, q.Class)
	b = appendOPT(b, ourUDPSize)
	if q.DO {
		b[len(b)-4] |= 0x80 // the OPT's flags: DO
	}
	return b
}

// checkReply reports what is wrong with a reply to query: not a response,
// another ID, another opcode, or another question (the same bytes are
// wanted: the case the query used too).
func checkReply(query, reply []byte) error {
	if len(reply) < headerLen {
		return fmt.Errorf("a reply of %d bytes", len(reply))
	}
	flags := binary.BigEndian.Uint16(reply[2:])
	switch {
	case flags&flagQR == 0:
		return errors.New("not a response")
	case !bytes.Equal(reply[:2], query[:2]):
		return errors.New("another ID")
	case flags>>11&0xf != 0:
		return fmt.Errorf("opcode %d", flags>>11&0xf)
	}
	sent, err := ParseQuestion(query)
	if err != nil {
		return err
	}
	got, err := ParseQuestion(reply)
	if err != nil {
		return fmt.Errorf("its question: %w", err)
	}
	if !bytes.Equal(got.Name, sent.Name) || got.Type != sent.Type || got.Class != sent.Class {
		return errors.New("another question")
	}
	return nil
}

// connect connects to addr; the connection's reads and writes end with ctx,
// and closing it releases ctx's hold on it.
func (f *Forwarder) connect(ctx context.Context, network string, addr netip.AddrPort) (*ctxConn, error) {
	conn, err := f.dial(ctx, network, addr.String())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// exchangeStream asks over TCP (RFC 7766), for a truncated answer, or
// over TLS (RFC 7858) when tlsName names the certificate the upstream
// must show.
func (f *Forwarder) exchangeStream(ctx context.Context, addr netip.AddrPort, query []byte, tlsName string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	proto := "tcp"
	tcp, err := f.connect(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer tcp.Close()
	var conn net.Conn = tcp
	if tlsName != "" {
		proto = "tls"
		tc := tls.Client(tcp, &tls.Config{ServerName: tlsName, RootCAs: f.roots, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(query)))
	if _, err := conn.Write(append(framed, query...)); err != nil {
		return nil, err
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", proto, err)
	}
	reply := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, reply); err != nil {
		return nil, fmt.Errorf("%s: %w", proto, err)
	}
	if err := checkReply(query, reply); err != nil {
		return nil, fmt.Errorf("%s: the reply: %w", proto, err)
	}
	return reply, nil
}
