// Package ntp is dyad-ntp, a privilege-separated NTP client that
// disciplines the system clock.
//
// The files say which process runs what: engine.go, packet.go, filter.go,
// select.go and discipline.go are the protocol, in the unprivileged engine,
// without I/O; engine_process.go is the engine's driver (sockets, timers,
// the pipe); actuator_process.go is the privileged actuator, which holds
// CAP_SYS_TIME and performs the clock operations its grant (grant.go)
// allows; supervisor_process.go starts the two.
package ntp

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

// Mode is what the engine is run for.
type Mode int

// The modes.
const (
	// ModeService disciplines the clock for as long as it runs.
	ModeService Mode = iota
	// ModeOnce sets the clock once and is done (dyad-ntp -1).
	ModeOnce
	// ModeQuery measures and changes nothing (dyad-ntp -q).
	ModeQuery
)

// SourceConfig is a server or a pool the configuration names.
type SourceConfig struct {
	// Name is a host name or an address.
	Name string `cbor:"1,keyasint"`
	// Pool takes several of the name's addresses, each a source.
	Pool bool `cbor:"2,keyasint,omitempty"`
	// Port is the server's port; 0 means 123.
	Port uint16 `cbor:"3,keyasint,omitempty"`
}

// Config is what the engine needs to know; the actuator sends it in the
// Welcome.
type EngineConfig struct {
	Mode    Mode           `cbor:"1,keyasint"`
	Sources []SourceConfig `cbor:"2,keyasint"`
	// MinPoll and MaxPoll bound the poll interval, as powers of two
	// seconds (6 and 10: 64 s to 17 min).
	MinPoll int `cbor:"3,keyasint"`
	MaxPoll int `cbor:"4,keyasint"`
	// BurstCount packets are sent to each new source, BurstInterval apart
	// (negative: each as soon as the last is answered; zero: 2 s).
	BurstCount    int           `cbor:"5,keyasint"`
	BurstInterval time.Duration `cbor:"6,keyasint"`
	// ReplyTimeout is how long a query waits for its answer.
	ReplyTimeout time.Duration `cbor:"7,keyasint"`
	// StepThreshold: a larger offset is stepped, a smaller one slewed.
	StepThreshold time.Duration `cbor:"8,keyasint"`
	// PanicThreshold: once the clock is set, a larger offset is refused.
	PanicThreshold time.Duration `cbor:"9,keyasint"`
	// MaxInitialStep caps the first correction; zero allows any.
	MaxInitialStep time.Duration `cbor:"10,keyasint,omitempty"`
	// MinSources is the least number of agreeing sources that may set
	// the clock.
	MinSources int `cbor:"11,keyasint"`
	// MaxDistance: a source whose root distance is larger is not used.
	MaxDistance time.Duration `cbor:"12,keyasint"`
	// MaxSources bounds the sources, all origins together.
	MaxSources int `cbor:"13,keyasint"`
	// DHCPServers is the file of servers a DHCP client wrote, which the
	// engine's driver reads; empty for none.
	DHCPServers string `cbor:"14,keyasint,omitempty"`
	// SimulatedClock says the actuator disciplines a virtual clock, which
	// the driver reads through the actuator's replies.
	SimulatedClock bool `cbor:"15,keyasint,omitempty"`
	// Timeout bounds a one-shot run (-1).
	Timeout time.Duration `cbor:"16,keyasint,omitempty"`
}

// The defaults.
const (
	DefaultMinPoll        = 6
	DefaultMaxPoll        = 10
	DefaultBurstCount     = 4
	DefaultBurstInterval  = 2 * time.Second
	DefaultReplyTimeout   = time.Second
	DefaultStepThreshold  = 128 * time.Millisecond
	DefaultPanicThreshold = 1000 * time.Second
	DefaultMaxDistance    = 1500 * time.Millisecond
	DefaultMaxSources     = 16
	// MinPollBound and MaxPollBound are what the configuration may say:
	// 1/64 s (tests) to 36 hours.
	MinPollBound = -6
	MaxPollBound = 17
	// poolSize is how many of a pool's addresses become sources.
	poolSize = 4
	// maxKoDPoll is the longest a rate-limiting server makes the engine
	// wait, 2^17 s (36 hours).
	maxKoDPoll = 17
	// resolveWait is how long the first round waits for names.
	resolveWait = 5 * time.Second
	// maxResolveDelay bounds the wait before a failed name is tried again.
	maxResolveDelay = 10 * time.Minute
	// localPrecision is what the local clock's reading is assumed good to.
	localPrecision = time.Microsecond
)

