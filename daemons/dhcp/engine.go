// Package dhcp is dyad-dhcp, a privilege-separated DHCPv4 client.
//
// The files say which process runs what: engine.go, lease.go and options.go
// are the protocol, a sans-I/O state machine that runs unprivileged;
// engine_process.go drives it in the engine process; actuator_process.go is
// the privileged side and grant.go is everything it may do.
package dhcp

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/dyad-project/dyad/privsep"
)

// State is a client's RFC 2131 state.
type State int

// The states of RFC 2131 figure 5, plus the time the link is down.
const (
	StateInit State = iota
	StateSelecting
	StateRequesting
	StateBound
	StateRenewing
	StateRebinding
	StateInitReboot
	StateLinkDown
	StateStopped
)

func (s State) String() string {
	return [...]string{"INIT", "SELECTING", "REQUESTING", "BOUND", "RENEWING", "REBINDING", "INIT-REBOOT", "LINK-DOWN", "STOPPED"}[s]
}

// ClientConfig is what a client needs to know about its interface and the
// operator's wishes.
type ClientConfig struct {
	Interface    string
	HardwareAddr net.HardwareAddr
	// ClientID is the value of option 61; nil sends none.
	ClientID []byte
	// Hostname is sent in option 12 when set.
	Hostname    string
	RapidCommit bool
	RouteMetric uint32
	// RequestAddr is the address to ask for first, if any (from config).
	RequestAddr netip.Addr
	// Release sends DHCPRELEASE and removes the configuration on Stop.
	Release bool
	// Deconfigure removes the configuration on Stop, without a release.
	Deconfigure bool
	// Request is the parameter request list; nil asks for every option
	// the client reads.
	Request []byte
	// Ignore are options removed from each message before it is read;
	// a message without every option of Require is dropped.
	Ignore, Require []byte
}

// Action is something the client asks its driver to do.
type Action interface{ isAction() }

// Send asks for a message to go out: broadcast on the link through the
// packet socket, or, when Unicast is set, over UDP to that server.
type Send struct {
	Message *dhcpv4.DHCPv4
	Unicast netip.Addr
}

// Apply asks for host changes, in order, through the actuator. The driver
// reports the outcome of a Bind apply with Client.Applied.
type Apply struct {
	Ops  []privsep.Message
	Bind bool
}

func (Send) isAction()  {}
func (Apply) isAction() {}

// Retransmission and fallback timing (RFC 2131 section 4.1).
const (
	firstRetransmit  = 4 * time.Second
	maxRetransmit    = 64 * time.Second
	requestAttempts  = 4
	rebootWait       = 10 * time.Second
	declineWait      = 10 * time.Second
	minRenewInterval = 60 * time.Second // RFC 2131 4.4.5
	maxMessageSize   = 1472             // an Ethernet MTU minus IP and UDP headers
)

// Client is the state machine of one interface. It performs no I/O: it is
// fed messages, timer expiries, link changes and the outcome of the host
// changes it asked for, and returns actions.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
	rnd *rand.Rand

	state    State
	deadline time.Time
	actions  []Action

	xid       dhcpv4.TransactionID
	started   time.Time // start of the current exchange, for the secs field
	sent      time.Time // when the current REQUEST was first sent: leases count from it
	attempt   int
	offer     *privsep.Lease
	candidate *privsep.Lease // the lease asked for in INIT-REBOOT
	lease     *privsep.Lease // the lease applied to the host
	applied   bool
	boundAt   time.Time
	lastErr   string
	naks      int
	renewal   bool // the pending apply refreshes a lease already on the host
}

// NewClient returns a client in INIT. saved, when it is still valid at the
// first Start, is asked for again through INIT-REBOOT.
func NewClient(cfg ClientConfig, log *slog.Logger, rnd *rand.Rand, saved *privsep.Lease) *Client {
	c := &Client{cfg: cfg, log: log.With("interface", cfg.Interface), rnd: rnd, state: StateLinkDown}
	if saved != nil && saved.Interface == cfg.Interface {
		if l, err := cleanSaved(saved); err != nil {
			c.log.Warn("ignoring the saved lease", "err", err.Error())
		} else {
			c.candidate = l
		}
	}
	return c
}

// State returns the client's state.
func (c *Client) State() State { return c.state }

