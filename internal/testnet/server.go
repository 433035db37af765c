package testnet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kind names a DHCP server implementation.
type Kind string

const (
	// Dnsmasq is dnsmasq's DHCP server. It refuses leases shorter than two
	// minutes, NAKs a requested address outside its range, and has rapid
	// commit.
	Dnsmasq Kind = "dnsmasq"
	// Kea is ISC's kea-dhcp4 (2.2 in Debian 12), on a raw socket so that
	// it serves clients without an address. It allows leases of a few
	// seconds, for renewal and expiry tests, but silently drops an
	// INIT-REBOOT request for an address outside all its pools: to make it
	// NAK, reserve the address for another MAC (see ServerOptions.Hosts).
	// It has no DHCPv4 rapid commit. (Debian ships AppArmor profiles for
	// kea-dhcp4 and dhclient that would refuse the temporary paths on a
	// host that enforces AppArmor; this project's machines do not.)
	Kea Kind = "kea"
)

// readyTimeout bounds how long a server may take to start listening.
const readyTimeout = 15 * time.Second

// ServerOptions says what a DHCP server hands out. The zero value hands out
// addresses from the default range for an hour and no options; see
// [Net.DefaultOptions] for a typical set.
type ServerOptions struct {
	// RangeStart and RangeEnd bound the dynamic pool; by default hosts
	// .100 to .199 of a /24 (the upper half of a smaller subnet).
	RangeStart, RangeEnd netip.Addr
	// PrefixLen is the subnet mask handed out (option 1); by default the
	// Net's. The subnet it makes must contain the server's address.
	PrefixLen int
	// LeaseTime is the lease's lifetime (option 51), in whole seconds;
	// by default an hour. dnsmasq refuses less than two minutes.
	LeaseTime time.Duration
	// RenewTime and RebindTime are T1 and T2 (options 58 and 59); zero
	// lets the server derive them (half and seven eighths of the lease).
	RenewTime, RebindTime time.Duration
	// Router is the default gateway (option 3); the zero Addr sends none.
	Router netip.Addr
	DNS    []netip.Addr // option 6
	Domain string       // option 15
	Search []string     // option 119
	NTP    []netip.Addr // option 42
	MTU    int          // option 26; zero sends none
	// Routes are classless static routes (option 121, RFC 3442).
	Routes []StaticRoute
	// Hostname is the host name (option 12) handed to the Net's client,
	// by its MAC address. Servers send it when the client asks for it.
	Hostname string
	// Hosts are reservations by MAC address. Reserving for another MAC the
	// address a client holds makes both servers NAK that client.
	Hosts []Host
	// RapidCommit answers a DISCOVER that asks for it with an ACK (RFC
	// 4039). dnsmasq only.
	RapidCommit bool
}

// StaticRoute is one route of option 121.
type StaticRoute struct {
	Dst     netip.Prefix
	Gateway netip.Addr
}

// Host is a reservation: a fixed address, a host name, or both.
type Host struct {
	MAC      net.HardwareAddr
	Addr     netip.Addr // zero: from the pool
	Hostname string
}

// DefaultOptions returns options that exercise the common case: the default
// range, an hour's lease, the server as router, DNS and NTP server, and
// domain dyad.test.
func (n *Net) DefaultOptions() ServerOptions {
	start, end := defaultRange(n.ServerAddr.Masked())
	srv := n.ServerAddr.Addr()
	return ServerOptions{
		RangeStart: start,
		RangeEnd:   end,
		PrefixLen:  n.ServerAddr.Bits(),
		LeaseTime:  time.Hour,
		Router:     srv,
		DNS:        []netip.Addr{srv},
		Domain:     "dyad.test",
		NTP:        []netip.Addr{srv},
	}
}

// defaultRange returns hosts .100 to .199 of subnet, or its upper half when
// it is smaller than a /24.
func defaultRange(subnet netip.Prefix) (start, end netip.Addr) {
	size := uint32(1) << (32 - subnet.Bits())
	first, last := uint32(100), uint32(199)
	if size < 256 {
		first, last = max(size/2, 2), size-2
	}
	base := subnet.Addr().As4()
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	return addrFrom(b + first), addrFrom(b + last)
}

