package dhcp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The dhcpcd dialect: what dyad-dhcp understands when it is started as
// dhcpcd (the dhcp image answers to /sbin/dhcpcd), so that a LinuxKit file
// can swap linuxkit/dhcpcd for dyad's image and keep its command line and
// its dhcpcd.conf. As in dhcpcd, a directive of the file and a long option
// of the command line are one and the same ("--timeout 10" is "timeout 10"),
// and the command line is applied after the file.
//
// Every directive is either carried out, accepted as something dyad-dhcp
// already does, or reported: a warning names it and where it was, for a
// directive dyad-dhcp does not do or does not know. A directive that asks
// for something else entirely (a control command to a running dhcpcd, a
// test run) or whose absence would weaken the client (a server whitelist)
// is an error, since carrying on would do what the operator did not ask.

// DefaultDhcpcdConfigFile is dhcpcd's own default.
const DefaultDhcpcdConfigFile = "/etc/dhcpcd.conf"

// DhcpcdMode is the first argument by which a command line says it is in
// the dhcpcd dialect: Main puts it there when started as dhcpcd, so the
// stages started later parse their arguments the same way.
const DhcpcdMode = "dhcpcd"

// argKind says whether a directive takes a value.
type argKind int

const (
	noArg argKind = iota
	requiredArg
	optionalArg
)

// dhcpcdDirective is one entry of dhcpcd's option table.
type dhcpcdDirective struct {
	long  string
	short byte // 0: no short form
	arg   argKind
	// do carries the directive out; nil means "not supported" (why says
	// why), and an error from it stops the start.
	do  func(p *dhcpcdParser, value string) error
	why string
	// refuse makes an unsupported directive an error, not a warning.
	refuse bool
}

// dhcpcdParser gathers a Config from a dhcpcd command line and file.
type dhcpcdParser struct {
	cfg        *Config
	persistent bool
	request    []uint8 // from option, in order
	ignore     []uint8 // from nooption
	require    []uint8
	// where names the place being read, for messages; inFile says
	// whether it is the file.
	where  string
	inFile bool
}

func (p *dhcpcdParser) warn(format string, args ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, p.where+": "+fmt.Sprintf(format, args...))
}

// ok accepts a directive that asks for what dyad-dhcp does anyway.
func ok(*dhcpcdParser, string) error { return nil }

const (
	whyIPv6    = "IPv6 is not supported: dyad-dhcp is a DHCPv4 client"
	whyHooks   = "dyad-dhcp runs no hook scripts: it writes resolv.conf and the NTP server list itself"
	whyCommand = "this is a command to a running dhcpcd, which dyad-dhcp does not take"
)