// Action is something the engine asks its driver to do.
type Action interface{ isAction() }

// Send asks for Packet to go to To. The driver reports the moment it left
// with Sent(Token, ...).
type Send struct {
	Token  uint64
	To     netip.AddrPort
	Packet []byte
}

// Resolve asks for a name's addresses; the answer goes to Resolved.
type Resolve struct {
	Name string
}

// Apply asks the actuator for clock operations, in order; each reply goes
// to Applied.
type Apply struct {
	Ops []privsep.Message
}

func (Send) isAction()    {}
func (Resolve) isAction() {}
func (Apply) isAction()   {}

// Origin says where a source came from.
type Origin string

// The origins.
const (
	OriginConfig Origin = "config"
	OriginPool   Origin = "pool"
	OriginDHCP   Origin = "dhcp"
)

// Verdict is what the engine made of a source at the last selection.
type Verdict string

// The verdicts.
const (
	VerdictNew         Verdict = "new"            // no sample yet
	VerdictSelected    Verdict = "selected"       // a survivor: its offset counts
	VerdictFalseticker Verdict = "falseticker"    // outside the majority
	VerdictNoMajority  Verdict = "no majority"    // the sources did not agree
	VerdictUnreachable Verdict = "unreachable"    // no answer to its last 8 polls
	VerdictTooFar      Verdict = "too far"        // root distance beyond the maximum
	VerdictDenied      Verdict = "denied"         // it sent a Kiss-o'-Death DENY or RSTR
	VerdictUnusable    Verdict = "unsynchronised" // its last reply said it had no time
)

// source is one server the engine polls.
type source struct {
	id     int
	name   string // the configured name, or the address
	origin Origin
	addr   netip.AddrPort
	// literal is a source configured (or learned) as an address, which no
	// lookup can replace.
	literal bool

	filter   filter
	reach    uint8 // one bit a round, 1 where a valid reply came
	rounds   int
	answered bool // in the current round

	// The current query.
	toSend   int
	nextSend time.Time
	query    *query

	// What its last valid reply said of itself.
	stratum              uint8
	leap                 Leap
	rootDelay, rootDisp  time.Duration
	refID                uint32
	precision            int8
	rateKissed           bool
	kodPoll              int // the poll exponent RATE kisses imposed, if rateKissed
	skipUntil            time.Time
	denied               bool
	verdict              Verdict
	lastErr              string
	distance             time.Duration // at the last selection
	est                  estimate
	hasEst, burstStarted bool
}

type query struct {
	token      uint64
	nonce      Time64
	sent       time.Time
	deadline   time.Time
	timeoutErr string
}

// name is a configured name being resolved.
type name struct {
	cfg      SourceConfig
	origin   Origin
	next     time.Time // when to resolve it; zero while a lookup runs
	failures int
	pending  bool
}

// Engine is the NTP client's protocol: fed packets, timer expiries, name
// lookups and the actuator's replies, it returns what to send, to resolve
// and to apply. It performs no I/O.
type Engine struct {
	cfg     EngineConfig
	log     *slog.Logger
	rnd     *rand.Rand
	sources []*source
	names   []*name
	nextID  int
	token   uint64
	actions []Action

	started   time.Time
	inRound   bool
	roundAt   time.Time
	nextRound time.Time
	sysPoll   int
	pollScore int

	clock    clockState
	lastSel  *Selection
	lastUsed time.Time // the newest sample the last update used
	done     bool
	result   string
}

// NewEngine returns an engine that starts at now. rnd makes the queries'
// nonces: it must be unpredictable (seeded from crypto/rand) outside tests.
func NewEngine(cfg EngineConfig, log *slog.Logger, rnd *rand.Rand, now time.Time) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), log: log, rnd: rnd, started: now}
	e.sysPoll = e.cfg.MinPoll
	e.clock.init(e.cfg)
	for _, sc := range e.cfg.Sources {
		e.addName(now, sc, originOf(sc))
	}
	e.nextRound = now
	if e.cfg.Mode != ModeQuery {
		// The clock's frequency, to carry on from where the kernel is.
		e.actions = append(e.actions, Apply{Ops: []privsep.Message{&privsep.ClockRead{}}})
	}
	return e
}

