package backend

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
)

// Forever is the lifetime of an address that never expires.
const Forever uint32 = privsep.InfiniteLifetime

const (
	// protoDHCP tags the routes installed here (RTPROT_DHCP, as dhcpcd and
	// systemd-networkd use), so that they are told apart from the kernel's
	// and the operator's, and so that removal never touches those.
	protoDHCP = unix.RTPROT_DHCP

	// dumpAttempts bounds the retries of a dump the kernel interrupted
	// because the table changed under it.
	dumpAttempts = 5

	// requestTimeout bounds each netlink request, so that no call can hang
	// the actuator.
	requestTimeout = 5 * time.Second
)

// Netlink performs link, address and route changes through rtnetlink. It
// acts in the network namespace it was created in, whatever thread later
// uses it, and is safe for use by one goroutine at a time.
type Netlink struct {
	h *netlink.Handle
}

// AddrInfo describes an IPv4 address on a link as the kernel reports it.
// The lifetimes are the seconds remaining, Forever for none.
type AddrInfo struct {
	Prefix            netip.Prefix
	Broadcast         netip.Addr // zero when the address has none
	ValidLifetime     uint32
	PreferredLifetime uint32
}

// NewNetlink opens an rtnetlink handle in the current thread's network
// namespace.
func NewNetlink() (*Netlink, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("backend: open rtnetlink: %w", err)
	}
	if err := h.SetSocketTimeout(requestTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("backend: rtnetlink timeout: %w", err)
	}
	return &Netlink{h: h}, nil
}

// Close releases the handle's sockets.
func (n *Netlink) Close() {
	n.h.Close()
}

func (n *Netlink) link(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("backend: link %s: %w", name, err)
	}
	return l, nil
}

// LinkUp brings a link administratively up.
func (n *Netlink) LinkUp(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("backend: %s: set up: %w", name, err)
	}
	return nil
}

// SetMTU sets a link's MTU.
func (n *Netlink) SetMTU(name string, mtu int) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.h.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("backend: %s: set mtu %d: %w", name, mtu, err)
	}
	return nil
}

// ReplaceAddr installs or refreshes an IPv4 address with its valid and
// preferred lifetimes in seconds (Forever for none), so that the kernel
// removes the address by itself when the lease runs out, even if the
// daemon is gone by then. The broadcast address is derived from the prefix
// (none for /31 and /32, RFC 3021).
//
// It sends RTM_NEWADDR with NLM_F_REPLACE: refreshing an address already
// present only updates its lifetimes, it is never removed and added again,
// so connections using it survive a renewal.
func (n *Netlink) ReplaceAddr(name string, addr netip.Prefix, valid, preferred uint32) error {
	if !addr.IsValid() || !addr.Addr().Is4() {
		return fmt.Errorf("backend: %s: replace address %v: not an IPv4 prefix", name, addr)
	}
	// The kernel refuses these; the library would also turn 0/0 into an
	// address that never expires, the opposite of what was asked.
	if valid == 0 || preferred > valid {
		return fmt.Errorf("backend: %s: replace address %v: invalid lifetimes valid %d preferred %d", name, addr, valid, preferred)
	}
	l, err := n.link(name)
	if err != nil {
		return err
	}
	a := ipv4Addr(addr)
	a.ValidLft = int(valid)
	a.PreferedLft = int(preferred)
	if err := n.h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("backend: %s: replace address %v: %w", name, addr, err)
	}
	return nil
}

// RemoveAddr removes an IPv4 address from a link. An address that is not
// there is not an error: it is already gone, perhaps expired.
func (n *Netlink) RemoveAddr(name string, addr netip.Prefix) error {
	if !addr.IsValid() || !addr.Addr().Is4() {
		return fmt.Errorf("backend: %s: remove address %v: not an IPv4 prefix", name, addr)
	}
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.h.AddrDel(l, ipv4Addr(addr)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("backend: %s: remove address %v: %w", name, addr, err)
	}
	return nil
}