// dhcpcdDirectives is dhcpcd 9's option table, as far as a DHCPv4 client
// in a container has a use for it, and the IPv6 and control options so
// that they are named rather than reported as unknown.
var dhcpcdDirectives = []dhcpcdDirective{
	{long: "ipv4only", short: '4', do: ok},
	{long: "oneshot", short: '1', do: func(p *dhcpcdParser, _ string) error { p.cfg.OneShot = true; return nil }},
	{long: "nobackground", short: 'B', do: ok},
	{long: "background", short: 'b', why: "dyad-dhcp stays in the foreground, as a container's process must"},
	{long: "debug", short: 'd', do: func(p *dhcpcdParser, _ string) error { p.cfg.Debug = true; return nil }},
	{long: "quiet", short: 'q', do: ok},
	{long: "config", short: 'f', arg: requiredArg, do: ok}, // read before everything else
	{long: "timeout", short: 't', arg: requiredArg, do: (*dhcpcdParser).timeout},
	{long: "waitip", short: 'w', arg: optionalArg, do: (*dhcpcdParser).waitIP},
	{long: "allowinterfaces", short: 'z', arg: requiredArg, do: (*dhcpcdParser).allowInterfaces},
	{long: "denyinterfaces", short: 'Z', arg: requiredArg, do: (*dhcpcdParser).denyInterfaces},
	{long: "hostname", short: 'h', arg: optionalArg, do: (*dhcpcdParser).hostname},
	{long: "clientid", short: 'I', arg: optionalArg, do: (*dhcpcdParser).clientID},
	{long: "duid", short: 'D', arg: optionalArg, do: (*dhcpcdParser).duid},
	{long: "persistent", short: 'p', do: func(p *dhcpcdParser, _ string) error { p.persistent = true; return nil }},
	// In the file, release the lease on stop; on the command line, -k
	// or --release, a command to a running dhcpcd (see apply).
	{long: "release", short: 'k', do: func(p *dhcpcdParser, _ string) error { p.cfg.Release = true; return nil }},
	{long: "option", short: 'o', arg: requiredArg, do: (*dhcpcdParser).option},
	{long: "nooption", short: 'O', arg: requiredArg, do: (*dhcpcdParser).noOption},
	{long: "require", short: 'Q', arg: requiredArg, do: (*dhcpcdParser).requireOption},
	{long: "metric", short: 'm', arg: requiredArg, do: (*dhcpcdParser).metric},
	// dyad-dhcp sends its first DISCOVER at once and never probes with
	// ARP nor falls back to IPv4 link-local addresses.
	{long: "nodelay", do: ok},
	{long: "noarp", short: 'A', do: ok},
	{long: "noipv4ll", short: 'L', do: ok},
	{long: "master", short: 'M', do: ok},
	{long: "manager", do: ok},
	{long: "nohook", short: 'C', arg: requiredArg, do: (*dhcpcdParser).noHook},
	{long: "ipv4", do: ok},
	{long: "dhcp", do: ok},

	{long: "script", short: 'c', arg: requiredArg, why: whyHooks},
	{long: "env", short: 'e', arg: requiredArg, why: whyHooks},
	{long: "logfile", short: 'j', arg: requiredArg, why: "dyad-dhcp logs to its standard error"},
	{long: "vendorclassid", short: 'i', arg: optionalArg, why: "no vendor class is sent"},
	{long: "userclass", short: 'u', arg: requiredArg, why: "no user class is sent"},
	{long: "vendor", short: 'v', arg: requiredArg, why: "no vendor options are sent"},
	{long: "fqdn", short: 'F', arg: optionalArg, why: "the FQDN option is not sent; the host name is, in option 12"},
	{long: "leasetime", short: 'l', arg: requiredArg, why: "no lease time is asked for: the server's is used"},
	{long: "request", short: 'r', arg: optionalArg, why: "no particular address is asked for"},
	{long: "reboot", short: 'y', arg: requiredArg, why: "a saved lease is asked for again until the server answers"},
	{long: "lastlease", short: 'E', why: "an expired lease is never used"},
	{long: "nogateway", short: 'G', why: "the routers the server sends are installed; use nooption routers, classless_static_routes"},
	{long: "nolink", short: 'K', why: "the carrier is always followed"},
	{long: "xidhwaddr", short: 'H', why: "transaction IDs are random"},
	{long: "broadcast", short: 'J', why: "replies are read from the packet socket whichever way they come"},
	{long: "inactive", why: "every link that matches is managed"},
	{long: "noup", why: "a link found down is brought up"},
	{long: "ipv6only", short: '6', why: whyIPv6, refuse: true},
	{long: "inform", short: 's', arg: requiredArg, why: "DHCPINFORM is not supported: dyad-dhcp leases an address", refuse: true},
	{long: "static", short: 'S', arg: requiredArg, why: "static configuration is not supported: dyad-dhcp configures what a server leases", refuse: true},
	{long: "noconfigure", why: "dyad-dhcp always configures the lease it gets", refuse: true},
	{long: "test", short: 'T', why: "there is no test mode: dyad-dhcp would configure the host", refuse: true},
	{long: "whitelist", short: 'W', arg: requiredArg, why: "servers are not filtered by address, so leases would come from any server", refuse: true},
	{long: "blacklist", short: 'X', arg: requiredArg, why: "servers are not filtered by address, so leases would come from any server", refuse: true},
	{long: "rebind", short: 'n', why: whyCommand, refuse: true},
	{long: "exit", short: 'x', why: whyCommand, refuse: true},
	{long: "dumplease", short: 'U', why: whyCommand, refuse: true},
	{long: "reconfigure", short: 'g', why: whyCommand, refuse: true},
	{long: "printpidfile", short: 'P', why: whyCommand, refuse: true},
	{long: "variables", short: 'V', why: whyCommand, refuse: true},
	{long: "version", why: whyCommand, refuse: true},
}