func originOf(sc SourceConfig) Origin {
	if sc.Pool {
		return OriginPool
	}
	return OriginConfig
}

// withDefaults fills what the configuration left zero.
func (c EngineConfig) withDefaults() EngineConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MinPoll, DefaultMinPoll)
	def(&c.MaxPoll, DefaultMaxPoll)
	def(&c.BurstCount, DefaultBurstCount)
	def(&c.MinSources, 1)
	def(&c.MaxSources, DefaultMaxSources)
	defDur(&c.BurstInterval, DefaultBurstInterval)
	defDur(&c.ReplyTimeout, DefaultReplyTimeout)
	defDur(&c.StepThreshold, DefaultStepThreshold)
	defDur(&c.PanicThreshold, DefaultPanicThreshold)
	defDur(&c.MaxDistance, DefaultMaxDistance)
	c.MinPoll = min(max(c.MinPoll, MinPollBound), MaxPollBound)
	c.MaxPoll = min(max(c.MaxPoll, c.MinPoll), MaxPollBound)
	return c
}

// Check reports what is wrong with a configuration, naming the key.
func (c EngineConfig) Check() error {
	switch {
	case c.Mode < ModeService || c.Mode > ModeQuery:
		return fmt.Errorf("mode %d: unknown", c.Mode)
	case c.MinPoll != 0 && (c.MinPoll < MinPollBound || c.MinPoll > MaxPollBound):
		return fmt.Errorf("minpoll %d: want %d to %d", c.MinPoll, MinPollBound, MaxPollBound)
	case c.MaxPoll != 0 && (c.MaxPoll < MinPollBound || c.MaxPoll > MaxPollBound):
		return fmt.Errorf("maxpoll %d: want %d to %d", c.MaxPoll, MinPollBound, MaxPollBound)
	case c.MinPoll != 0 && c.MaxPoll != 0 && c.MaxPoll < c.MinPoll:
		return fmt.Errorf("maxpoll %d is below minpoll %d", c.MaxPoll, c.MinPoll)
	case c.BurstCount < 0 || c.BurstCount > 8:
		return fmt.Errorf("burst %d: want 1 to 8", c.BurstCount)
	case c.ReplyTimeout < 0 || c.StepThreshold < 0 || c.PanicThreshold < 0 || c.MaxInitialStep < 0 || c.MaxDistance < 0:
		return fmt.Errorf("a negative duration")
	case c.StepThreshold > privsep.DefaultMaxSlew:
		return fmt.Errorf("step threshold %s: above the %s an actuator slews", c.StepThreshold, privsep.DefaultMaxSlew)
	case c.MinSources < 0 || c.MinSources > DefaultMaxSources:
		return fmt.Errorf("minsources %d: want 1 to %d", c.MinSources, DefaultMaxSources)
	case c.MaxSources < 0 || c.MaxSources > 64:
		return fmt.Errorf("maxsources %d: want 1 to 64", c.MaxSources)
	case len(c.Sources) > 64:
		return fmt.Errorf("%d servers: at most 64", len(c.Sources))
	}
	for _, s := range c.Sources {
		if err := checkHostName(s.Name); err != nil {
			return fmt.Errorf("server %q: %w", s.Name, err)
		}
	}
	return nil
}

// TakeActions returns and clears what the engine asked for.
func (e *Engine) TakeActions() []Action {
	a := e.actions
	e.actions = nil
	return a
}

// Done reports whether a one-shot or query run has finished, and how.
func (e *Engine) Done() (bool, string) { return e.done, e.result }

func (e *Engine) finish(result string) {
	if !e.done {
		e.done, e.result = true, result
	}
}

// Deadline is when the engine next wants HandleTimer.
func (e *Engine) Deadline() time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if e.done {
		return d
	}
	if !e.inRound {
		earlier(e.nextRound)
	}
	for _, s := range e.sources {
		if s.query != nil {
			earlier(s.query.deadline)
		} else if s.toSend > 0 {
			earlier(s.nextSend)
		}
	}
	for _, n := range e.names {
		if !n.pending {
			earlier(n.next)
		}
	}
	return d
}

