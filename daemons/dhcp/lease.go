package dhcp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/dyad-project/dyad/privsep"
)

// Bounds the engine applies to what a server offers. The actuator applies
// the same policy again; the engine filters first so that one bad option
// costs that option, not the whole lease.
const (
	minMTU       = privsep.DefaultMTUMin
	maxMTU       = privsep.DefaultMTUMax
	maxServers   = privsep.DefaultMaxNameservers
	maxSearch    = privsep.DefaultMaxSearch
	maxRoutes    = privsep.DefaultMaxRoutes
	minPrefix    = privsep.DefaultPrefixMin
	infiniteLft  = privsep.InfiniteLifetime
	maxLeaseTime = privsep.DefaultMaxLifetime
)

// InterpretLease turns a server's OFFER or ACK into a lease: the option
// interpreters of options.go applied to untrusted bytes. It fails only
// when the message cannot be a lease at all (bad address, no server
// identifier, no or zero lease time, a mask that is not a mask); a bad
// optional value is dropped and reported in the returned warnings.
func InterpretLease(iface string, m *dhcpv4.DHCPv4, now time.Time) (privsep.Lease, []string, error) {
	var warn []string
	note := func(err error) { warn = append(warn, err.Error()) }
	l := privsep.Lease{Interface: iface, Acquired: now.Unix()}

	yi, ok := netip.AddrFromSlice(m.YourIPAddr.To4())
	if !ok {
		return l, nil, errors.New("no address offered (yiaddr)")
	}
	bits := classfulBits(yi)
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optSubnetMask)); b != nil {
		var err error
		if bits, err = parseMask(b); err != nil {
			return l, nil, err
		}
	}
	l.Address = netip.PrefixFrom(yi, bits)
	if err := privsep.CheckHostAddress(l.Address); err != nil {
		return l, nil, fmt.Errorf("offered %w", err)
	}
	if l.Address.Bits() < minPrefix {
		return l, nil, fmt.Errorf("offered prefix length %d is below %d", l.Address.Bits(), minPrefix)
	}

	sid, err := parseAddrs("server identifier", m.Options.Get(dhcpv4.GenericOptionCode(optServerID)))
	if err != nil {
		return l, nil, err
	}
	if len(sid) != 1 || !isUnicast(sid[0]) {
		return l, nil, fmt.Errorf("server identifier %v is not one unicast address", sid)
	}
	l.Server = sid[0]

	lt, err := parseUint32("lease time", m.Options.Get(dhcpv4.GenericOptionCode(optLeaseTime)))
	if err != nil {
		return l, nil, err
	}
	if lt == 0 {
		return l, nil, errors.New("lease time 0")
	}
	if lt != infiniteLft && lt > maxLeaseTime {
		// The actuator caps finite lifetimes so that an address always
		// expires without the daemon; a year is renewed well within it.
		warn = append(warn, fmt.Sprintf("lease time %d s shortened to %d s", lt, maxLeaseTime))
		lt = maxLeaseTime
	}
	l.LeaseTime = lt
	l.RenewTime, l.RebindTime = lt/2, uint32(uint64(lt)*7/8)
	if lt == infiniteLft {
		l.RenewTime, l.RebindTime = infiniteLft, infiniteLft
	}
	t1, err1 := parseUint32("renewal time", m.Options.Get(dhcpv4.GenericOptionCode(optRenewalTime)))
	t2, err2 := parseUint32("rebinding time", m.Options.Get(dhcpv4.GenericOptionCode(optRebindingTime)))
	switch {
	case err1 == nil && err2 == nil && 0 < t1 && t1 < t2 && t2 < lt:
		l.RenewTime, l.RebindTime = t1, t2
	case err1 == nil && err2 != nil && 0 < t1 && t1 < l.RebindTime:
		l.RenewTime = t1
	case err1 != nil && err2 == nil && l.RenewTime < t2 && t2 < lt:
		l.RebindTime = t2
	case m.Options.Has(dhcpv4.GenericOptionCode(optRenewalTime)) || m.Options.Has(dhcpv4.GenericOptionCode(optRebindingTime)):
		warn = append(warn, fmt.Sprintf("renewal/rebinding times %d/%d do not fit lease time %d: using defaults", t1, t2, lt))
	}

	if b := m.Options.Get(dhcpv4.GenericOptionCode(optClasslessRoutes)); b != nil {
		routes, err := parseClasslessRoutes(b)
		if err != nil {
			note(err)
		}
		l.Routes = sanitizeRoutes(routes, l.Address, note)
	}
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optRouter)); b != nil {
		routers, err := parseAddrs("routers", b)
		if err != nil {
			note(err)
		}
		l.Routers = usableRouters(routers, l.Address, note)
	}
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optMTU)); b != nil {
		if mtu, err := parseMTU(b); err != nil {
			note(err)
		} else {
			l.MTU = usableMTU(mtu, note)
		}
	}
	l.DNS = serverList("DNS server", m.Options.Get(dhcpv4.GenericOptionCode(optDNS)), note)
	l.NTP = serverList("NTP server", m.Options.Get(dhcpv4.GenericOptionCode(optNTP)), note)
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optDomainName)); b != nil {
		if d := parseString(b); privsep.CheckDomainName(d) != nil {
			note(fmt.Errorf("domain name %q is not a valid DNS name: ignored", d))
		} else {
			l.Domain = d
		}
	}
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optDomainSearch)); b != nil {
		names, err := parseSearchList(b)
		if err != nil {
			note(err)
		}
		l.Search = usableSearch(names, note)
	}
	if b := m.Options.Get(dhcpv4.GenericOptionCode(optHostname)); b != nil {
		if h := parseString(b); privsep.CheckHostname(h) != nil {
			note(fmt.Errorf("host name %q is not valid: ignored", h))
		} else {
			l.Hostname = h
		}
	}
	return l, warn, nil
}

