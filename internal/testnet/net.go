package testnet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runTimeout bounds every command that Run and the helpers run to completion.
const runTimeout = 60 * time.Second

// Net is a link between two network namespaces: a veth pair whose server end
// ServerIf, in namespace Server, has the address ServerAddr and is up, and
// whose client end ClientIf, in namespace Client, is up with no IPv4 address,
// for the client under test to configure. Loopback is up in both namespaces.
type Net struct {
	Server, Client     string // network namespace names, as `ip netns` knows them
	ServerIf, ClientIf string // interface names inside the namespaces
	ServerAddr         netip.Prefix
	ServerMAC          net.HardwareAddr
	ClientMAC          net.HardwareAddr
}

// Config adjusts what NewNetConfig creates. Its zero value gives what NewNet
// creates.
type Config struct {
	// Client names an existing client namespace, usually another Net's
	// Client, to put this link's client end in: a client under test then
	// sees several interfaces, each with its own server. The Net that
	// created the namespace deletes it. Empty creates a new namespace.
	Client string
	// ServerIf and ClientIf name the veth ends; by default veth-s and
	// veth-c. Two Nets sharing a client namespace need different ClientIfs.
	ServerIf, ClientIf string
	// Subnet is the link's IPv4 subnet; the server takes its first host
	// address. By default 198.18.N.0/24 with N random in 1..254: RFC 2544's
	// benchmarking range, which is never routed, with a different N per
	// Net so that logs tell them apart, and one no other server has when
	// the client namespace is shared.
	Subnet netip.Prefix
}

// NewNet creates a Net with new server and client namespaces, and registers
// cleanups that delete them.
func NewNet(t testing.TB) *Net {
	t.Helper()
	return NewNetConfig(t, Config{})
}

// NewNetConfig creates a Net as c says, and registers cleanups that delete
// the namespaces it created.
func NewNetConfig(t testing.TB, c Config) *Net {
	t.Helper()
	RequireIsolated(t)
	RequireTools(t, "ip")

	subnet := c.Subnet
	if !subnet.IsValid() {
		subnet = randomSubnet(t, c.Client != "")
	}
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() > 30 {
		t.Fatalf("testnet: subnet %v: need an IPv4 subnet with room for two hosts", subnet)
	}
	n := &Net{
		ServerIf:   cmp.Or(c.ServerIf, "veth-s"),
		ClientIf:   cmp.Or(c.ClientIf, "veth-c"),
		ServerAddr: netip.PrefixFrom(subnet.Addr().Next(), subnet.Bits()),
		ServerMAC:  randomMAC('s'),
		ClientMAC:  randomMAC('c'),
	}

	n.Server = addNamespace(t, "s")
	if c.Client == "" {
		n.Client = addNamespace(t, "c")
	} else {
		if _, err := os.Stat("/run/netns/" + c.Client); err != nil {
			t.Fatalf("testnet: client namespace %q: %v", c.Client, err)
		}
		n.Client = c.Client
	}
	for _, args := range [][]string{
		{"-n", n.Server, "link", "set", "lo", "up"},
		{"-n", n.Client, "link", "set", "lo", "up"},
		// Created from inside the server namespace, with the peer moved
		// straight into the client's: nothing touches the host's.
		{"-n", n.Server, "link", "add", n.ServerIf, "address", n.ServerMAC.String(), "type", "veth",
			"peer", "name", n.ClientIf, "address", n.ClientMAC.String(), "netns", n.Client},
		{"-n", n.Server, "addr", "add", n.ServerAddr.String(), "dev", n.ServerIf},
		{"-n", n.Server, "link", "set", n.ServerIf, "up"},
		{"-n", n.Client, "link", "set", n.ClientIf, "up"},
	} {
		if out, err := run(context.Background(), "ip", args...); err != nil {
			t.Fatalf("testnet: %v\n%s", err, out)
		}
	}
	return n
}