// Lease returns the lease applied to the host, or nil.
func (c *Client) Lease() *privsep.Lease {
	if !c.applied {
		return nil
	}
	return c.lease
}

// Deadline returns when the client next wants HandleTimer, or zero.
func (c *Client) Deadline() time.Time { return c.deadline }

// TakeActions returns and clears what the client asked for.
func (c *Client) TakeActions() []Action {
	a := c.actions
	c.actions = nil
	return a
}

// LastError is the latest reason the client could not get or keep a lease.
func (c *Client) LastError() string { return c.lastErr }

// Expiry is when the applied lease runs out, or zero.
func (c *Client) Expiry() time.Time {
	if c.lease == nil || c.lease.LeaseTime == infiniteLft {
		return time.Time{}
	}
	return c.boundAt.Add(seconds(c.lease.LeaseTime))
}

// HoldsSaved tells the client that the address of its saved lease is still
// on the host, applied by an engine before this one: it is the client's to
// verify with INIT-REBOOT, and to remove if the server says no.
func (c *Client) HoldsSaved() {
	if c.candidate == nil {
		return
	}
	c.lease, c.applied = c.candidate, true
	c.boundAt = time.Unix(c.candidate.Acquired, 0)
}

// LinkChanged tells the client whether its link can carry traffic. Losing the
// carrier keeps the lease; regaining it verifies the lease with INIT-REBOOT.
func (c *Client) LinkChanged(now time.Time, up bool) {
	switch {
	case !up && c.state != StateLinkDown && c.state != StateStopped:
		c.log.Info("link down: waiting for carrier")
		if c.lease != nil && c.applied {
			c.candidate = c.lease
		}
		// The lease still runs out while the link is down.
		c.state, c.deadline = StateLinkDown, c.Expiry()
	case up && c.state == StateLinkDown:
		c.restart(now)
	}
}

// restart begins acquisition: INIT-REBOOT when a lease is worth asking for
// again, INIT otherwise.
func (c *Client) restart(now time.Time) {
	if l := c.candidate; l != nil && (l.LeaseTime == infiniteLft || now.Before(time.Unix(l.Acquired, 0).Add(seconds(l.LeaseTime)))) {
		c.state = StateInitReboot
		c.newExchange(now)
		c.sent = now
		c.sendRequest(now)
		c.deadline = now.Add(min(c.backoff(), rebootWait))
		c.attempt++
		return
	}
	c.candidate = nil
	c.enterInit(now, 0)
}

func (c *Client) enterInit(now time.Time, delay time.Duration) {
	c.state = StateInit
	c.offer = nil
	c.deadline = now.Add(delay)
	if delay == 0 {
		c.discover(now)
	}
}

func (c *Client) newExchange(now time.Time) {
	c.xid = dhcpv4.TransactionID{}
	for i := range c.xid {
		c.xid[i] = byte(c.rnd.Uint32())
	}
	c.started = now
	c.attempt = 0
}

// backoff returns the RFC 2131 retransmission delay for the current attempt:
// 4 s doubling to 64 s, randomised by up to a second either way.
func (c *Client) backoff() time.Duration {
	d := firstRetransmit << min(c.attempt, 4)
	d = min(d, maxRetransmit)
	return d + time.Duration(c.rnd.Int64N(int64(2*time.Second))) - time.Second
}

func (c *Client) discover(now time.Time) {
	if c.state != StateSelecting {
		c.state = StateSelecting
		c.newExchange(now)
	}
	mods := c.commonOptions(now)
	mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover))
	if c.cfg.RapidCommit {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optRapidCommit), nil))
	}
	if a := c.hint(); a.IsValid() {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optRequestedIP), a.AsSlice()))
	}
	c.send(mods, netip.Addr{})
	c.deadline = now.Add(c.backoff())
	c.attempt++
}

// hint is the address to suggest in a DISCOVER.
func (c *Client) hint() netip.Addr {
	switch {
	case c.lease != nil:
		return c.lease.Address.Addr()
	case c.candidate != nil:
		return c.candidate.Address.Addr()
	}
	return c.cfg.RequestAddr
}