// HandleTimer runs what is due at now.
func (e *Engine) HandleTimer(now time.Time) {
	if e.done {
		return
	}
	for _, n := range e.names {
		if !n.pending && !n.next.IsZero() && !now.Before(n.next) {
			n.pending = true
			e.actions = append(e.actions, Resolve{Name: n.cfg.Name})
		}
	}
	for _, s := range e.sources {
		if s.query != nil && !now.Before(s.query.deadline) {
			s.lastErr = fmt.Sprintf("no reply within %s", e.cfg.ReplyTimeout)
			s.query = nil
			s.nextSend = now
		}
		if s.query == nil && s.toSend > 0 && !now.Before(s.nextSend) {
			e.send(now, s)
		}
	}
	if e.inRound {
		e.maybeEndRound(now)
	}
	if !e.inRound && !now.Before(e.nextRound) {
		e.startRound(now)
	}
}

// startRound polls every source that may be polled. The first round waits
// for the names to be resolved, for a while.
func (e *Engine) startRound(now time.Time) {
	if e.roundAt.IsZero() && now.Sub(e.started) < resolveWait && slices.ContainsFunc(e.names, func(n *name) bool { return n.failures == 0 && !e.hasSource(n) }) {
		e.nextRound = now.Add(100 * time.Millisecond)
		return
	}
	e.inRound, e.roundAt = true, now
	for _, s := range e.sources {
		if s.denied || now.Before(s.skipUntil) {
			continue
		}
		if s.pollExp(e.sysPoll) > e.sysPoll {
			// The interval a RATE kiss imposed holds from now on, not
			// only until the first poll after it.
			s.skipUntil = now.Add(pollInterval(s.kodPoll))
		}
		s.rounds++
		s.reach <<= 1
		s.answered = false
		s.toSend = 1
		if !s.burstStarted {
			s.burstStarted = true
			s.toSend = e.cfg.BurstCount
		}
		s.nextSend = now
		e.send(now, s)
	}
	e.maybeEndRound(now)
}

// hasSource reports whether a name has a source already.
func (e *Engine) hasSource(n *name) bool {
	return slices.ContainsFunc(e.sources, func(s *source) bool { return s.name == n.cfg.Name && s.origin == n.origin })
}

// maybeEndRound ends the round once no query is under way.
func (e *Engine) maybeEndRound(now time.Time) {
	for _, s := range e.sources {
		if s.query != nil || s.toSend > 0 {
			return
		}
	}
	e.inRound = false
	// Collected first: losing a source may remove it from e.sources.
	var lost []*source
	for _, s := range e.sources {
		if s.rounds > 0 && s.reach == 0 && s.rounds >= 8 && s.verdict != VerdictUnreachable && !s.denied {
			s.verdict = VerdictUnreachable
			e.log.Warn("source unreachable", "source", s.name, "address", s.addr.String())
			lost = append(lost, s)
		}
	}
	for _, s := range lost {
		e.lostSource(now, s)
	}
	// A step moves the clock, and now with it.
	now = now.Add(e.update(now))
	if e.cfg.Mode == ModeQuery {
		e.finish("measured")
		return
	}
	e.nextRound = e.roundAt.Add(pollInterval(e.sysPoll))
	if !e.nextRound.After(now) {
		e.nextRound = now.Add(pollInterval(e.sysPoll))
	}
}

// lostSource drops a source that stopped answering when it came from a
// name, and resolves the name again: its address may have changed.
func (e *Engine) lostSource(now time.Time, s *source) {
	if s.literal {
		return // an address: nothing to look up again
	}
	e.removeSource(s)
	e.resolveAgain(s, now)
}

// resolveAgain looks up the name a source came from again at when.
func (e *Engine) resolveAgain(s *source, when time.Time) {
	for _, n := range e.names {
		if n.cfg.Name == s.name && n.origin == s.origin && !n.pending {
			n.next = when
		}
	}
}

func (e *Engine) removeSource(s *source) {
	e.sources = slices.DeleteFunc(e.sources, func(x *source) bool { return x == s })
}

// pollExp is the poll exponent of s when the engine's is sys: the longer
// of sys and what RATE kisses imposed.
func (s *source) pollExp(sys int) int {
	if s.rateKissed {
		return max(sys, s.kodPoll)
	}
	return sys
}

func pollInterval(exp int) time.Duration {
	if exp >= 0 {
		return time.Duration(1<<exp) * time.Second
	}
	return time.Second >> -exp
}