// dhcpcdIPv6Directives are dhcpcd's IPv6 directives: reported as not
// supported, whatever their value.
var dhcpcdIPv6Directives = []string{
	"ipv6", "noipv6", "ipv6rs", "noipv6rs", "ipv6ra_autoconf", "ipv6ra_noautoconf",
	"ipv6ra_fork", "ipv6ra_own", "ipv6ra_own_default", "slaac", "dhcp6", "nodhcp6",
	"ia_na", "ia_ta", "ia_pd", "ipv6_autoconf", "noipv6_autoconf", "inform6",
	"reject", "randomise_hwaddr", "ipv4ll", "noipv4", "nodhcp",
}

// dhcpcdBlocks open a block of directives for one interface, network or
// profile, which dyad-dhcp does not support: the block's directives are
// skipped, with a warning each.
var dhcpcdBlocks = []string{"interface", "ssid", "profile", "arping"}

func lookupDirective(long string) *dhcpcdDirective {
	for i := range dhcpcdDirectives {
		if dhcpcdDirectives[i].long == long {
			return &dhcpcdDirectives[i]
		}
	}
	return nil
}

func lookupShort(c byte) *dhcpcdDirective {
	for i := range dhcpcdDirectives {
		if dhcpcdDirectives[i].short == c {
			return &dhcpcdDirectives[i]
		}
	}
	return nil
}

// apply carries one directive out, or reports it.
func (p *dhcpcdParser) apply(name, value string, hasValue bool) error {
	d := lookupDirective(name)
	switch {
	case d == nil && strings.HasPrefix(name, "-"):
		p.warn("%s: unknown option, ignored", name)
		return nil
	case d == nil && slices.Contains(dhcpcdIPv6Directives, name):
		p.warn("%s: not supported: %s", name, whyIPv6)
		return nil
	case d == nil:
		p.warn("%s: unknown directive, ignored", name)
		return nil
	case d.do == nil && d.refuse:
		return fmt.Errorf("%s: %s: %s", p.where, name, d.why)
	case d.do == nil:
		p.warn("%s: not supported, ignored: %s", name, d.why)
		return nil
	case d.long == "release" && !p.inFile:
		return fmt.Errorf("%s: %s: %s", p.where, name, whyCommand)
	case d.arg == noArg && hasValue:
		return fmt.Errorf("%s: %s takes no value, got %q", p.where, name, value)
	case d.arg == requiredArg && (!hasValue || value == ""):
		return fmt.Errorf("%s: %s needs a value", p.where, name)
	}
	if err := d.do(p, value); err != nil {
		return fmt.Errorf("%s: %s: %w", p.where, name, err)
	}
	return nil
}

func (p *dhcpcdParser) timeout(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<20 {
		return fmt.Errorf("%q is not a number of seconds", v)
	}
	// As dhcpcd: 0 waits for ever.
	p.cfg.TimeoutSeconds, p.cfg.NoTimeout = n, n == 0
	return nil
}

func (p *dhcpcdParser) waitIP(v string) error {
	switch v {
	case "", "4":
		// dyad-dhcp is a DHCPv4 client in the foreground: with -1 it
		// exits once an address is configured, as waitip asks.
		return nil
	case "6":
		p.warn("waitip 6: not supported: %s", whyIPv6)
		return nil
	}
	return fmt.Errorf("%q: want 4 or 6", v)
}