func (c *Client) commonOptions(now time.Time) []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithTransactionID(c.xid),
		dhcpv4.WithHwAddr(c.cfg.HardwareAddr),
		func(d *dhcpv4.DHCPv4) { d.NumSeconds = uint16(min(now.Sub(c.started)/time.Second, 0xffff)) },
		dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optMaxMessageSize), []byte{maxMessageSize >> 8, maxMessageSize & 0xff}),
		dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optParamRequest), c.requestList()),
	}
	if c.cfg.ClientID != nil {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optClientID), c.cfg.ClientID))
	}
	if c.cfg.Hostname != "" {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optHostname), []byte(c.cfg.Hostname)))
	}
	return mods
}

// defaultRequest is the parameter request list of a client configured
// without one: every option it reads.
var defaultRequest = []byte{
	optSubnetMask, optRouter, optDNS, optHostname, optDomainName, optMTU, 28, optNTP,
	optLeaseTime, optServerID, optRenewalTime, optRebindingTime, optDomainSearch, optClasslessRoutes,
}

func (c *Client) requestList() []byte {
	if c.cfg.Request != nil {
		return c.cfg.Request
	}
	return defaultRequest
}

func (c *Client) send(mods []dhcpv4.Modifier, unicast netip.Addr) {
	m, err := dhcpv4.New(mods...)
	if err != nil {
		// New fails only when it cannot draw a transaction ID; ours is set.
		c.lastErr = fmt.Sprintf("build message: %v", err)
		return
	}
	c.actions = append(c.actions, Send{Message: m, Unicast: unicast})
}

// sendRequest sends the REQUEST of the current state.
func (c *Client) sendRequest(now time.Time) {
	mods := c.commonOptions(now)
	mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))
	var unicast netip.Addr
	switch c.state {
	case StateRequesting:
		mods = append(mods,
			dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optRequestedIP), c.offer.Address.Addr().AsSlice()),
			dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optServerID), c.offer.Server.AsSlice()))
	case StateInitReboot:
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optRequestedIP), c.candidate.Address.Addr().AsSlice()))
	case StateRenewing:
		mods = append(mods, dhcpv4.WithClientIP(c.lease.Address.Addr().AsSlice()))
		unicast = c.lease.Server
	case StateRebinding:
		mods = append(mods, dhcpv4.WithClientIP(c.lease.Address.Addr().AsSlice()))
	}
	c.send(mods, unicast)
}

// HandleTimer runs what was due at the deadline.
func (c *Client) HandleTimer(now time.Time) {
	if c.deadline.IsZero() || now.Before(c.deadline) {
		return
	}
	c.deadline = time.Time{}
	switch c.state {
	case StateInit, StateSelecting:
		c.discover(now)
	case StateRequesting:
		if c.attempt >= requestAttempts {
			c.fail("no answer to REQUEST for %s from %s", c.offer.Address.Addr(), c.offer.Server)
			c.enterInit(now, 0)
			return
		}
		c.sendRequest(now)
		c.deadline = now.Add(c.backoff())
		c.attempt++
	case StateInitReboot:
		if now.Sub(c.started) >= rebootWait {
			c.rebootTimedOut(now)
			return
		}
		c.sendRequest(now)
		c.deadline = now.Add(min(c.backoff(), c.started.Add(rebootWait).Sub(now)))
		c.attempt++
	case StateLinkDown:
		if exp := c.Expiry(); !exp.IsZero() && !now.Before(exp) {
			c.fail("lease on %s expired while the link was down", c.lease.Address)
			c.unbind(true)
			c.candidate = nil
		}
	case StateBound, StateRenewing, StateRebinding:
		c.leaseTimer(now)
	}
}

// rebootTimedOut handles a silent network after INIT-REBOOT: a lease that is
// still valid is used as it is (RFC 2131 4.4.2 lets the client keep it), and
// renewal takes over; otherwise discovery starts.
func (c *Client) rebootTimedOut(now time.Time) {
	l := c.candidate
	c.candidate = nil
	acquired := time.Unix(l.Acquired, 0)
	if l.LeaseTime != infiniteLft && !now.Before(acquired.Add(seconds(l.LeaseTime))) {
		c.enterInit(now, 0)
		return
	}
	c.log.Info("no answer to INIT-REBOOT: keeping the unexpired lease", "address", l.Address)
	c.bind(now, l, acquired)
}

