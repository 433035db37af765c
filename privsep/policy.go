package privsep

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"
)

// Policy is a daemon's grant together with the common sense every request
// must also pass: which operations the engine may ask for, on which links,
// and within which bounds. Paths are not here: the actuator writes only the
// paths fixed in its own configuration, and requests carry none.
type Policy struct {
	Daemon string
	// Ops lists the operations of the grant; anything else is refused.
	Ops []Kind
	// Interfaces are the names or path.Match patterns of the links the
	// daemon owns. Loopback is never owned.
	Interfaces []string
	// DenyInterfaces are patterns of links never owned, even where
	// Interfaces matches.
	DenyInterfaces []string
	// PrefixMin and PrefixMax bound the prefix length of an address.
	PrefixMin, PrefixMax int
	// MTUMin and MTUMax bound a link MTU.
	MTUMin, MTUMax int
	// MaxRoutes bounds the routes the daemon may hold at once.
	MaxRoutes int
	// MaxNameservers bounds nameserver and NTP server lists.
	MaxNameservers int
	// MaxSearch bounds the search list.
	MaxSearch int
	// OwnNameservers, when set, are the only nameservers a resolv.conf
	// may name: a DNS stub's grant points its consumers at the stub and
	// nowhere else.
	OwnNameservers []netip.Addr
	// MaxLifetime bounds an address's lifetimes, so that the kernel drops
	// the address by itself if the daemon is gone; only an infinite lease
	// gets an infinite lifetime.
	MaxLifetime uint32
	// MaxLeases bounds the leases saved at once.
	MaxLeases int
	// Now is the clock that saved leases and the spacing of clock steps
	// are checked against.
	Now func() time.Time

	// The clock's bounds (see clockpolicy.go).
	Clock ClockPolicy
}

// The common-sense bounds DESIGN.md gives for a DHCP client; an engine
// that filters a server's offer first applies the same.
const (
	DefaultPrefixMin      = 8
	DefaultPrefixMax      = 32
	DefaultMTUMin         = 576
	DefaultMTUMax         = 9216
	DefaultMaxRoutes      = 64
	DefaultMaxNameservers = 8
	DefaultMaxSearch      = 8
	DefaultMaxLifetime    = 366 * 24 * 3600
	DefaultMaxLeases      = 16
)

// InfiniteLifetime is the lifetime of an infinite lease (RFC 2131), and
// of an address that never expires.
const InfiniteLifetime = 0xffffffff

// WithDefaultBounds fills the common-sense bounds DESIGN.md gives for a DHCP
// client and for a clock, leaving Daemon, Ops and Interfaces to the grant.
func (p Policy) WithDefaultBounds() Policy {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.PrefixMin, DefaultPrefixMin)
	def(&p.PrefixMax, DefaultPrefixMax)
	def(&p.MTUMin, DefaultMTUMin)
	def(&p.MTUMax, DefaultMTUMax)
	def(&p.MaxRoutes, DefaultMaxRoutes)
	def(&p.MaxNameservers, DefaultMaxNameservers)
	def(&p.MaxSearch, DefaultMaxSearch)
	def(&p.MaxLeases, DefaultMaxLeases)
	if p.MaxLifetime == 0 {
		p.MaxLifetime = DefaultMaxLifetime
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	p.Clock = p.Clock.withDefaults()
	return p
}

// Guard checks requests against a Policy and keeps the ledger of what the
// daemon has installed, so that it can refuse to remove what it did not add,
// to route via a gateway that is not on-link, or to hold too many routes. The
// ledger outlives engine restarts: it belongs to the actuator.
type Guard struct {
	policy Policy
	ops    map[Kind]bool
	addrs  map[string]netip.Prefix
	routes map[routeKey]bool
	leases map[string]bool
	clock  clockLedger
}

// routeKey names a route as the kernel tells routes apart: the metric
// makes a different route.
type routeKey struct {
	iface  string
	dst    netip.Prefix
	gw     netip.Addr
	metric uint32
}

func keyOf(r Route) routeKey { return routeKey{r.Interface, r.Destination, r.Gateway, r.Metric} }

// NewGuard returns a Guard with an empty ledger.
func NewGuard(p Policy) *Guard {
	g := &Guard{policy: p, ops: map[Kind]bool{}, addrs: map[string]netip.Prefix{}, routes: map[routeKey]bool{}, leases: map[string]bool{}}
	for _, k := range p.Ops {
		g.ops[k] = true
	}
	return g
}

// Policy returns the policy the guard enforces.
func (g *Guard) Policy() Policy { return g.policy }