// send sends the next query of s's burst.
func (e *Engine) send(now time.Time, s *source) {
	e.token++
	q := &query{token: e.token, nonce: Time64(e.rnd.Uint64()), sent: now, deadline: now.Add(e.cfg.ReplyTimeout)}
	s.query = q
	s.toSend--
	// The transmit timestamp is a random nonce, not the time: it tells
	// an on-path observer nothing of this clock, and an off-path one
	// cannot guess what the reply must echo (RFC 9109's advice for
	// clients, after chrony and ntpd-rs).
	h := Header{Leap: LeapNone, Version: 4, Mode: ModeClient, Poll: int8(e.sysPoll), Transmit: q.nonce}
	e.actions = append(e.actions, Send{Token: q.token, To: s.addr, Packet: h.Append(make([]byte, 0, HeaderLen))})
}

// Sent tells the engine when the query with token left, by the local
// clock: a closer reading than the one Send was made at.
func (e *Engine) Sent(token uint64, at time.Time) {
	for _, s := range e.sources {
		if s.query != nil && s.query.token == token {
			s.query.sent = at
		}
	}
}

// Resolved gives the engine a name's addresses, or the error looking it up.
func (e *Engine) Resolved(now time.Time, host string, addrs []netip.Addr, err error) {
	for _, n := range e.names {
		if n.cfg.Name != host || !n.pending {
			continue
		}
		n.pending = false
		if err == nil && len(addrs) == 0 {
			err = fmt.Errorf("no address")
		}
		if err != nil {
			n.failures++
			delay := min(time.Second<<min(n.failures, 10), maxResolveDelay)
			n.next = now.Add(delay)
			e.log.Warn("cannot resolve a server's name", "name", host, "err", err.Error(), "retry in", delay.String())
			continue
		}
		n.failures, n.next = 0, time.Time{}
		want := 1
		if n.cfg.Pool {
			want = poolSize
		}
		for _, a := range addrs {
			if e.count(n) >= want {
				break
			}
			e.addSource(n.cfg.Name, n.origin, netip.AddrPortFrom(a.Unmap(), portOf(n.cfg)))
		}
	}
}

// count is how many sources a name has.
func (e *Engine) count(n *name) int {
	c := 0
	for _, s := range e.sources {
		if s.name == n.cfg.Name && s.origin == n.origin && !s.denied {
			c++
		}
	}
	return c
}

func portOf(sc SourceConfig) uint16 {
	if sc.Port == 0 {
		return 123
	}
	return sc.Port
}

// addName adds a configured server or pool: at once when it is an address,
// through a lookup otherwise.
func (e *Engine) addName(now time.Time, sc SourceConfig, origin Origin) {
	if a, err := netip.ParseAddr(sc.Name); err == nil {
		if s := e.addSource(sc.Name, origin, netip.AddrPortFrom(a.Unmap(), portOf(sc))); s != nil {
			s.literal = true
		}
		return
	}
	e.names = append(e.names, &name{cfg: sc, origin: origin, next: now})
}

// addSource adds a source and returns it, unless its address is polled
// already or the engine has as many as it may.
func (e *Engine) addSource(nm string, origin Origin, ap netip.AddrPort) *source {
	if !ap.Addr().IsValid() || slices.ContainsFunc(e.sources, func(s *source) bool { return s.addr == ap }) {
		return nil
	}
	if len(e.sources) >= e.cfg.MaxSources {
		e.log.Warn("too many sources: ignoring one", "source", nm, "address", ap.String(), "max", e.cfg.MaxSources)
		return nil
	}
	e.nextID++
	s := &source{id: e.nextID, name: nm, origin: origin, addr: ap, verdict: VerdictNew}
	e.sources = append(e.sources, s)
	e.log.Debug("new source", "source", nm, "address", ap.String(), "origin", string(origin))
	return s
}

// SetDHCPServers replaces the servers a DHCP client learned (option 42).
func (e *Engine) SetDHCPServers(now time.Time, addrs []netip.Addr) {
	keep := map[netip.AddrPort]bool{}
	for _, a := range addrs {
		keep[netip.AddrPortFrom(a.Unmap(), 123)] = true
	}
	e.sources = slices.DeleteFunc(e.sources, func(s *source) bool { return s.origin == OriginDHCP && !keep[s.addr] })
	for _, a := range addrs {
		if s := e.addSource(a.Unmap().String(), OriginDHCP, netip.AddrPortFrom(a.Unmap(), 123)); s != nil {
			s.literal = true
		}
	}
}