// patterns splits dhcpcd's space- or comma-separated list.
func patterns(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// NoHookResolvConf is where the dhcpcd dialect writes the lease's name
// servers under "nohook resolv.conf": /etc/resolv.conf is left to someone
// else, as dhcpcd leaves it, and a local stub (dyad-dns, whose default
// upstreams_file this is) still learns the servers.
const NoHookResolvConf = defaultRunDir + "/resolv.conf"

// noHook takes dhcpcd's nohook, which skips the hook scripts whose names
// contain a pattern. dyad-dhcp runs no scripts, but writes what two of
// dhcpcd's hooks write: resolv.conf (20-resolv.conf) and NTP servers
// (50-ntp.conf, 50-timesyncd.conf).
func (p *dhcpcdParser) noHook(v string) error {
	for _, hook := range patterns(v) {
		if strings.Contains("20-resolv.conf", hook) {
			p.cfg.ResolvConf = NoHookResolvConf
		}
		if strings.Contains("50-ntp.conf", hook) || strings.Contains("50-timesyncd.conf", hook) {
			p.cfg.NTPConf = "none"
		}
	}
	return nil
}

func (p *dhcpcdParser) allowInterfaces(v string) error {
	p.cfg.Interfaces = append(p.cfg.Interfaces, patterns(v)...)
	return nil
}

func (p *dhcpcdParser) denyInterfaces(v string) error {
	p.cfg.DenyInterfaces = append(p.cfg.DenyInterfaces, patterns(v)...)
	return nil
}

// hostname sends the given name, or without one the host's own, as dhcpcd
// does; a host without a real name sends none.
func (p *dhcpcdParser) hostname(v string) error {
	if v == "" {
		name, err := os.Hostname()
		if err != nil {
			return err
		}
		if name == "(none)" || name == "localhost" || strings.HasPrefix(name, "localhost.") {
			name = ""
		}
		v = name
	}
	p.cfg.Hostname = v
	return nil
}

// clientID takes dhcpcd's clientid: none sends the hardware address; a
// value of hexadecimal bytes separated by colons is the option's bytes;
// any other value is sent after a type byte of 0.
func (p *dhcpcdParser) clientID(v string) error {
	switch {
	case v == "":
		p.cfg.ClientID = "hwaddr"
	case strings.Contains(v, ":"):
		b, err := hex.DecodeString(strings.ReplaceAll(v, ":", ""))
		if err != nil || strings.Count(v, ":") != len(b)-1 {
			return fmt.Errorf("%q is not hexadecimal bytes separated by colons", v)
		}
		p.cfg.ClientID = rawClientIDPrefix + hex.EncodeToString(b)
	default:
		p.cfg.ClientID = rawClientIDPrefix + hex.EncodeToString(append([]byte{0}, v...))
	}
	return nil
}

func (p *dhcpcdParser) duid(v string) error {
	switch v {
	case "", "ll":
	case "lt", "uuid":
		p.warn("duid %s: not supported: the DUID is always a DUID-LL of the link's address", v)
	default:
		return fmt.Errorf("%q: want ll, lt or uuid", v)
	}
	p.cfg.ClientID = "duid"
	return nil
}

func (p *dhcpcdParser) option(v string) error {
	codes, err := p.optionCodes(v)
	if err != nil {
		return err
	}
	for _, c := range codes {
		if c == optRapidCommit {
			p.cfg.RapidCommit = true
			continue
		}
		p.request = appendNew(p.request, c)
	}
	return nil
}

func (p *dhcpcdParser) noOption(v string) error {
	codes, err := p.optionCodes(v)
	if err != nil {
		return err
	}
	for _, c := range codes {
		if c == optMessageType || c == optServerID {
			return fmt.Errorf("option %d cannot be ignored: no exchange works without it", c)
		}
		if c == optRapidCommit {
			p.cfg.RapidCommit = false
			continue
		}
		p.ignore = appendNew(p.ignore, c)
	}
	return nil
}

func (p *dhcpcdParser) requireOption(v string) error {
	codes, err := p.optionCodes(v)
	if err != nil {
		return err
	}
	for _, c := range codes {
		p.require = appendNew(p.require, c)
	}
	return nil
}

func (p *dhcpcdParser) metric(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("%q is not a route metric", v)
	}
	p.cfg.RouteMetric = uint32(n)
	return nil
}