// leaseTimer moves a bound client through RENEWING, REBINDING and expiry.
func (c *Client) leaseTimer(now time.Time) {
	l := c.lease
	if l.LeaseTime == infiniteLft {
		return
	}
	t1 := c.boundAt.Add(seconds(l.RenewTime))
	t2 := c.boundAt.Add(seconds(l.RebindTime))
	exp := c.boundAt.Add(seconds(l.LeaseTime))
	switch {
	case !now.Before(exp):
		c.fail("lease on %s expired", l.Address)
		c.unbind(true)
		c.enterInit(now, 0)
		return
	case !now.Before(t2):
		if c.state != StateRebinding {
			c.log.Info("rebinding", "address", l.Address)
			c.state = StateRebinding
			c.newExchange(now)
			c.sent = now // the lease counts from the first REQUEST
		}
		c.sendRequest(now)
		c.deadline = minTime(now.Add(max(exp.Sub(now)/2, minRenewInterval)), exp)
	case !now.Before(t1):
		if c.state != StateRenewing {
			c.log.Info("renewing", "address", l.Address, "server", l.Server)
			c.state = StateRenewing
			c.newExchange(now)
			c.sent = now
		}
		c.sendRequest(now)
		c.deadline = minTime(now.Add(max(t2.Sub(now)/2, minRenewInterval)), t2)
	default:
		c.deadline = t1
	}
}

// HandleMessage feeds one DHCP message received on the client's link.
func (c *Client) HandleMessage(now time.Time, m *dhcpv4.DHCPv4) {
	if reason := c.foreign(m); reason != "" {
		c.log.Debug("ignored message", "reason", reason)
		return
	}
	for _, o := range c.cfg.Require {
		if !m.Options.Has(dhcpv4.GenericOptionCode(o)) {
			c.log.Debug("ignored message", "reason", fmt.Sprintf("required option %d missing", o))
			return
		}
	}
	for _, o := range c.cfg.Ignore {
		m.Options.Del(dhcpv4.GenericOptionCode(o))
	}
	switch t := m.MessageType(); t {
	case dhcpv4.MessageTypeOffer:
		c.handleOffer(now, m)
	case dhcpv4.MessageTypeAck:
		c.handleAck(now, m)
	case dhcpv4.MessageTypeNak:
		c.handleNak(now, m)
	default:
		c.log.Debug("ignored message", "reason", fmt.Sprintf("message type %s", t))
	}
}

// foreign says why a message is not an answer to this client, or "".
func (c *Client) foreign(m *dhcpv4.DHCPv4) string {
	switch {
	case m.OpCode != dhcpv4.OpcodeBootReply:
		return "not a BOOTREPLY"
	case m.TransactionID != c.xid:
		return fmt.Sprintf("transaction ID %s is not ours", m.TransactionID)
	case !bytes.Equal(m.ClientHWAddr, c.cfg.HardwareAddr):
		return fmt.Sprintf("chaddr %s is not ours", m.ClientHWAddr)
	case c.state == StateLinkDown || c.state == StateStopped || c.state == StateBound || c.state == StateInit:
		return "not expecting a reply in " + c.state.String()
	}
	return ""
}

func (c *Client) handleOffer(now time.Time, m *dhcpv4.DHCPv4) {
	if c.state != StateSelecting {
		return
	}
	l, warn, err := InterpretLease(c.cfg.Interface, m, now)
	if err != nil {
		c.fail("OFFER refused: %v", err)
		return
	}
	c.warn("OFFER", warn)
	c.log.Info("offered", "address", l.Address, "server", l.Server)
	c.offer = &l
	c.state = StateRequesting
	c.attempt = 0
	c.sent = now
	c.sendRequest(now)
	c.deadline = now.Add(c.backoff())
	c.attempt++
}

func (c *Client) handleAck(now time.Time, m *dhcpv4.DHCPv4) {
	rapid := c.state == StateSelecting && c.cfg.RapidCommit && m.Options.Has(dhcpv4.GenericOptionCode(optRapidCommit))
	if c.state == StateSelecting && !rapid {
		return
	}
	l, warn, err := InterpretLease(c.cfg.Interface, m, now)
	if err != nil {
		c.fail("ACK refused: %v", err)
		return
	}
	c.warn("ACK", warn)
	want := netip.Addr{}
	switch c.state {
	case StateRequesting:
		want = c.offer.Address.Addr()
		if l.Server != c.offer.Server {
			c.fail("ACK from %s, but the REQUEST went to %s", l.Server, c.offer.Server)
			return
		}
	case StateInitReboot:
		want = c.candidate.Address.Addr()
	case StateRenewing:
		want = c.lease.Address.Addr()
		if l.Server != c.lease.Server {
			c.fail("ACK from %s while renewing with %s", l.Server, c.lease.Server)
			return
		}
	case StateRebinding:
		want = c.lease.Address.Addr()
	}
	if want.IsValid() && l.Address.Addr() != want {
		c.fail("ACK for %s, but %s was requested", l.Address.Addr(), want)
		c.decline(now, l)
		return
	}
	if rapid {
		c.sent = now
	}
	l.Acquired = c.sent.Unix()
	c.candidate = nil
	c.naks = 0
	c.bind(now, &l, c.sent)
}