// ErrNotHeld is returned for the removal of an address or route the daemon
// does not hold: there is nothing to do, and the caller answers it as done
// without touching the host (after a restart, an engine may not know what
// is still there).
var ErrNotHeld = errors.New("not held by this daemon")

// ErrRefused wraps every refusal, so callers can count them.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Check validates one request against the grant, the bounds and the ledger.
// It changes nothing; call Record once the operation succeeded.
func (g *Guard) Check(m Message) error {
	if !IsOperation(m.Kind()) {
		return refuse("%s is not an operation", m.Kind())
	}
	if !g.ops[m.Kind()] {
		return refuse("%s is not in the %s grant", m.Kind(), g.policy.Daemon)
	}
	switch m := m.(type) {
	case *LinkUp:
		return g.checkInterface(m.Interface)
	case *LinkMTU:
		if err := g.checkInterface(m.Interface); err != nil {
			return err
		}
		if m.MTU < g.policy.MTUMin || m.MTU > g.policy.MTUMax {
			return refuse("MTU %d outside %d..%d", m.MTU, g.policy.MTUMin, g.policy.MTUMax)
		}
	case *AddrReplace:
		if err := g.checkInterface(m.Interface); err != nil {
			return err
		}
		if err := g.checkAddress(m.Address); err != nil {
			return err
		}
		if old, ok := g.addrs[m.Interface]; ok && old != m.Address {
			return refuse("%s already holds %s from this daemon; remove it first", m.Interface, old)
		}
		if m.ValidLifetime == 0 || m.PreferredLifetime > m.ValidLifetime {
			return refuse("lifetimes valid %d preferred %d: valid must be non-zero and not below preferred", m.ValidLifetime, m.PreferredLifetime)
		}
		if m.ValidLifetime != InfiniteLifetime && m.ValidLifetime > g.policy.MaxLifetime {
			return refuse("valid lifetime %d s is over the %d s allowed: an address must expire without the daemon", m.ValidLifetime, g.policy.MaxLifetime)
		}
	case *AddrRemove:
		if err := g.checkInterface(m.Interface); err != nil {
			return err
		}
		if old, ok := g.addrs[m.Interface]; !ok || old != m.Address {
			return fmt.Errorf("%s on %s: %w", m.Address, m.Interface, ErrNotHeld)
		}
	case *RouteReplace:
		if err := g.checkRoute(m.Route); err != nil {
			return err
		}
		if !g.routes[keyOf(m.Route)] && len(g.routes) >= g.policy.MaxRoutes {
			return refuse("route limit of %d reached", g.policy.MaxRoutes)
		}
	case *RouteRemove:
		if err := g.checkInterface(m.Route.Interface); err != nil {
			return err
		}
		if !g.routes[keyOf(m.Route)] {
			return fmt.Errorf("route to %s via %s on %s: %w", m.Route.Destination, m.Route.Gateway, m.Route.Interface, ErrNotHeld)
		}
	case *ResolvConf:
		if own := g.policy.OwnNameservers; len(own) > 0 {
			if len(m.Nameservers) == 0 {
				return refuse("no nameserver")
			}
			for _, a := range m.Nameservers {
				if !slices.Contains(own, a) {
					return refuse("nameserver %s is not one of the stub's addresses %v", a, own)
				}
			}
		} else if err := g.checkServers("nameserver", m.Nameservers, true); err != nil {
			return err
		}
		if m.Domain != "" {
			if err := CheckDomainName(m.Domain); err != nil {
				return refuse("domain: %v", err)
			}
		}
		if len(m.Search) > g.policy.MaxSearch {
			return refuse("%d search domains, at most %d", len(m.Search), g.policy.MaxSearch)
		}
		for _, s := range m.Search {
			if err := CheckDomainName(s); err != nil {
				return refuse("search: %v", err)
			}
		}
	case *NTPServers:
		return g.checkServers("NTP server", m.Servers, false)
	case *Hostname:
		if err := CheckHostname(m.Name); err != nil {
			return refuse("hostname: %v", err)
		}
	case *LeaseSave:
		if !g.leases[m.Lease.Interface] && len(g.leases) >= g.policy.MaxLeases {
			return refuse("%d leases saved already, the most allowed", len(g.leases))
		}
		return g.checkLease(&m.Lease)
	case *LeaseDrop:
		return g.checkInterface(m.Interface)
	case *ClockRead, *ClockSlew, *ClockFrequency, *ClockStep, *ClockStatus:
		return g.checkClock(m)
	default:
		return refuse("%s has no policy", m.Kind())
	}
	return nil
}