func addrFrom(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// withDefaults fills in the defaults of o for n, and checks what the two
// servers would otherwise report in their own, less clear, words.
func (o ServerOptions) withDefaults(n *Net) (ServerOptions, error) {
	if o.PrefixLen == 0 {
		o.PrefixLen = n.ServerAddr.Bits()
	}
	if o.PrefixLen < 1 || o.PrefixLen > 30 {
		return o, fmt.Errorf("prefix length %d: need 1..30", o.PrefixLen)
	}
	subnet := netip.PrefixFrom(n.ServerAddr.Addr(), o.PrefixLen).Masked()
	if !o.RangeStart.IsValid() && !o.RangeEnd.IsValid() {
		o.RangeStart, o.RangeEnd = defaultRange(subnet)
	}
	if !subnet.Contains(o.RangeStart) || !subnet.Contains(o.RangeEnd) || o.RangeEnd.Less(o.RangeStart) {
		return o, fmt.Errorf("range %v-%v is not an ordered range in subnet %v", o.RangeStart, o.RangeEnd, subnet)
	}
	if o.LeaseTime == 0 {
		o.LeaseTime = time.Hour
	}
	for _, d := range []time.Duration{o.LeaseTime, o.RenewTime, o.RebindTime} {
		if d < 0 || d%time.Second != 0 {
			return o, fmt.Errorf("lease time, T1 and T2 must be whole, non-negative seconds; got %v", d)
		}
	}
	if o.LeaseTime < time.Second {
		return o, fmt.Errorf("lease time %v: need at least a second", o.LeaseTime)
	}
	if o.Router.IsValid() && !subnet.Contains(o.Router) {
		return o, fmt.Errorf("router %v is not in subnet %v", o.Router, subnet)
	}
	for _, r := range o.Routes {
		if !r.Dst.Addr().Is4() || !r.Gateway.Is4() {
			return o, fmt.Errorf("static route %v via %v: need IPv4", r.Dst, r.Gateway)
		}
	}
	return o, nil
}

// hosts returns the reservations, the Net's client's host name among them.
func (o ServerOptions) hosts(n *Net) []Host {
	hosts := slices.Clone(o.Hosts)
	if o.Hostname == "" {
		return hosts
	}
	for i, h := range hosts {
		if slices.Equal(h.MAC, n.ClientMAC) {
			hosts[i].Hostname = o.Hostname
			return hosts
		}
	}
	return append(hosts, Host{MAC: n.ClientMAC, Hostname: o.Hostname})
}

// Server is a DHCP server running in a Net's server namespace, listening on
// ServerIf.
type Server struct {
	// Proc is the current run of the server; Restart and Reconfigure
	// replace it.
	*Proc
	Kind    Kind
	Net     *Net
	Options ServerOptions // the current run's, defaults filled in
	// Dir holds the configuration, the lease file and the sockets; it
	// outlives restarts, so the server remembers its leases.
	Dir string
	// LeaseFile is the server's lease database: dnsmasq's lease file or
	// kea's memfile CSV.
	LeaseFile string

	runs []*Proc
}

// StartDnsmasq starts dnsmasq's DHCP server (no DNS) on n's server side.
func StartDnsmasq(t testing.TB, n *Net, o ServerOptions) *Server {
	t.Helper()
	return StartServer(t, Dnsmasq, n, o)
}

// StartKea starts kea-dhcp4 on n's server side.
func StartKea(t testing.TB, n *Net, o ServerOptions) *Server {
	t.Helper()
	return StartServer(t, Kea, n, o)
}

// StartServer starts a DHCP server of the given kind on n's server side and
// waits until it listens. Cleanups stop it and remove its directory.
func StartServer(t testing.TB, kind Kind, n *Net, o ServerOptions) *Server {
	t.Helper()
	switch kind {
	case Dnsmasq:
		RequireTools(t, "dnsmasq")
	case Kea:
		RequireTools(t, "kea-dhcp4")
	default:
		t.Fatalf("testnet: unknown DHCP server kind %q", kind)
	}
	// Not t.TempDir: a unix socket path must stay under 108 bytes, and a
	// test's name can be long. Under Isolate, TMPDIR is a private tmpfs.
	dir, err := os.MkdirTemp("", "dyad-"+string(kind)+"-")
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{Kind: kind, Net: n, Dir: dir}
	switch kind {
	case Dnsmasq:
		s.LeaseFile = filepath.Join(dir, "dnsmasq.leases")
	case Kea:
		s.LeaseFile = filepath.Join(dir, "kea-leases4.csv")
	}
	s.start(t, o)
	return s
}

// Restart stops the server and starts it again with the same options. It
// keeps its leases.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Reconfigure(t, s.Options)
}