// HandlePacket feeds one datagram from from, received at now by the local
// clock. A reply that fails a check is dropped, and the reason returned.
func (e *Engine) HandlePacket(now time.Time, from netip.AddrPort, b []byte) error {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	i := slices.IndexFunc(e.sources, func(s *source) bool { return s.addr == from })
	if i < 0 {
		return fmt.Errorf("ntp: reply from %s, which was not asked", from)
	}
	s := e.sources[i]
	err := e.handleReply(now, s, b)
	if err != nil {
		s.lastErr = err.Error()
		e.log.Debug("reply rejected", "source", s.name, "address", from.String(), "reason", err.Error())
	}
	if s.query == nil && s.toSend > 0 && !now.Before(s.nextSend) {
		e.send(now, s) // the next of a burst without pause
	}
	if e.inRound {
		e.maybeEndRound(now)
	}
	return err
}

func (e *Engine) handleReply(now time.Time, s *source, b []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	q := s.query
	if q == nil {
		return fmt.Errorf("ntp: %s: no query outstanding (a late or repeated reply)", s.addr)
	}
	if h.Origin != q.nonce {
		return fmt.Errorf("ntp: %s: origin timestamp does not match the query (late, repeated or forged)", s.addr)
	}
	// The reply answers the query, whatever it says: the query is over.
	s.query = nil
	s.nextSend = now.Add(max(e.cfg.BurstInterval, 0))
	if h.Mode != ModeServer {
		return fmt.Errorf("ntp: %s: mode %d, not a server's", s.addr, h.Mode)
	}
	if h.Version < 1 || h.Version > 4 {
		return fmt.Errorf("ntp: %s: version %d", s.addr, h.Version)
	}
	if code, ok := h.KissCode(); ok {
		return e.kiss(now, s, code)
	}
	switch {
	case h.Stratum == StratumKoD:
		return fmt.Errorf("ntp: %s: stratum 0", s.addr)
	case h.Stratum >= StratumUnset:
		s.verdict = VerdictUnusable
		return fmt.Errorf("ntp: %s: stratum %d: the server is not synchronised", s.addr, h.Stratum)
	case h.Leap == LeapAlarm:
		s.verdict = VerdictUnusable
		return fmt.Errorf("ntp: %s: leap indicator alarm: the server is not synchronised", s.addr)
	case h.Transmit == 0:
		return fmt.Errorf("ntp: %s: zero transmit timestamp", s.addr)
	case h.Receive == 0:
		return fmt.Errorf("ntp: %s: zero receive timestamp", s.addr)
	}
	rootDelay, rootDisp := h.RootDelay.Duration(), h.RootDispersion.Duration()
	if d := rootDelay/2 + rootDisp; d > e.cfg.MaxDistance {
		s.verdict = VerdictTooFar
		return fmt.Errorf("ntp: %s: root distance %s: more than %s", s.addr, d, e.cfg.MaxDistance)
	}
	t1, t4 := q.sent, now
	t2, t3 := h.Receive.Time(t1), h.Transmit.Time(t1)
	if t3.Before(t2) {
		return fmt.Errorf("ntp: %s: the server sent its reply %s before it received the query", s.addr, t2.Sub(t3))
	}
	if t4.Before(t1) {
		return fmt.Errorf("ntp: %s: the local clock went back %s during the query", s.addr, t1.Sub(t4))
	}
	delay := t4.Sub(t1) - t3.Sub(t2)
	serverPrecision := precisionOf(h.Precision)
	if delay < -(serverPrecision + localPrecision) {
		return fmt.Errorf("ntp: %s: negative delay %s", s.addr, delay)
	}
	delay = max(delay, 0)
	offset := (t2.Sub(t1) + t3.Sub(t4)) / 2
	s.filter.add(sample{
		offset:     offset,
		delay:      delay,
		dispersion: serverPrecision + localPrecision + time.Duration(phi*float64(t4.Sub(t1))),
		at:         now,
	})
	s.stratum, s.leap, s.rootDelay, s.rootDisp, s.refID, s.precision = h.Stratum, h.Leap, rootDelay, rootDisp, h.ReferenceID, h.Precision
	s.reach |= 1
	s.answered = true
	s.lastErr = ""
	if s.verdict == VerdictUnusable || s.verdict == VerdictTooFar || s.verdict == VerdictUnreachable {
		s.verdict = VerdictNew
	}
	return nil
}