// optionCodes reads a list of dhcpcd option names or numbers. Names of
// IPv6 options are reported, options dyad-dhcp makes no use of are
// requested all the same, with a warning.
func (p *dhcpcdParser) optionCodes(v string) ([]uint8, error) {
	var codes []uint8
	for _, name := range patterns(v) {
		if strings.HasPrefix(name, "dhcp6_") || strings.HasPrefix(name, "nd_") {
			p.warn("%s: not supported: %s", name, whyIPv6)
			continue
		}
		code, known := dhcpcdOptionCodes[name]
		if !known {
			n, err := strconv.ParseUint(name, 10, 8)
			if err != nil || n == 0 || n == 255 {
				return nil, fmt.Errorf("%q is not a DHCP option dyad-dhcp knows by name or number", name)
			}
			code = uint8(n)
		}
		if !slices.Contains(usedOptions, code) {
			p.warn("option %s: dyad-dhcp makes no use of it", name)
		}
		codes = append(codes, code)
	}
	return codes, nil
}

func appendNew(list []uint8, c uint8) []uint8 {
	if slices.Contains(list, c) {
		return list
	}
	return append(list, c)
}

// dhcpcdOptionCodes are the names dhcpcd-definitions.conf gives the DHCPv4
// options (RFC 2132 and later).
var dhcpcdOptionCodes = map[string]uint8{
	"subnet_mask": 1, "time_offset": 2, "routers": 3, "time_servers": 4,
	"ien116_name_servers": 5, "domain_name_servers": 6, "log_servers": 7,
	"cookie_servers": 8, "lpr_servers": 9, "impress_servers": 10,
	"resource_location_servers": 11, "host_name": 12, "boot_size": 13,
	"merit_dump": 14, "domain_name": 15, "swap_server": 16, "root_path": 17,
	"extensions_path": 18, "ip_forwarding": 19, "non_local_source_routing": 20,
	"policy_filter": 21, "max_dgram_reassembly": 22, "default_ip_ttl": 23,
	"path_mtu_aging_timeout": 24, "path_mtu_plateau_table": 25,
	"interface_mtu": 26, "all_subnets_local": 27, "broadcast_address": 28,
	"perform_mask_discovery": 29, "mask_supplier": 30, "router_discovery": 31,
	"router_solicitation_address": 32, "static_routes": 33,
	"trailer_encapsulation": 34, "arp_cache_timeout": 35,
	"ieee802_3_encapsulation": 36, "default_tcp_ttl": 37,
	"tcp_keepalive_interval": 38, "tcp_keepalive_garbage": 39,
	"nis_domain": 40, "nis_servers": 41, "ntp_servers": 42,
	"vendor_encapsulated_options": 43, "netbios_name_servers": 44,
	"netbios_dd_server": 45, "netbios_node_type": 46, "netbios_scope": 47,
	"font_servers": 48, "x_display_manager": 49, "dhcp_requested_address": 50,
	"dhcp_lease_time": 51, "dhcp_option_overload": 52, "dhcp_message_type": 53,
	"dhcp_server_identifier": 54, "dhcp_parameter_request_list": 55,
	"dhcp_message": 56, "dhcp_max_message_size": 57, "dhcp_renewal_time": 58,
	"dhcp_rebinding_time": 59, "vendor_class_identifier": 60,
	"dhcp_client_identifier": 61, "nisplus_domain": 64, "nisplus_servers": 65,
	"tftp_server_name": 66, "bootfile_name": 67, "mobile_ip_home_agent": 68,
	"smtp_server": 69, "pop_server": 70, "nntp_server": 71, "www_server": 72,
	"finger_server": 73, "irc_server": 74, "streettalk_server": 75,
	"streettalk_directory_assistance_server": 76, "user_class": 77,
	"rapid_commit": 80, "fqdn": 81, "nds_servers": 85, "nds_tree_name": 86,
	"nds_context": 87, "bcms_controller_names": 88,
	"bcms_controller_address": 89, "client_last_transaction_time": 91,
	"associated_ip": 92, "uap_servers": 98, "posix_timezone": 100,
	"tzdb_timezone": 101, "auto_configure": 116, "name_service_search": 117,
	"subnet_selection": 118, "domain_search": 119, "sip_server": 120,
	"classless_static_routes": 121, "vivco": 124, "vivso": 125,
	"pana_agent": 136, "v4_lost": 137, "capwap_ac_v4": 138,
	"sip_ua_cs_domains": 141, "rdnss_selection": 146, "tftp_servers": 150,
	"v4_portparams": 159, "v4_captive_portal": 160, "mud_url": 161,
	"ms_classless_static_routes": 249, "wpad_url": 252,
}