// Reconfigure stops the server and starts it again with options o, keeping
// its leases: with a new range, or the client's address reserved for another
// MAC, the server NAKs the client's next REQUEST for its old address.
func (s *Server) Reconfigure(t testing.TB, o ServerOptions) {
	t.Helper()
	_ = s.Proc.Stop()
	s.start(t, o)
}

// Log returns the output of every run of the server, oldest first.
func (s *Server) Log() string {
	var b strings.Builder
	for _, p := range s.runs {
		b.Write(p.Output())
	}
	return b.String()
}

// Leases returns the content of the lease file.
func (s *Server) Leases(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(s.LeaseFile)
	if err != nil {
		t.Fatalf("testnet: reading %s's leases: %v", s.Kind, err)
	}
	return string(data)
}

// start runs the server with options o and waits until it listens.
func (s *Server) start(t testing.TB, o ServerOptions) {
	t.Helper()
	o, err := o.withDefaults(s.Net)
	if err != nil {
		t.Fatalf("testnet: %s options: %v", s.Kind, err)
	}
	var p *Proc
	switch s.Kind {
	case Dnsmasq:
		args, err := dnsmasqArgs(s.Net, o, s.LeaseFile)
		if err != nil {
			t.Fatalf("testnet: %v", err)
		}
		p = s.Net.Start(t, s.Net.Server, "dnsmasq", args...)
		// Logged once the DHCP socket is bound.
		s.waitReady(t, p, "DHCP, IP range")
	case Kea:
		conf, err := keaConfig(s.Net, o, s.Dir, s.LeaseFile)
		if err != nil {
			t.Fatalf("testnet: %v", err)
		}
		path := filepath.Join(s.Dir, "kea-dhcp4.json")
		if err := os.WriteFile(path, conf, 0o644); err != nil {
			t.Fatalf("testnet: writing kea's configuration: %v", err)
		}
		// kea's own check names the bad key and line: clearer than a
		// daemon that exits at start-up. It runs in the server namespace
		// because it also checks that the interface exists.
		if out, err := s.Net.Run(t, s.Net.Server, "kea-dhcp4", "-t", path); err != nil {
			t.Fatalf("testnet: kea rejects its configuration: %v\n%s\n%s", err, out, conf)
		}
		cmd := s.Net.Command(context.Background(), s.Net.Server, "kea-dhcp4", "-c", path)
		// Its pid file and logger lock file would go under /run/kea and
		// /var/run/kea otherwise.
		cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+s.Dir, "KEA_LOCKFILE_DIR="+s.Dir)
		p = StartCommand(t, cmd)
		s.waitReady(t, p, "DHCP4_STARTED")
		// Sockets are opened before DHCP4_STARTED; a failure is only
		// logged.
		if out := p.Output(); strings.Contains(string(out), "DHCPSRV_OPEN_SOCKET_FAIL") {
			t.Fatalf("testnet: kea could not open its socket on %s:\n%s", s.Net.ServerIf, out)
		}
	}
	s.Proc = p
	s.Options = o
	s.runs = append(s.runs, p)
}