// precisionOf converts a log2-seconds precision.
func precisionOf(p int8) time.Duration {
	if p >= 0 {
		return time.Duration(min(int64(1)<<min(p, 30), 1<<30)) * time.Second
	}
	if p < -62 {
		return 0
	}
	return time.Duration(float64(time.Second) / float64(uint64(1)<<-p))
}

// kiss handles a Kiss-o'-Death (RFC 5905, section 7.4).
func (e *Engine) kiss(now time.Time, s *source, code string) error {
	switch code {
	case "RATE":
		// Poll it less often: double its interval, at once and for good.
		s.kodPoll, s.rateKissed = min(s.pollExp(e.sysPoll)+1, maxKoDPoll), true
		s.skipUntil = now.Add(pollInterval(s.kodPoll))
		s.toSend = 0
		e.log.Warn("server asks to be polled less often", "source", s.name, "address", s.addr.String(), "poll", pollInterval(s.kodPoll).String())
		return fmt.Errorf("ntp: %s: kiss code RATE: polling every %s", s.addr, pollInterval(s.kodPoll))
	case "DENY", "RSTR":
		s.denied, s.toSend, s.verdict = true, 0, VerdictDenied
		e.log.Warn("server refuses service: dropping it", "source", s.name, "address", s.addr.String(), "code", code)
		// A pool may have other members to offer; the denying one stays
		// listed, so a lookup does not bring it back.
		if !s.literal {
			e.resolveAgain(s, now.Add(time.Minute))
		}
		return fmt.Errorf("ntp: %s: kiss code %s: the server refuses this client", s.addr, code)
	}
	return fmt.Errorf("ntp: %s: kiss code %s", s.addr, code)
}

// update selects among the sources and disciplines the clock. It returns
// the step it asked for, by which the clock and every time the engine
// keeps have moved; zero without one.
func (e *Engine) update(now time.Time) time.Duration {
	var cands []Candidate
	newest := time.Time{}
	for _, s := range e.sources {
		est, ok := s.filter.estimate(now)
		s.est, s.hasEst = est, ok
		if !ok || s.denied || s.reach == 0 || s.verdict == VerdictUnusable {
			continue
		}
		s.distance = (s.rootDelay+est.delay)/2 + s.rootDisp + est.dispersion + est.jitter
		if s.distance > e.cfg.MaxDistance {
			s.verdict = VerdictTooFar
			continue
		}
		cands = append(cands, Candidate{ID: s.id, Offset: est.offset, Distance: s.distance})
		if est.at.After(newest) {
			newest = est.at
		}
	}
	sel, ok := Select(cands, e.cfg.MinSources)
	for _, s := range e.sources {
		if !slices.ContainsFunc(cands, func(c Candidate) bool { return c.ID == s.id }) {
			continue
		}
		switch {
		case !ok:
			s.verdict = VerdictNoMajority
		case slices.Contains(sel.Survivors, s.id):
			s.verdict = VerdictSelected
		default:
			s.verdict = VerdictFalseticker
		}
	}
	if !ok {
		e.lastSel = nil
		if len(cands) > 0 {
			e.log.Warn("the sources do not agree: the clock is left alone", "candidates", len(cands))
		}
		return 0
	}
	e.lastSel = &sel
	if e.cfg.Mode == ModeQuery || !newest.After(e.lastUsed) {
		return 0
	}
	e.lastUsed = newest
	return e.discipline(now, sel)
}

// survivorsLeap is the leap second the survivors announce, when most of
// them do.
func (e *Engine) survivorsLeap(sel Selection) Leap {
	votes := map[Leap]int{}
	for _, s := range e.sources {
		if slices.Contains(sel.Survivors, s.id) {
			votes[s.leap]++
		}
	}
	for _, l := range []Leap{LeapInsert, LeapDelete} {
		if 2*votes[l] > len(sel.Survivors) {
			return l
		}
	}
	return LeapNone
}

// survivorsDistance is the largest root distance among the survivors: the
// error the clock may have once set.
func (e *Engine) survivorsDistance(sel Selection) time.Duration {
	var d time.Duration
	for _, s := range e.sources {
		if slices.Contains(sel.Survivors, s.id) {
			d = max(d, s.distance)
		}
	}
	return d
}

// Selection is the last selection's outcome, or nil.
func (e *Engine) Selection() *Selection { return e.lastSel }

// checkHostName accepts an address or a valid DNS name.
func checkHostName(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return privsep.CheckDomainName(s)
}