// randomSubnet returns 198.18.N.0/24 with N random in 1..254. If avoid is
// set, because the new link's client end joins a namespace that other links
// already reach, it also avoids the subnets of every other server: two links
// of one client in one subnet would share a route.
func randomSubnet(t testing.TB, avoid bool) netip.Prefix {
	t.Helper()
	used := make(map[netip.Prefix]bool)
	if avoid {
		entries, err := os.ReadDir("/run/netns")
		if err != nil {
			t.Fatalf("testnet: %v", err)
		}
		for _, e := range entries {
			var links []ipAddrJSON
			out, err := run(context.Background(), "ip", "-n", e.Name(), "-j", "-4", "addr", "show")
			if err != nil {
				t.Fatalf("testnet: %v\n%s", err, out)
			}
			if err := json.Unmarshal(out, &links); err != nil {
				t.Fatalf("testnet: decoding ip addr show in %s: %v", e.Name(), err)
			}
			for _, l := range links {
				for _, ai := range l.AddrInfo {
					if a, err := netip.ParseAddr(ai.Local); err == nil {
						used[netip.PrefixFrom(a, 24).Masked()] = true
					}
				}
			}
		}
	}
	// 254 candidates, visited from a random start: bounded, and random
	// while there is a choice.
	start := rand.IntN(254)
	for i := range 254 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(1 + (start+i)%254), 0}), 24)
		if !used[p] {
			return p
		}
	}
	t.Fatal("testnet: no free subnet left in 198.18.1.0-198.18.254.0")
	return netip.Prefix{}
}

// addNamespace creates a network namespace with a fresh name starting with
// prefix and registers its deletion.
func addNamespace(t testing.TB, prefix string) string {
	t.Helper()
	// Names are random, so a clash is all but impossible; a few tries
	// make it harmless.
	var lastErr error
	for range 3 {
		name := fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
		out, err := run(context.Background(), "ip", "netns", "add", name)
		if err != nil {
			lastErr = fmt.Errorf("%w: %s", err, out)
			continue
		}
		t.Cleanup(func() {
			if out, err := run(context.Background(), "ip", "netns", "delete", name); err != nil {
				t.Errorf("testnet: deleting namespace %s: %v\n%s", name, err, out)
			}
		})
		return name
	}
	t.Fatalf("testnet: creating a network namespace: %v", lastErr)
	return ""
}

// EnterNamespace moves the calling thread into the network namespace ns,
// one that NewNet made. The caller must hold the thread
// (runtime.LockOSThread) and never give it back: the runtime then ends
// the thread with its goroutine, rather than hand another goroutine a
// thread in a test namespace.
func EnterNamespace(ns string) error {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	return nil
}

// randomMAC returns a random locally administered unicast address whose
// second and third octets spell "d" and the given role letter, so that
// captures tell the client's frames from the server's.
func randomMAC(role byte) net.HardwareAddr {
	r := rand.Uint32()
	return net.HardwareAddr{0x02, 'd', role, byte(r >> 16), byte(r >> 8), byte(r)}
}

// checkNS fails the test unless ns is one of n's namespaces: a command meant
// for a test namespace must never run in the host's by mistake.
func (n *Net) checkNS(t testing.TB, ns string) {
	t.Helper()
	if ns == "" || (ns != n.Server && ns != n.Client) {
		t.Fatalf("testnet: %q is not one of this Net's namespaces (%s, %s)", ns, n.Server, n.Client)
	}
}

// Command returns a command that runs name with args in namespace ns, which
// must be n.Server or n.Client, through `ip netns exec` (which also mounts a
// sysfs of that namespace), for a test that needs to set the environment,
// standard input or the like; [StartCommand] starts it in the background. The
// command is killed if ctx is done.
func (n *Net) Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.WaitDelay = waitDelay
	return cmd
}

// Run runs name with args in namespace ns to completion, at most a minute,
// and returns its combined output.
func (n *Net) Run(t testing.TB, ns, name string, args ...string) ([]byte, error) {
	t.Helper()
	return n.runFor(t, runTimeout, ns, name, args...)
}