// ipv4Addr converts an IPv4 prefix with its broadcast address.
func ipv4Addr(p netip.Prefix) *netlink.Addr {
	bits := p.Bits()
	ip := p.Addr().As4()
	mask := net.CIDRMask(bits, 32)
	// net.IPv4zero tells the library not to add a broadcast address.
	brd := net.IPv4zero
	if bits < 31 {
		b := make(net.IP, 4)
		for i := range b {
			b[i] = ip[i] | ^mask[i]
		}
		brd = b
	}
	return &netlink.Addr{
		IPNet:     &net.IPNet{IP: net.IP(ip[:]), Mask: mask},
		Broadcast: brd,
	}
}

// Addrs lists a link's IPv4 addresses with their remaining lifetimes.
func (n *Netlink) Addrs(name string) ([]AddrInfo, error) {
	l, err := n.link(name)
	if err != nil {
		return nil, err
	}
	as, err := dump(func() ([]netlink.Addr, error) { return n.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("backend: %s: list addresses: %w", name, err)
	}
	out := make([]AddrInfo, 0, len(as))
	for _, a := range as {
		ip, _ := netip.AddrFromSlice(a.IP)
		bits, _ := a.Mask.Size()
		bc, _ := netip.AddrFromSlice(a.Broadcast)
		out = append(out, AddrInfo{
			Prefix:            netip.PrefixFrom(ip.Unmap(), bits),
			Broadcast:         bc.Unmap(),
			ValidLifetime:     uint32(a.ValidLft),
			PreferredLifetime: uint32(a.PreferedLft),
		})
	}
	return out, nil
}

// ReplaceRoute installs a route in the main table, tagged proto dhcp. A
// zero Gateway makes the destination on-link (scope link); a valid Source
// becomes the preferred source address; Metric is the route's priority.
// A route with the same destination and metric is replaced only if it is
// one of ours: the kernel's replace matches on destination and metric
// alone, whatever the link, and would otherwise overwrite the operator's
// routes or another link's.
func (n *Netlink) ReplaceRoute(r privsep.Route) error {
	nr, err := n.route(r)
	if err != nil {
		return err
	}
	existing, err := dump(func() ([]netlink.Route, error) {
		return n.h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN, Dst: nr.Dst},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	})
	if err != nil {
		return fmt.Errorf("backend: %s: list routes to %s: %w", r.Interface, r.Destination, err)
	}
	for _, e := range existing {
		if e.Priority == nr.Priority && (e.Protocol != protoDHCP || e.LinkIndex != nr.LinkIndex) {
			return fmt.Errorf("backend: %s: route %s would replace a route this daemon does not own (proto %d, link %d)",
				r.Interface, routeString(r), e.Protocol, e.LinkIndex)
		}
	}
	if err := n.h.RouteReplace(nr); err != nil {
		return fmt.Errorf("backend: %s: replace route %s: %w", r.Interface, routeString(r), err)
	}
	return nil
}

// RemoveRoute removes a route installed by ReplaceRoute. A route that is
// not there is not an error. Only routes tagged proto dhcp are removed.
func (n *Netlink) RemoveRoute(r privsep.Route) error {
	nr, err := n.route(r)
	if err != nil {
		return err
	}
	if err := n.h.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("backend: %s: remove route %s: %w", r.Interface, routeString(r), err)
	}
	return nil
}