// usedOptions are the options the engine reads from a message: those it
// asks for by default, and two it reads without asking. The others are
// requested for nothing, since there is no hook to pass them to.
var usedOptions = append(slices.Clone(defaultRequest), optMessageType, optRapidCommit)

// baseRequest is what dyad-dhcp asks for in the dhcpcd dialect whatever
// the file says, as dhcpcd always asks for what makes a lease.
var baseRequest = []uint8{optSubnetMask, optRouter, 28, optLeaseTime, optServerID, optRenewalTime, optRebindingTime}

// parseDhcpcd reads a dhcpcd command line (without argv[0]) and the
// dhcpcd.conf it names (or dhcpcd's default one when it exists).
func parseDhcpcd(args []string) (*Config, error) {
	p := &dhcpcdParser{cfg: newConfig()}
	opts, ifaces, err := splitDhcpcdArgs(args)
	if err != nil {
		return nil, err
	}
	file, must := DefaultDhcpcdConfigFile, false
	for _, o := range opts {
		if o.name == "config" {
			file, must = o.value, true
		}
	}
	if err := p.readFile(file, must); err != nil {
		return nil, err
	}
	for _, o := range opts {
		p.where = o.where
		if err := p.apply(o.name, o.value, o.hasValue); err != nil {
			return nil, err
		}
	}
	c := p.cfg
	if len(ifaces) > 0 {
		// Named links are managed even where allowinterfaces would not
		// match them, as in dhcpcd; denyinterfaces still applies.
		c.Interfaces = ifaces
	}
	c.Deconfigure = !p.persistent
	c.Request = slices.Clone(baseRequest)
	// As dhcpcd: what is required is asked for too, and what is ignored
	// is neither asked for nor required.
	for _, o := range slices.Concat(p.request, p.require) {
		c.Request = appendNew(c.Request, o)
	}
	ignored := func(o uint8) bool { return slices.Contains(p.ignore, o) }
	c.Request = slices.DeleteFunc(c.Request, ignored)
	c.Ignore, c.Require = p.ignore, slices.DeleteFunc(p.require, ignored)
	if err := c.finish(); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, file)
	}
	return c, nil
}

// dhcpcdArg is one option of a dhcpcd command line.
type dhcpcdArg struct {
	name, value string
	hasValue    bool
	where       string
}