// sanitizeRoutes keeps the classless routes whose gateway is on-link: in the
// subnet, or inside an on-link route given before it.
func sanitizeRoutes(routes []privsep.Route, addr netip.Prefix, note func(error)) []privsep.Route {
	var out []privsep.Route
	onLink := []netip.Prefix{addr.Masked()}
	for _, r := range routes {
		d := r.Destination
		switch {
		case len(out) >= maxRoutes:
			note(fmt.Errorf("more than %d classless routes: the rest ignored", maxRoutes))
			return out
		case d.Bits() > 0 && (d.Addr().IsLoopback() || d.Addr().IsMulticast() || d.Addr().As4()[0] >= 240):
			note(fmt.Errorf("classless route to %s: loopback, multicast or class E destination ignored", d))
			continue
		case !r.Gateway.IsValid():
			if d.Bits() > 0 {
				onLink = append(onLink, d)
			}
		case !isUnicast(r.Gateway) || r.Gateway == addr.Addr():
			note(fmt.Errorf("classless route to %s: gateway %s is not usable: ignored", d, r.Gateway))
			continue
		default:
			ok := false
			for _, p := range onLink {
				ok = ok || p.Contains(r.Gateway)
			}
			if !ok {
				note(fmt.Errorf("classless route to %s: gateway %s is not on-link: ignored", d, r.Gateway))
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

func serverList(what string, b []byte, note func(error)) []netip.Addr {
	if b == nil {
		return nil
	}
	list, err := parseAddrs(what+"s", b)
	if err != nil {
		note(err)
		return nil
	}
	return usableServers(what, list, note)
}

// usableServers keeps the first maxServers unicast addresses of list.
func usableServers(what string, list []netip.Addr, note func(error)) []netip.Addr {
	var out []netip.Addr
	for _, a := range list {
		switch {
		case !isUnicast(a):
			note(fmt.Errorf("%s %s is not a unicast address: ignored", what, a))
		case len(out) >= maxServers:
			note(fmt.Errorf("%s %s is beyond the %d kept", what, a, maxServers))
		default:
			out = append(out, a)
		}
	}
	return out
}

// usableSearch keeps the first maxSearch valid names of a search list.
func usableSearch(names []string, note func(error)) []string {
	var out []string
	for _, n := range names {
		switch {
		case privsep.CheckDomainName(n) != nil:
			note(fmt.Errorf("search domain %q is not a valid DNS name: ignored", n))
		case len(out) >= maxSearch:
			note(fmt.Errorf("search domain %q is beyond the %d kept", n, maxSearch))
		default:
			out = append(out, n)
		}
	}
	return out
}

// usableMTU returns mtu, or 0 (none) when it is outside what the host
// takes.
func usableMTU(mtu int, note func(error)) int {
	if mtu < minMTU || mtu > maxMTU {
		note(fmt.Errorf("interface MTU %d outside %d..%d: ignored", mtu, minMTU, maxMTU))
		return 0
	}
	return mtu
}

// usableRouters keeps the routers on the subnet of addr, other than addr.
func usableRouters(routers []netip.Addr, addr netip.Prefix, note func(error)) []netip.Addr {
	var out []netip.Addr
	subnet := addr.Masked()
	for _, r := range routers {
		switch {
		case !isUnicast(r):
			note(fmt.Errorf("router %s is not a unicast address: ignored", r))
		case !subnet.Contains(r) || r == addr.Addr():
			note(fmt.Errorf("router %s is not on the subnet %s: ignored", r, subnet))
		default:
			out = append(out, r)
		}
	}
	return out
}

// cleanSaved holds a saved lease to the rules a server's lease is held to,
// and returns the copy the client may use. The actuator's copy is trusted,
// but the engine would rather not ask for what the actuator must refuse
// (found by FuzzActuatorReply): a lease it could not have bound is an
// error; a value it would have dropped is dropped.
func cleanSaved(saved *privsep.Lease) (*privsep.Lease, error) {
	l := *saved
	if err := privsep.CheckHostAddress(l.Address); err != nil {
		return nil, fmt.Errorf("saved lease: %w", err)
	}
	if l.Address.Bits() < minPrefix {
		return nil, fmt.Errorf("saved lease: prefix length %d is below %d", l.Address.Bits(), minPrefix)
	}
	if !isUnicast(l.Server) {
		return nil, fmt.Errorf("saved lease: server %v is not a unicast address", l.Server)
	}
	if l.LeaseTime == 0 {
		return nil, errors.New("saved lease: no lease time")
	}
	if l.LeaseTime != infiniteLft && l.LeaseTime > maxLeaseTime {
		return nil, fmt.Errorf("saved lease: lease time %d s is over %d s", l.LeaseTime, maxLeaseTime)
	}
	if l.LeaseTime != infiniteLft && !(0 < l.RenewTime && l.RenewTime < l.RebindTime && l.RebindTime < l.LeaseTime) {
		l.RenewTime, l.RebindTime = l.LeaseTime/2, uint32(uint64(l.LeaseTime)*7/8)
	}
	ignore := func(error) {}
	l.Routers = usableRouters(l.Routers, l.Address, ignore)
	l.Routes = sanitizeRoutes(l.Routes, l.Address, ignore)
	l.DNS = usableServers("DNS server", l.DNS, ignore)
	l.NTP = usableServers("NTP server", l.NTP, ignore)
	l.Search = usableSearch(l.Search, ignore)
	if privsep.CheckDomainName(l.Domain) != nil {
		l.Domain = ""
	}
	if privsep.CheckHostname(l.Hostname) != nil {
		l.Hostname = ""
	}
	if l.MTU != 0 {
		l.MTU = usableMTU(l.MTU, ignore)
	}
	return &l, nil
}

// isUnicast accepts an IPv4 address a host may use or talk to.
func isUnicast(a netip.Addr) bool { return privsep.CheckUnicast(a) == nil }