func (s *Server) waitReady(t testing.TB, p *Proc, ready string) {
	t.Helper()
	if !p.WaitLog(ready, readyTimeout) {
		_ = p.Stop()
		t.Fatalf("testnet: %s did not log %q within %v (%s):\n%s", s.Kind, ready, readyTimeout, p.state(), p.Output())
	}
}

// dnsmasqArgs returns dnsmasq's command line: DHCP only, in the foreground,
// logging every packet to stderr, authoritative, with no pid file and the
// lease file at leaseFile.
func dnsmasqArgs(n *Net, o ServerOptions, leaseFile string) ([]string, error) {
	if o.LeaseTime < 2*time.Minute {
		return nil, fmt.Errorf("dnsmasq refuses leases shorter than 2m (asked for %v): use kea", o.LeaseTime)
	}
	mask := net.IP(net.CIDRMask(o.PrefixLen, 32)).String()
	args := []string{
		"--no-daemon",
		"--conf-file=/dev/null", // not /etc/dnsmasq.conf
		"--port=0",              // no DNS
		"--no-resolv",
		"--no-hosts",
		"--no-ping", // offers at once, rather than after an ICMP probe
		"--log-dhcp",
		"--log-facility=-", // stderr
		"--dhcp-authoritative",
		"--interface=" + n.ServerIf,
		"--bind-interfaces",
		"--dhcp-leasefile=" + leaseFile,
		"--pid-file=", // none
		fmt.Sprintf("--dhcp-range=%s,%s,%s,%d", o.RangeStart, o.RangeEnd, mask, int(o.LeaseTime/time.Second)),
	}
	opt := func(name string, values ...string) {
		args = append(args, "--dhcp-option="+strings.Join(append([]string{name}, values...), ","))
	}
	// dnsmasq sends itself as router and DNS server unless told otherwise:
	// an option with no value sends none.
	if o.Router.IsValid() {
		opt("option:router", o.Router.String())
	} else {
		opt("3")
	}
	if len(o.DNS) > 0 {
		opt("option:dns-server", addrStrings(o.DNS)...)
	} else {
		opt("6")
	}
	if o.Domain != "" {
		opt("option:domain-name", o.Domain)
	}
	if len(o.Search) > 0 {
		opt("option:domain-search", o.Search...)
	}
	if len(o.NTP) > 0 {
		opt("option:ntp-server", addrStrings(o.NTP)...)
	}
	if o.MTU != 0 {
		opt("option:mtu", strconv.Itoa(o.MTU))
	}
	if len(o.Routes) > 0 {
		var vals []string
		for _, r := range o.Routes {
			vals = append(vals, r.Dst.String(), r.Gateway.String())
		}
		opt("option:classless-static-route", vals...)
	}
	if o.RenewTime != 0 {
		opt("option:T1", strconv.Itoa(int(o.RenewTime/time.Second)))
	}
	if o.RebindTime != 0 {
		opt("option:T2", strconv.Itoa(int(o.RebindTime/time.Second)))
	}
	for _, h := range o.hosts(n) {
		fields := []string{h.MAC.String()}
		if h.Addr.IsValid() {
			fields = append(fields, h.Addr.String())
		}
		if h.Hostname != "" {
			fields = append(fields, h.Hostname)
		}
		args = append(args, "--dhcp-host="+strings.Join(fields, ","))
	}
	if o.RapidCommit {
		args = append(args, "--dhcp-rapid-commit")
	}
	return args, nil
}

func addrStrings(addrs []netip.Addr) []string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return s
}