// Record updates the ledger after an operation was performed.
func (g *Guard) Record(m Message) {
	switch m := m.(type) {
	case *AddrReplace:
		g.addrs[m.Interface] = m.Address
	case *AddrRemove:
		delete(g.addrs, m.Interface)
		// Every route of ours carries the removed address as its source,
		// and the kernel drops such routes with the address; keep the
		// ledger in step.
		for k := range g.routes {
			if k.iface == m.Interface {
				delete(g.routes, k)
			}
		}
	case *RouteReplace:
		g.routes[keyOf(m.Route)] = true
	case *RouteRemove:
		delete(g.routes, keyOf(m.Route))
	case *LeaseSave:
		g.leases[m.Lease.Interface] = true
	case *LeaseDrop:
		delete(g.leases, m.Interface)
	case *ClockSlew, *ClockStep:
		g.recordClock(m)
	}
}

// Installed returns the addresses the ledger holds, by interface.
func (g *Guard) Installed() map[string]netip.Prefix { return maps.Clone(g.addrs) }

// OwnsInterface reports whether the policy names a link.
func (g *Guard) OwnsInterface(name string) bool { return g.checkInterface(name) == nil }

func (g *Guard) checkInterface(name string) error {
	if err := CheckInterfaceName(name); err != nil {
		return refuse("%v", err)
	}
	if name == "lo" {
		return refuse("interface lo is never owned")
	}
	for _, p := range g.policy.DenyInterfaces {
		if ok, _ := path.Match(p, name); ok {
			return refuse("interface %q is denied by pattern %q", name, p)
		}
	}
	for _, p := range g.policy.Interfaces {
		if ok, _ := path.Match(p, name); ok {
			return nil
		}
	}
	return refuse("interface %q is not one this daemon was configured for", name)
}

// CheckInterfaceName accepts what the kernel accepts as a link name.
func CheckInterfaceName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("interface name %q: must be 1 to 15 bytes", truncate(name, 32))
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return fmt.Errorf("interface name %q: invalid byte %#02x", name, c)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	return nil
}

// CheckUnicast refuses what no DHCP server may hand out as a host address.
func CheckUnicast(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("missing address")
	case !a.Is4():
		return fmt.Errorf("%s is not IPv4", a)
	case a.IsUnspecified():
		return fmt.Errorf("%s is the zero address", a)
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address", a)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is the broadcast address", a)
	case a.As4()[0] >= 240:
		return fmt.Errorf("%s is a class E address", a)
	case a.As4()[0] == 0:
		return fmt.Errorf("%s is in 0.0.0.0/8", a)
	}
	return nil
}

func (g *Guard) checkAddress(p netip.Prefix) error {
	if err := CheckHostAddress(p); err != nil {
		return refuse("%v", err)
	}
	if b := p.Bits(); b < g.policy.PrefixMin || b > g.policy.PrefixMax {
		return refuse("address %s: prefix length %d outside %d..%d", p, b, g.policy.PrefixMin, g.policy.PrefixMax)
	}
	return nil
}

// CheckHostAddress refuses an address and prefix that no host may take:
// not unicast, link-local, or the network or broadcast address of its
// subnet.
func CheckHostAddress(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("address: missing or invalid prefix")
	}
	a := p.Addr()
	if err := CheckUnicast(a); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	if a.IsLinkLocalUnicast() {
		return fmt.Errorf("address: %s is link-local", a)
	}
	if p.Bits() <= 30 {
		if a == p.Masked().Addr() {
			return fmt.Errorf("address %s is the network address of its subnet", p)
		}
		if a == broadcastOf(p) {
			return fmt.Errorf("address %s is the broadcast address of its subnet", p)
		}
	}
	return nil
}

// broadcastOf returns the directed broadcast address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (g *Guard) checkRoute(r Route) error {
	if err := g.checkInterface(r.Interface); err != nil {
		return err
	}
	d := r.Destination
	if !d.IsValid() || !d.Addr().Is4() {
		return refuse("route: destination %v is not an IPv4 prefix", d)
	}
	if d != d.Masked() {
		return refuse("route: destination %s has host bits set", d)
	}
	if da := d.Addr(); d.Bits() > 0 && (da.IsLoopback() || da.IsMulticast() || da.As4()[0] >= 240) {
		return refuse("route: destination %s is loopback, multicast or class E", d)
	}
	own, hasAddr := g.addrs[r.Interface]
	if r.Metric > 1<<20 {
		return refuse("route: metric %d is absurd", r.Metric)
	}
	if !r.Gateway.IsValid() {
		return g.checkSource(r) // on-link destination
	}
	if err := CheckUnicast(r.Gateway); err != nil {
		return refuse("route: gateway: %v", err)
	}
	if hasAddr && r.Gateway == own.Addr() {
		return refuse("route: gateway %s is this host's own address", r.Gateway)
	}
	if !g.onLink(r.Interface, r.Gateway) {
		return refuse("route: gateway %s is not on-link on %s", r.Gateway, r.Interface)
	}
	return g.checkSource(r)
}