func (c *Client) handleNak(now time.Time, m *dhcpv4.DHCPv4) {
	if c.state == StateSelecting {
		return
	}
	sid := netip.Addr{}
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optServerID)); len(b) == 4 {
		sid = netip.AddrFrom4([4]byte(b))
	}
	// A NAK must come from the server asked; in INIT-REBOOT and REBINDING
	// any server may answer.
	switch {
	case c.state == StateRequesting && sid != c.offer.Server,
		c.state == StateRenewing && sid != c.lease.Server:
		c.log.Debug("ignored NAK", "server", sid)
		return
	}
	c.fail("NAK from %s: %s", sid, m.Message())
	c.candidate = nil
	if c.lease != nil {
		c.unbind(true)
	}
	c.naks++
	// Repeated NAKs back off so a confused server is not flooded.
	c.enterInit(now, min(time.Duration(c.naks-1)*2*time.Second, maxRetransmit))
}

// decline refuses an address the server insists on and starts over after
// the wait RFC 2131 4.4.1 asks for.
func (c *Client) decline(now time.Time, l privsep.Lease) {
	c.send(c.notice(dhcpv4.MessageTypeDecline, l.Server,
		dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optRequestedIP), l.Address.Addr().AsSlice())), netip.Addr{})
	if c.lease != nil {
		c.unbind(true)
	}
	c.enterInit(now, declineWait)
}

// notice builds a DECLINE or RELEASE: a message outside the REQUEST
// exchanges, naming the server it is for and this client.
func (c *Client) notice(t dhcpv4.MessageType, server netip.Addr, mods ...dhcpv4.Modifier) []dhcpv4.Modifier {
	out := []dhcpv4.Modifier{
		dhcpv4.WithTransactionID(c.xid),
		dhcpv4.WithHwAddr(c.cfg.HardwareAddr),
		dhcpv4.WithMessageType(t),
		dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optServerID), server.AsSlice()),
	}
	if c.cfg.ClientID != nil {
		out = append(out, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(optClientID), c.cfg.ClientID))
	}
	return append(out, mods...)
}

// bind applies a lease and schedules renewal. A renewal of the same address
// refreshes it in place, so the address never flaps.
func (c *Client) bind(now time.Time, l *privsep.Lease, start time.Time) {
	if start.After(now) {
		// A lease that began after now: the clock went back since (a
		// saved lease, or a step during the exchange), or its record
		// is wrong. It counts from now, so that it never lasts longer
		// than it was granted for (found by FuzzActuatorReply).
		fixed := *l
		fixed.Acquired = now.Unix()
		l, start = &fixed, now
	}
	var ops []privsep.Message
	old := c.lease
	if old != nil && old.Address != l.Address {
		c.unbind(false)
		old = nil
	}
	iface := c.cfg.Interface
	if l.MTU != 0 {
		ops = append(ops, &privsep.LinkMTU{Interface: iface, MTU: l.MTU})
	}
	valid := l.LeaseTime
	if valid != infiniteLft {
		// Lifetimes count from now; the lease from when it was requested.
		valid = uint32(max(int64(l.LeaseTime)-int64(now.Sub(start)/time.Second), 1))
	}
	ops = append(ops, &privsep.AddrReplace{Interface: iface, Address: l.Address, ValidLifetime: valid, PreferredLifetime: valid})
	newRoutes := c.routesOf(l)
	if old != nil {
		for _, r := range c.routesOf(old) {
			if !slices.Contains(newRoutes, r) {
				ops = append(ops, &privsep.RouteRemove{Route: r})
			}
		}
	}
	for _, r := range newRoutes {
		ops = append(ops, &privsep.RouteReplace{Route: r})
	}
	ops = append(ops, &privsep.LeaseSave{Lease: *l})
	c.lease = l
	c.renewal = old != nil
	c.applied = false
	c.boundAt = start
	c.state = StateBound
	c.lastErr = ""
	c.actions = append(c.actions, Apply{Ops: ops, Bind: true})
	c.deadline = time.Time{}
	c.leaseTimer(now)
}