// runFor is Run with another bound.
func (n *Net) runFor(t testing.TB, timeout time.Duration, ns, name string, args ...string) ([]byte, error) {
	t.Helper()
	n.checkNS(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := n.Command(ctx, ns, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w", strings.Join(append([]string{name}, args...), " "), ns, err)
	}
	return out, nil
}

// Start starts name with args in the background in namespace ns and
// registers a cleanup that stops it; see [StartCommand].
func (n *Net) Start(t testing.TB, ns, name string, args ...string) *Proc {
	t.Helper()
	n.checkNS(t, ns)
	return StartCommand(t, n.Command(context.Background(), ns, name, args...))
}

// run runs a command in the test's own namespace, bounded by runTimeout.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

// ipJSON runs `ip -n ns -j args...` and decodes its output into v.
func (n *Net) ipJSON(t testing.TB, ns string, v any, args ...string) {
	t.Helper()
	n.checkNS(t, ns)
	out, err := run(context.Background(), "ip", append([]string{"-n", ns, "-j"}, args...)...)
	if err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("testnet: decoding the output of ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Forever is the lifetime of an address that does not expire.
const Forever time.Duration = 1<<63 - 1

// Addr is an IPv4 address on an interface, as the kernel reports it.
type Addr struct {
	Prefix netip.Prefix
	// Valid and Preferred are the remaining lifetimes, Forever for a
	// permanent address; the kernel counts them down in whole seconds.
	Valid, Preferred time.Duration
	// Dynamic is set for an address added with a finite lifetime.
	Dynamic bool
	// Broadcast is the broadcast address, if one was set.
	Broadcast netip.Addr
}

type ipAddrJSON struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Family            string `json:"family"`
		Local             string `json:"local"`
		PrefixLen         int    `json:"prefixlen"`
		Broadcast         string `json:"broadcast"`
		Dynamic           bool   `json:"dynamic"`
		ValidLifeTime     uint32 `json:"valid_life_time"`
		PreferredLifeTime uint32 `json:"preferred_life_time"`
	} `json:"addr_info"`
}

// AddrLifetimes returns the IPv4 addresses on interface ifname in namespace
// ns, with their lifetimes.
func (n *Net) AddrLifetimes(t testing.TB, ns, ifname string) []Addr {
	t.Helper()
	var links []ipAddrJSON
	n.ipJSON(t, ns, &links, "-4", "addr", "show", "dev", ifname)
	var addrs []Addr
	for _, l := range links {
		for _, ai := range l.AddrInfo {
			if ai.Family != "inet" {
				continue
			}
			a, err := netip.ParseAddr(ai.Local)
			if err != nil {
				t.Fatalf("testnet: ip addr show dev %s in %s: %v", ifname, ns, err)
			}
			addr := Addr{
				Prefix:    netip.PrefixFrom(a, ai.PrefixLen),
				Valid:     lifetime(ai.ValidLifeTime),
				Preferred: lifetime(ai.PreferredLifeTime),
				Dynamic:   ai.Dynamic,
			}
			if ai.Broadcast != "" {
				addr.Broadcast, err = netip.ParseAddr(ai.Broadcast)
				if err != nil {
					t.Fatalf("testnet: ip addr show dev %s in %s: broadcast: %v", ifname, ns, err)
				}
			}
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

func lifetime(secs uint32) time.Duration {
	if secs == 1<<32-1 {
		return Forever
	}
	return time.Duration(secs) * time.Second
}

// Addrs returns the IPv4 addresses on interface ifname in namespace ns.
func (n *Net) Addrs(t testing.TB, ns, ifname string) []netip.Prefix {
	t.Helper()
	var prefixes []netip.Prefix
	for _, a := range n.AddrLifetimes(t, ns, ifname) {
		prefixes = append(prefixes, a.Prefix)
	}
	return prefixes
}

// Route is an IPv4 route of the main table, as the kernel reports it.
type Route struct {
	Dst      netip.Prefix // 0.0.0.0/0 for the default route
	Gateway  netip.Addr   // the zero Addr for a route on the link
	Dev      string
	Protocol string // "kernel", "boot", "static", "dhcp", ... or a number
	Scope    string // "link", "host", or "" for global
	Src      netip.Addr
	Metric   int
	Flags    []string // "onlink", ...
}

// String formats r much as `ip route` does.
func (r Route) String() string {
	var b strings.Builder
	if r.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	b.WriteString(" dev " + r.Dev)
	if r.Protocol != "" && r.Protocol != "boot" {
		b.WriteString(" proto " + r.Protocol)
	}
	if r.Scope != "" {
		b.WriteString(" scope " + r.Scope)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Metric != 0 {
		b.WriteString(" metric " + strconv.Itoa(r.Metric))
	}
	for _, f := range r.Flags {
		b.WriteString(" " + f)
	}
	return b.String()
}

type ipRouteJSON struct {
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Scope    string   `json:"scope"`
	PrefSrc  string   `json:"prefsrc"`
	Metric   int      `json:"metric"`
	Flags    []string `json:"flags"`
}

// Routes returns the IPv4 routes of the main table in namespace ns.
func (n *Net) Routes(t testing.TB, ns string) []Route {
	t.Helper()
	var raw []ipRouteJSON
	n.ipJSON(t, ns, &raw, "-4", "route", "show", "table", "main")
	routes := make([]Route, 0, len(raw))
	for _, r := range raw {
		route, err := parseRoute(r)
		if err != nil {
			t.Fatalf("testnet: ip route in %s: %v", ns, err)
		}
		routes = append(routes, route)
	}
	return routes
}

func parseRoute(r ipRouteJSON) (Route, error) {
	route := Route{
		Dev:      r.Dev,
		Protocol: r.Protocol,
		Scope:    r.Scope,
		Metric:   r.Metric,
		Flags:    slices.Clone(r.Flags),
	}
	var err error
	switch {
	case r.Dst == "default":
		route.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case strings.Contains(r.Dst, "/"):
		route.Dst, err = netip.ParsePrefix(r.Dst)
	default:
		var a netip.Addr
		a, err = netip.ParseAddr(r.Dst)
		route.Dst = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil {
		return Route{}, fmt.Errorf("destination %q: %w", r.Dst, err)
	}
	if r.Gateway != "" {
		if route.Gateway, err = netip.ParseAddr(r.Gateway); err != nil {
			return Route{}, fmt.Errorf("gateway %q: %w", r.Gateway, err)
		}
	}
	if r.PrefSrc != "" {
		if route.Src, err = netip.ParseAddr(r.PrefSrc); err != nil {
			return Route{}, fmt.Errorf("source %q: %w", r.PrefSrc, err)
		}
	}
	if route.Scope == "global" || route.Scope == "universe" {
		route.Scope = ""
	}
	return route, nil
}

// Link is the state of a network interface.
type Link struct {
	Name      string
	MTU       int
	Up        bool   // administratively up (IFF_UP)
	OperState string // "UP", "DOWN", "LOWERLAYERDOWN", ...
	MAC       net.HardwareAddr
}

// Link returns the state of interface ifname in namespace ns.
func (n *Net) Link(t testing.TB, ns, ifname string) Link {
	t.Helper()
	var raw []struct {
		IfName    string   `json:"ifname"`
		Flags     []string `json:"flags"`
		MTU       int      `json:"mtu"`
		OperState string   `json:"operstate"`
		Address   string   `json:"address"`
	}
	n.ipJSON(t, ns, &raw, "link", "show", "dev", ifname)
	if len(raw) != 1 {
		t.Fatalf("testnet: ip link show dev %s in %s: %d links", ifname, ns, len(raw))
	}
	l := Link{
		Name:      raw[0].IfName,
		MTU:       raw[0].MTU,
		Up:        slices.Contains(raw[0].Flags, "UP"),
		OperState: raw[0].OperState,
	}
	mac, err := net.ParseMAC(raw[0].Address)
	if err != nil {
		t.Fatalf("testnet: ip link show dev %s in %s: address %q: %v", ifname, ns, raw[0].Address, err)
	}
	l.MAC = mac
	return l
}

// Dialer returns a dial function that opens its connections in namespace
// ns, whatever thread the caller runs on: for code under test that dials
// from goroutines of its own, which would otherwise open sockets in the
// host's namespace. Its thread ends with the test.
func (n *Net) Dialer(t testing.TB, ns string) func(ctx context.Context, network, address string) (net.Conn, error) {
	t.Helper()
	n.checkNS(t, ns)
	type dialed struct {
		conn net.Conn
		err  error
	}
	type request struct {
		ctx              context.Context
		network, address string
		reply            chan dialed
	}
	requests := make(chan request)
	ready := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := EnterNamespace(ns); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for {
			select {
			case r := <-requests:
				var d net.Dialer
				c, err := d.DialContext(r.ctx, r.network, r.address)
				r.reply <- dialed{c, err}
			case <-stop:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() { close(stop) })
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		r := request{ctx, network, address, make(chan dialed, 1)}
		select {
		case requests <- r:
		case <-stop:
			return nil, errors.New("testnet: the test is over")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		d := <-r.reply
		return d.conn, d.err
	}
}