// checkSource requires a route to name the address held on its link as its
// source, so that the kernel drops the route with the address.
func (g *Guard) checkSource(r Route) error {
	if own, ok := g.addrs[r.Interface]; !ok || r.Source != own.Addr() {
		return refuse("route: source %v is not the address this daemon holds on %s", r.Source, r.Interface)
	}
	return nil
}

// onLink reports whether gw is reachable without a gateway: inside the
// subnet of the address held on the link, or inside an on-link route this
// daemon installed there (RFC 3442 lets a server give a gateway outside the
// subnet together with a host route to it).
func (g *Guard) onLink(iface string, gw netip.Addr) bool {
	if p, ok := g.addrs[iface]; ok && p.Masked().Contains(gw) {
		return true
	}
	for k := range g.routes {
		if k.iface == iface && !k.gw.IsValid() && k.dst.Bits() > 0 && k.dst.Contains(gw) {
			return true
		}
	}
	return false
}

func (g *Guard) checkServers(what string, list []netip.Addr, allowV6 bool) error {
	if len(list) > g.policy.MaxNameservers {
		return refuse("%d %ss, at most %d", len(list), what, g.policy.MaxNameservers)
	}
	for _, a := range list {
		if a.Zone() != "" {
			return refuse("%s %s carries a zone", what, a)
		}
		if allowV6 && a.Is6() && !a.Is4In6() {
			if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
				return refuse("%s %s is not a unicast address", what, a)
			}
			continue
		}
		if err := CheckUnicast(a); err != nil {
			return refuse("%s: %v", what, err)
		}
	}
	return nil
}

func (g *Guard) checkLease(l *Lease) error {
	if err := g.checkInterface(l.Interface); err != nil {
		return err
	}
	if err := g.checkAddress(l.Address); err != nil {
		return err
	}
	if err := CheckUnicast(l.Server); err != nil {
		return refuse("lease server: %v", err)
	}
	if len(l.Routers) > g.policy.MaxRoutes || len(l.Routes) > g.policy.MaxRoutes {
		return refuse("lease: too many routes")
	}
	for _, r := range l.Routers {
		if err := CheckUnicast(r); err != nil {
			return refuse("lease router: %v", err)
		}
	}
	for _, r := range l.Routes {
		if !r.Destination.IsValid() || !r.Destination.Addr().Is4() || r.Destination != r.Destination.Masked() {
			return refuse("lease route: bad destination %v", r.Destination)
		}
		if r.Gateway.IsValid() {
			if err := CheckUnicast(r.Gateway); err != nil {
				return refuse("lease route gateway: %v", err)
			}
		}
	}
	if err := g.checkServers("nameserver", l.DNS, false); err != nil {
		return err
	}
	if err := g.checkServers("NTP server", l.NTP, false); err != nil {
		return err
	}
	for _, n := range append([]string{l.Domain}, l.Search...) {
		if n == "" {
			continue
		}
		if err := CheckDomainName(n); err != nil {
			return refuse("lease: %v", err)
		}
	}
	if len(l.Search) > g.policy.MaxSearch {
		return refuse("lease: %d search domains, at most %d", len(l.Search), g.policy.MaxSearch)
	}
	if l.Hostname != "" {
		if err := CheckHostname(l.Hostname); err != nil {
			return refuse("lease: %v", err)
		}
	}
	if l.MTU != 0 && (l.MTU < g.policy.MTUMin || l.MTU > g.policy.MTUMax) {
		return refuse("lease: MTU %d outside %d..%d", l.MTU, g.policy.MTUMin, g.policy.MTUMax)
	}
	if l.LeaseTime == 0 || l.RenewTime > l.LeaseTime || l.RebindTime > l.LeaseTime {
		return refuse("lease: times lease %d renew %d rebind %d are inconsistent", l.LeaseTime, l.RenewTime, l.RebindTime)
	}
	// As for the address: a saved lease is handed back after a restart,
	// and must not outlast what AddrReplace would allow.
	if l.LeaseTime != InfiniteLifetime && l.LeaseTime > g.policy.MaxLifetime {
		return refuse("lease: lease time %d s is over the %d s allowed", l.LeaseTime, g.policy.MaxLifetime)
	}
	if now := g.policy.Now(); time.Unix(l.Acquired, 0).After(now.Add(time.Minute)) {
		return refuse("lease: acquired at %s, in the future", time.Unix(l.Acquired, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckDomainName accepts a DNS name made of letters, digits, hyphens and
// underscores in dot-separated labels of 1 to 63 bytes, 253 bytes at most,
// with an optional final dot. Nothing else: no spaces, no shell or path
// characters, no control bytes.
func CheckDomainName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return fmt.Errorf("name %q: must be 1 to 253 bytes", truncate(name, 64))
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("name %q: labels must be 1 to 63 bytes", truncate(name, 64))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("name %q: a label starts or ends with a hyphen", truncate(name, 64))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("name %q: invalid byte %#02x", truncate(name, 64), c)
			}
		}
	}
	return nil
}