// routesOf returns the routes a lease asks for: its classless routes, or
// else a default route through its first router. On-link routes come first,
// so gateways behind them are reachable when their turn comes.
func (c *Client) routesOf(l *privsep.Lease) []privsep.Route {
	var out []privsep.Route
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			r.Interface, r.Source, r.Metric = c.cfg.Interface, l.Address.Addr(), c.cfg.RouteMetric
			out = append(out, r)
		}
	} else if len(l.Routers) > 0 {
		out = append(out, privsep.Route{
			Interface:   c.cfg.Interface,
			Destination: netip.PrefixFrom(netip.IPv4Unspecified(), 0),
			Gateway:     l.Routers[0],
			Source:      l.Address.Addr(),
			Metric:      c.cfg.RouteMetric,
		})
	}
	slices.SortStableFunc(out, func(a, b privsep.Route) int {
		switch {
		case !a.Gateway.IsValid() && b.Gateway.IsValid():
			return -1
		case a.Gateway.IsValid() && !b.Gateway.IsValid():
			return 1
		}
		return 0
	})
	return out
}

// unbind removes the applied lease from the host.
func (c *Client) unbind(forget bool) {
	l := c.lease
	if l == nil {
		return
	}
	var ops []privsep.Message
	routes := c.routesOf(l)
	for i := len(routes) - 1; i >= 0; i-- {
		ops = append(ops, &privsep.RouteRemove{Route: routes[i]})
	}
	ops = append(ops, &privsep.AddrRemove{Interface: c.cfg.Interface, Address: l.Address})
	if forget {
		ops = append(ops, &privsep.LeaseDrop{Interface: c.cfg.Interface})
	}
	c.log.Info("unbound", "address", l.Address)
	c.actions = append(c.actions, Apply{Ops: ops})
	c.lease, c.applied = nil, false
}

// Applied reports the outcome of the last Bind apply. A lease the host
// refused is declined, so the server offers something else.
func (c *Client) Applied(now time.Time, err error) {
	if c.lease == nil {
		return
	}
	if err == nil {
		// Said once the host holds the lease, not when it is asked for:
		// whoever reads "bound" may rely on the address being there.
		if l := c.lease; c.renewal {
			c.log.Info("lease extended", "address", l.Address, "lease", l.LeaseTime)
		} else {
			c.log.Info("bound", "address", l.Address, "server", l.Server, "lease", l.LeaseTime)
		}
		c.applied = true
		return
	}
	c.fail("applying the lease for %s failed: %v", c.lease.Address, err)
	if c.renewal {
		// The host still holds the address from before; keep the lease
		// rather than decline an address that works.
		c.applied = true
		return
	}
	l := *c.lease
	c.decline(now, l)
}

// Stop ends the client. With Release configured it releases the lease and
// removes the configuration, with Deconfigure it removes the configuration;
// otherwise the configuration stays, and the kernel drops the address when
// its lifetime runs out.
func (c *Client) Stop(now time.Time) {
	if (c.cfg.Release || c.cfg.Deconfigure) && c.lease != nil {
		l := c.lease
		if c.cfg.Release {
			c.log.Info("releasing", "address", l.Address, "server", l.Server)
			c.send(c.notice(dhcpv4.MessageTypeRelease, l.Server, dhcpv4.WithClientIP(l.Address.Addr().AsSlice())), l.Server)
		}
		c.unbind(true)
	}
	c.state, c.deadline = StateStopped, time.Time{}
}

func (c *Client) fail(format string, args ...any) {
	c.lastErr = fmt.Sprintf(format, args...)
	c.log.Warn(c.lastErr)
}

func (c *Client) warn(what string, warnings []string) {
	for _, w := range warnings {
		c.log.Warn(what + ": " + w)
	}
}

func seconds(s uint32) time.Duration { return time.Duration(s) * time.Second }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