// route converts r, checking what the kernel would otherwise reject with
// a less helpful message.
func (n *Netlink) route(r privsep.Route) (*netlink.Route, error) {
	d := r.Destination
	switch {
	case !d.IsValid() || !d.Addr().Is4():
		return nil, fmt.Errorf("backend: %s: route %s: destination not an IPv4 prefix", r.Interface, routeString(r))
	case d != d.Masked():
		return nil, fmt.Errorf("backend: %s: route %s: destination has host bits set", r.Interface, routeString(r))
	case r.Gateway.IsValid() && !r.Gateway.Is4():
		return nil, fmt.Errorf("backend: %s: route %s: gateway not IPv4", r.Interface, routeString(r))
	case r.Source.IsValid() && !r.Source.Is4():
		return nil, fmt.Errorf("backend: %s: route %s: source not IPv4", r.Interface, routeString(r))
	}
	l, err := n.link(r.Interface)
	if err != nil {
		return nil, err
	}
	dst := d.Addr().As4()
	nr := &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IP(dst[:]), Mask: net.CIDRMask(d.Bits(), 32)},
		Protocol:  protoDHCP,
		Table:     unix.RT_TABLE_MAIN,
		Priority:  int(r.Metric),
		Scope:     netlink.SCOPE_LINK,
	}
	if r.Gateway.IsValid() {
		gw := r.Gateway.As4()
		nr.Gw = net.IP(gw[:])
		nr.Scope = netlink.SCOPE_UNIVERSE
	}
	if r.Source.IsValid() {
		src := r.Source.As4()
		nr.Src = net.IP(src[:])
	}
	return nr, nil
}

// Routes lists the IPv4 routes of the main table through a link that are
// tagged proto dhcp.
func (n *Netlink) Routes(name string) ([]privsep.Route, error) {
	l, err := n.link(name)
	if err != nil {
		return nil, err
	}
	filter := &netlink.Route{LinkIndex: l.Attrs().Index, Protocol: protoDHCP, Table: unix.RT_TABLE_MAIN}
	mask := netlink.RT_FILTER_OIF | netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE
	rs, err := dump(func() ([]netlink.Route, error) { return n.h.RouteListFiltered(netlink.FAMILY_V4, filter, mask) })
	if err != nil {
		return nil, fmt.Errorf("backend: %s: list routes: %w", name, err)
	}
	out := make([]privsep.Route, 0, len(rs))
	for _, r := range rs {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0) // no RTA_DST: the default route
		if r.Dst != nil {
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			bits, _ := r.Dst.Mask.Size()
			dst = netip.PrefixFrom(ip.Unmap(), bits)
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		src, _ := netip.AddrFromSlice(r.Src)
		out = append(out, privsep.Route{
			Interface:   name,
			Destination: dst,
			Gateway:     gw.Unmap(),
			Source:      src.Unmap(),
			Metric:      uint32(r.Priority),
		})
	}
	return out, nil
}

// Links lists the current links.
func (n *Netlink) Links() ([]privsep.LinkEvent, error) {
	ls, err := dump(n.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("backend: list links: %w", err)
	}
	out := make([]privsep.LinkEvent, 0, len(ls))
	for _, l := range ls {
		out = append(out, linkEvent(l))
	}
	return out, nil
}

// linkEvent describes a link. Carrier is IFF_LOWER_UP, which the kernel
// sets only while the link is up and its carrier is present.
func linkEvent(l netlink.Link) privsep.LinkEvent {
	a := l.Attrs()
	return privsep.LinkEvent{
		Index:        a.Index,
		Name:         a.Name,
		HardwareAddr: bytes.Clone(a.HardwareAddr),
		AdminUp:      a.RawFlags&unix.IFF_UP != 0,
		Carrier:      a.RawFlags&unix.IFF_LOWER_UP != 0,
		MTU:          a.MTU,
	}
}

// dump runs a netlink dump again while the kernel reports it interrupted
// (the table changed during the dump, so the result may be partial), a
// bounded number of times.
func dump[T any](f func() ([]T, error)) ([]T, error) {
	var err error
	for range dumpAttempts {
		var v []T
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return nil, fmt.Errorf("%w (%d attempts)", err, dumpAttempts)
}

// routeString formats a route for error messages.
func routeString(r privsep.Route) string {
	s := r.Destination.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Source.IsValid() {
		s += " src " + r.Source.String()
	}
	return fmt.Sprintf("%s metric %d", s, r.Metric)
}