// splitDhcpcdArgs reads a command line as dhcpcd's getopt_long does:
// short options alone or grouped (-Bd), their values attached or next
// (-t5, -t 5), long ones with "=" or next (--timeout=5, --timeout 5; an
// optional value only with "="), "--" ending options, and interface names
// anywhere. An unknown option is a warning, carried to the Config by the
// caller through the "unknown" entries.
func splitDhcpcdArgs(args []string) (opts []dhcpcdArg, ifaces []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		where := fmt.Sprintf("command line, argument %d (%s)", i+1, a)
		switch {
		case a == "--":
			return opts, append(ifaces, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			d := lookupDirective(name)
			if d != nil && d.arg == requiredArg && !hasValue {
				if i+1 == len(args) {
					return nil, nil, fmt.Errorf("%s: --%s needs a value", where, name)
				}
				i++
				value, hasValue = args[i], true
			}
			opts = append(opts, dhcpcdArg{name, value, hasValue, where})
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				d := lookupShort(a[j])
				if d == nil {
					opts = append(opts, dhcpcdArg{name: "-" + string(a[j]), where: where})
					continue
				}
				if d.arg == noArg {
					opts = append(opts, dhcpcdArg{name: d.long, where: where})
					continue
				}
				value, hasValue := a[j+1:], j+1 < len(a)
				if d.arg == requiredArg && !hasValue {
					if i+1 == len(args) {
						return nil, nil, fmt.Errorf("%s: -%c needs a value", where, d.short)
					}
					i++
					value, hasValue = args[i], true
				}
				opts = append(opts, dhcpcdArg{d.long, value, hasValue, where})
				break
			}
		default:
			ifaces = append(ifaces, a)
		}
	}
	return opts, ifaces, nil
}

// maxDhcpcdConf bounds the file read: dhcpcd.conf files are a few
// kilobytes.
const maxDhcpcdConf = 1 << 20

// readFile applies the directives of a dhcpcd.conf.
func (p *dhcpcdParser) readFile(path string, must bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !must {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Read no more than the bound: -f may name anything, /dev/zero too.
	b, err := io.ReadAll(io.LimitReader(f, maxDhcpcdConf+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(b) > maxDhcpcdConf {
		return fmt.Errorf("config: %s: larger than %d bytes", path, maxDhcpcdConf)
	}
	p.inFile = true
	defer func() { p.inFile = false }()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxDhcpcdConf)
	block := ""
	for n := 1; sc.Scan(); n++ {
		p.where = fmt.Sprintf("%s:%d", path, n)
		name, value, hasValue, err := splitDirective(sc.Text())
		if err != nil {
			return fmt.Errorf("config: %s: %w", p.where, err)
		}
		switch {
		case name == "":
			continue
		case slices.Contains(dhcpcdBlocks, name):
			block = fmt.Sprintf("%s %s (line %d)", name, value, n)
			p.warn("%s %s: blocks for one %s are not supported: the directives up to the next block are ignored", name, value, name)
			continue
		case block != "":
			p.warn("%s: ignored: it belongs to %s", name, block)
			continue
		}
		if err := p.apply(name, value, hasValue); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return sc.Err()
}

// splitDirective reads one line of dhcpcd.conf: a directive name, then
// its value (the rest of the line, or a double-quoted string), with "#"
// starting a comment outside quotes.
func splitDirective(line string) (name, value string, hasValue bool, err error) {
	if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", "", false, errors.New("control characters in the line")
	}
	if i := commentStart(line); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", "", false, nil
	}
	name, value, _ = strings.Cut(line, " ")
	if n, v, ok := strings.Cut(name, "\t"); ok {
		name, value = n, v+" "+value
	}
	value = strings.TrimSpace(value)
	if strings.HasPrefix(value, `"`) {
		unq, err := strconv.Unquote(value)
		if err != nil {
			return "", "", false, fmt.Errorf("%s: the value %s is not a well-formed quoted string", name, value)
		}
		return name, unq, true, nil
	}
	return name, value, value != "", nil
}

// commentStart finds a "#" outside double quotes.
func commentStart(line string) int {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '#':
			if !quoted {
				return i
			}
		}
	}
	return -1
}

// rawClientIDPrefix marks a Config.ClientID that holds option 61's bytes
// in hexadecimal.
const rawClientIDPrefix = "raw:"