// CheckHostname accepts a host name the kernel takes (64 bytes at most)
// that is also a valid DNS name without underscores.
func CheckHostname(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("host name %q: longer than 64 bytes", truncate(name, 64))
	}
	if strings.ContainsRune(name, '_') || strings.HasSuffix(name, ".") {
		return fmt.Errorf("host name %q: underscores and a final dot are not allowed", name)
	}
	return CheckDomainName(name)
}

// Describe says what an operation of the catalogue does to the host and
// which checks of p it passes, for audits.
func (p Policy) Describe(k Kind) (does, checks string) {
	owned := "an owned link (" + strings.Join(p.Interfaces, ", ") + "; never lo"
	if len(p.DenyInterfaces) > 0 {
		owned += "; not " + strings.Join(p.DenyInterfaces, ", ")
	}
	owned += ")"
	switch k {
	case OpLinkUp:
		return "bring a link up", owned
	case OpLinkMTU:
		return "set a link's MTU", fmt.Sprintf("%s; MTU %d to %d", owned, p.MTUMin, p.MTUMax)
	case OpAddrReplace:
		return "add or replace the IPv4 address of a link", fmt.Sprintf("%s; one address per link; prefix /%d to /%d, unicast; lifetimes at most %d s (or infinite, for an infinite lease), so the kernel drops the address if the daemon is gone", owned, p.PrefixMin, p.PrefixMax, p.MaxLifetime)
	case OpAddrRemove:
		return "remove an address", "only the address this actuator added"
	case OpRouteReplace:
		return "add or replace an IPv4 route", fmt.Sprintf("%s; via a gateway on the link's subnet; at most %d routes; tagged proto dhcp", owned, p.MaxRoutes)
	case OpRouteRemove:
		return "remove a route", "only a route this actuator added"
	case OpResolvConf:
		if len(p.OwnNameservers) > 0 {
			return "write resolv.conf atomically at the configured path", fmt.Sprintf("name servers only among the stub's own addresses %v; at most %d search domains, each checked; no path comes from the engine", p.OwnNameservers, p.MaxSearch)
		}
		return "write resolv.conf atomically at the configured path", fmt.Sprintf("at most %d name servers and %d search domains, each checked; no path comes from the engine", p.MaxNameservers, p.MaxSearch)
	case OpNTPServers:
		return "write the NTP server list atomically at the configured path", fmt.Sprintf("at most %d addresses, unicast; no path comes from the engine", p.MaxNameservers)
	case OpHostname:
		return "set the host name", "a valid DNS name"
	case OpLeaseSave:
		return "save a lease in the state directory", fmt.Sprintf("%s; at most %d leases; the file is named after the link, which must be owned; no path comes from the engine", owned, p.MaxLeases)
	case OpLeaseDrop:
		return "delete a saved lease", owned
	case OpClockRead:
		return "read the system clock's state (clock_adjtime without changes)", "none needed"
	case OpClockSlew:
		return "slew the system clock: correct it gradually, at the kernel's 500 µs a second", fmt.Sprintf("at most %s", p.Clock.MaxSlew)
	case OpClockFrequency:
		return "set the system clock's frequency correction", fmt.Sprintf("within ±%d ppm", p.Clock.MaxFrequency/FrequencyScale)
	case OpClockStep:
		first := "any size"
		if p.Clock.MaxInitialStep > 0 {
			first = fmt.Sprintf("at most %s", p.Clock.MaxInitialStep)
		}
		return "step the system clock", fmt.Sprintf("the first correction %s; after it, at most the panic threshold of %s, all steps of the last hour together, and one step a %s", first, p.Clock.PanicThreshold, p.Clock.MinStepInterval)
	case OpClockStatus:
		return "set the clock's synchronisation status, leap second and error estimates, which let the kernel keep the RTC", fmt.Sprintf("leap none, insert or delete; errors 0 to %d µs", MaxClockError)
	}
	return "", ""
}