// keaConfig returns kea-dhcp4's JSON configuration: a raw socket on ServerIf
// (clients without an address send from 0.0.0.0), authoritative, the lease
// file at leaseFile without the lease file cleanup process, the control
// socket in dir, and packet-level logging on stdout.
func keaConfig(n *Net, o ServerOptions, dir, leaseFile string) ([]byte, error) {
	if o.RapidCommit {
		return nil, fmt.Errorf("kea 2.2 has no DHCPv4 rapid commit: use dnsmasq")
	}
	type obj = map[string]any
	var options []obj
	opt := func(name, data string) {
		// always-send: kea otherwise sends some options only when the
		// client's parameter request list asks for them.
		options = append(options, obj{"name": name, "data": data, "always-send": true})
	}
	if o.Router.IsValid() {
		opt("routers", o.Router.String())
	}
	if len(o.DNS) > 0 {
		opt("domain-name-servers", strings.Join(addrStrings(o.DNS), ", "))
	}
	if o.Domain != "" {
		opt("domain-name", o.Domain)
	}
	if len(o.Search) > 0 {
		opt("domain-search", strings.Join(o.Search, ", "))
	}
	if len(o.NTP) > 0 {
		opt("ntp-servers", strings.Join(addrStrings(o.NTP), ", "))
	}
	if o.MTU != 0 {
		opt("interface-mtu", strconv.Itoa(o.MTU))
	}
	if len(o.Routes) > 0 {
		// Kea 2.2 has no textual format for option 121: send its bytes.
		options = append(options, obj{
			"code": 121, "csv-format": false, "always-send": true,
			"data": strings.ToUpper(hex.EncodeToString(classlessRoutes(o.Routes))),
		})
	}
	var reservations []obj
	for _, h := range o.hosts(n) {
		r := obj{"hw-address": h.MAC.String()}
		if h.Addr.IsValid() {
			r["ip-address"] = h.Addr.String()
		}
		if h.Hostname != "" {
			r["hostname"] = h.Hostname
		}
		reservations = append(reservations, r)
	}
	subnet := obj{
		"id":     1,
		"subnet": netip.PrefixFrom(n.ServerAddr.Addr(), o.PrefixLen).Masked().String(),
		"pools":  []obj{{"pool": o.RangeStart.String() + " - " + o.RangeEnd.String()}},
	}
	if options != nil {
		subnet["option-data"] = options
	}
	if reservations != nil {
		subnet["reservations"] = reservations
	}
	dhcp4 := obj{
		"interfaces-config": obj{
			"interfaces":       []string{n.ServerIf},
			"dhcp-socket-type": "raw",
		},
		"control-socket": obj{
			"socket-type": "unix",
			"socket-name": filepath.Join(dir, "kea4-ctrl.sock"),
		},
		"lease-database": obj{
			"type":         "memfile",
			"persist":      true,
			"name":         leaseFile,
			"lfc-interval": 0, // no kea-lfc child process
		},
		"authoritative":  true,
		"valid-lifetime": int(o.LeaseTime / time.Second),
		"subnet4":        []obj{subnet},
		"loggers": []obj{{
			"name":           "kea-dhcp4",
			"output_options": []obj{{"output": "stdout", "flush": true}},
			// 40 logs every packet received and sent, NAKs
			// included.
			"severity":   "DEBUG",
			"debuglevel": 40,
		}},
	}
	if o.RenewTime != 0 {
		dhcp4["renew-timer"] = int(o.RenewTime / time.Second)
	}
	if o.RebindTime != 0 {
		dhcp4["rebind-timer"] = int(o.RebindTime / time.Second)
	}
	if o.RenewTime == 0 && o.RebindTime == 0 {
		// Kea sends no T1 and T2 by default; dnsmasq does. Make them
		// agree.
		dhcp4["calculate-tee-times"] = true
	}
	conf, err := json.MarshalIndent(obj{"Dhcp4": dhcp4}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding kea's configuration: %w", err)
	}
	return conf, nil
}

// classlessRoutes encodes routes as option 121's value (RFC 3442): for each,
// the prefix length, the significant octets of the destination, and the
// gateway.
func classlessRoutes(routes []StaticRoute) []byte {
	var b []byte
	for _, r := range routes {
		dst := r.Dst.Masked().Addr().As4()
		gw := r.Gateway.As4()
		b = append(b, byte(r.Dst.Bits()))
		b = append(b, dst[:(r.Dst.Bits()+7)/8]...)
		b = append(b, gw[:]...)
	}
	return b
}
