package dhcp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/sdk"
)

// Config is dyad-dhcp's configuration: the file (YAML, strict) overlaid by
// the command line. Every stage parses the same arguments, so each derives
// the same configuration without passing it around.
type Config struct {
	// Interfaces are names or patterns (path.Match) of the links to
	// manage; empty means every link but loopback.
	Interfaces []string `yaml:"interfaces"`
	// DenyInterfaces are patterns of links never managed, even when
	// Interfaces matches them.
	DenyInterfaces []string `yaml:"deny_interfaces"`
	// OneShot gets one lease, applies it and exits.
	OneShot bool `yaml:"-"`
	// Timeout bounds OneShot.
	Timeout time.Duration `yaml:"-"`
	// TimeoutSeconds is Timeout as the file spells it.
	TimeoutSeconds int `yaml:"timeout"`
	// NoTimeout makes OneShot wait for ever (dhcpcd's "timeout 0").
	NoTimeout bool `yaml:"-"`
	// ClientID is "duid" (RFC 4361, the default, as dhcpcd), "hwaddr"
	// (type 1 and the MAC address), "none", or "raw:" and the bytes of
	// option 61 in hexadecimal.
	ClientID string `yaml:"clientid"`
	// Hostname is sent to the server in option 12.
	Hostname string `yaml:"hostname"`
	// ApplyHostname sets the host name a server sends (needs
	// CAP_SYS_ADMIN in the actuator).
	ApplyHostname bool `yaml:"apply_hostname"`
	RapidCommit   bool `yaml:"rapid_commit"`
	// Release sends DHCPRELEASE and removes the configuration on stop.
	Release bool `yaml:"release"`
	// Deconfigure removes the configuration on stop, without a
	// DHCPRELEASE (dhcpcd's way without "persistent").
	Deconfigure bool   `yaml:"deconfigure"`
	RouteMetric uint32 `yaml:"route_metric"`

	StateDir string `yaml:"state_dir"`
	RunDir   string `yaml:"run_dir"`
	// ResolvConf and NTPConf are the files written from leases; "none"
	// writes nothing.
	ResolvConf string `yaml:"resolv_conf"`
	NTPConf    string `yaml:"ntp_conf"`

	EngineUID uint32 `yaml:"engine_uid"`
	EngineGID uint32 `yaml:"engine_gid"`
	// EngineLauncher is engine-exec, set-user-ID to the engine's user,
	// through which the supervisor starts and signals the engine without
	// CAP_SETUID, CAP_SETGID, CAP_SETPCAP and CAP_KILL. By default the one
	// the images ship, when it is there; "none" starts the engine with
	// those capabilities instead.
	EngineLauncher string `yaml:"engine_launcher"`

	// AllowNoLandlock lets the daemon start on a kernel without landlock.
	AllowNoLandlock bool `yaml:"allow_no_landlock"`
	Debug           bool `yaml:"debug"`

	// Request, when set, is the parameter request list; Ignore are
	// options removed from every message received before it is read;
	// Require are options without which a message is dropped. The
	// dhcpcd dialect sets them from option, nooption and require.
	Request []uint8 `yaml:"-"`
	Ignore  []uint8 `yaml:"-"`
	Require []uint8 `yaml:"-"`

	// Warnings are what the parser of a dhcpcd command line and file
	// ignored, each naming the directive and where it was.
	Warnings []string `yaml:"-"`
}

// Defaults, per DESIGN.md's paths.
const (
	DefaultConfigFile = "/etc/dyad/dhcp.yaml"
	defaultStateDir   = "/var/lib/dyad/dhcp"
	defaultRunDir     = "/run/dyad/dhcp"
	defaultResolvConf = "/etc/resolv.conf"
	defaultNTPConf    = "/run/dyad/dhcp/ntp.conf"
	defaultTimeout    = 30 * time.Second
	// DefaultEngineID is the engine's uid and gid: its own, not nobody,
	// so that it shares no user with another daemon's engine (the dhcp
	// image's /etc/passwd names it dyad-dhcp).
	DefaultEngineID = 2101
	// DefaultEngineLauncher is where the images put engine-exec.
	DefaultEngineLauncher = "/usr/libexec/dyad/engine-exec"
)

// newConfig returns the configuration before file and command line.
func newConfig() *Config {
	return &Config{ClientID: "duid", EngineUID: DefaultEngineID, EngineGID: DefaultEngineID}
}

// ParseArgs reads the command line (without argv[0]) and the configuration
// file it names, or the default one when it exists. A command line that
// starts with DhcpcdMode is in the dhcpcd dialect.
func ParseArgs(args []string, stderr io.Writer) (*Config, error) {
	if len(args) > 0 && args[0] == DhcpcdMode {
		return parseDhcpcd(args[1:])
	}
	c := newConfig()
	cl := sdk.NewCommandLine("dyad-dhcp", DefaultConfigFile, stderr)
	oneShot := cl.Bool("1", false, "get a lease, apply it and exit")
	timeout := cl.Int("t", -1, "seconds to wait for a lease with -1 (default 30)")
	cl.Override("state-dir", &c.StateDir, "directory of saved leases (default "+defaultStateDir+")")
	cl.Override("run-dir", &c.RunDir, "directory of the status socket (default "+defaultRunDir+")")
	cl.Override("resolv-conf", &c.ResolvConf, "resolv.conf to write (default "+defaultResolvConf+")")
	cl.Override("ntp-conf", &c.NTPConf, "NTP server list to write (default "+defaultNTPConf+")")
	cl.Switch("d", &c.Debug, "log debug messages")
	cl.Switch("allow-no-landlock", &c.AllowNoLandlock, "start even if the kernel has no landlock")
	cl.Switch("release", &c.Release, "release the lease and deconfigure on stop")
	file, given, err := cl.Load(args, c)
	if err != nil {
		return nil, err
	}
	c.OneShot = *oneShot
	if given["t"] {
		if *timeout <= 0 {
			return nil, fmt.Errorf("-t %d: the timeout must be a positive number of seconds", *timeout)
		}
		c.TimeoutSeconds = *timeout
	}
	if cl.NArg() > 0 {
		c.Interfaces = cl.Args()
	}
	if err := c.finish(); err != nil {
		return nil, sdk.Blame(err, file)
	}
	return c, nil
}

// stageConfig parses the command line a privileged stage was given and
// makes its logger. A refused command line is reported on stderr.
func stageConfig(args []string, stage sdk.Stage) (*Config, *slog.Logger, bool) {
	return sdk.StageConfig("dyad-dhcp", args, stage, ParseArgs, func(c *Config) bool { return c.Debug })
}

// finish fills defaults and checks values that do not depend on the host.
func (c *Config) finish() error {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.StateDir, defaultStateDir)
	def(&c.RunDir, defaultRunDir)
	def(&c.ResolvConf, defaultResolvConf)
	def(&c.NTPConf, defaultNTPConf)
	c.Timeout = defaultTimeout
	if c.TimeoutSeconds < 0 {
		return fmt.Errorf("config: timeout %d: must be positive", c.TimeoutSeconds)
	}
	if c.TimeoutSeconds > 0 {
		c.Timeout = time.Duration(c.TimeoutSeconds) * time.Second
	}
	if c.NoTimeout {
		c.Timeout = 0
	}
	if len(c.Interfaces) == 0 {
		c.Interfaces = []string{"*"}
	}
	for _, p := range slices.Concat(c.Interfaces, c.DenyInterfaces) {
		if _, err := path.Match(p, ""); err != nil || p == "" || len(p) > 64 || strings.ContainsAny(p, "/ \t\n") {
			return fmt.Errorf("config: interface pattern %q is not valid", p)
		}
	}
	if err := checkClientID(c.ClientID); err != nil {
		return fmt.Errorf("config: clientid %q: %w", c.ClientID, err)
	}
	if c.Hostname != "" {
		if err := privsep.CheckHostname(c.Hostname); err != nil {
			return fmt.Errorf("config: hostname: %w", err)
		}
	}
	if c.EngineUID == 0 || c.EngineGID == 0 {
		return errors.New("config: engine_uid and engine_gid must not be 0: the engine never runs as root")
	}
	switch c.EngineLauncher {
	case "":
		if _, err := os.Stat(DefaultEngineLauncher); err == nil {
			c.EngineLauncher = DefaultEngineLauncher
		}
	case "none":
		c.EngineLauncher = ""
	}
	// "none" turns off writing a file.
	for _, p := range []*string{&c.ResolvConf, &c.NTPConf} {
		if *p == "none" {
			*p = ""
		}
	}
	for _, p := range []*string{&c.StateDir, &c.RunDir, &c.ResolvConf, &c.NTPConf, &c.EngineLauncher} {
		if *p != "" && !strings.HasPrefix(*p, "/") {
			return fmt.Errorf("config: path %q must be absolute", *p)
		}
	}
	return nil
}

// checkClientID accepts the forms Config.ClientID documents.
func checkClientID(id string) error {
	switch id {
	case "duid", "hwaddr", "none":
		return nil
	}
	h, ok := strings.CutPrefix(id, rawClientIDPrefix)
	if !ok {
		return errors.New("want duid, hwaddr, none or raw:HEX")
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return fmt.Errorf("not hexadecimal: %w", err)
	}
	// RFC 2132, 9.14: at least two bytes; and one option's worth.
	if len(b) < 2 || len(b) > 255 {
		return fmt.Errorf("%d bytes: want 2 to 255", len(b))
	}
	return nil
}

// EngineConfig is what the actuator tells the engine in its Welcome: the
// configuration the engine needs, and the leases saved before a restart.
type EngineConfig struct {
	OneShot     bool            `cbor:"1,keyasint"`
	Timeout     int64           `cbor:"2,keyasint"` // nanoseconds
	ClientID    string          `cbor:"3,keyasint"`
	Hostname    string          `cbor:"4,keyasint,omitempty"`
	RapidCommit bool            `cbor:"5,keyasint"`
	Release     bool            `cbor:"6,keyasint"`
	RouteMetric uint32          `cbor:"7,keyasint"`
	Resolv      bool            `cbor:"8,keyasint"` // write resolv.conf
	NTP         bool            `cbor:"9,keyasint"` // write the NTP list
	SetHostname bool            `cbor:"10,keyasint"`
	Leases      []privsep.Lease `cbor:"11,keyasint,omitempty"`
	// Installed are the addresses the actuator holds on the host, by
	// link: a restarted engine takes a saved lease for one of them as
	// applied.
	Installed   map[string]netip.Prefix `cbor:"13,keyasint,omitempty"`
	Deconfigure bool                    `cbor:"14,keyasint"`
	Request     []uint8                 `cbor:"15,keyasint,omitempty"`
	Ignore      []uint8                 `cbor:"16,keyasint,omitempty"`
	Require     []uint8                 `cbor:"17,keyasint,omitempty"`
}

// engineConfig is the part of c the engine sees.
func (c *Config) engineConfig(saved []privsep.Lease) EngineConfig {
	return EngineConfig{
		OneShot: c.OneShot, Timeout: int64(c.Timeout), ClientID: c.ClientID, Hostname: c.Hostname,
		RapidCommit: c.RapidCommit, Release: c.Release, RouteMetric: c.RouteMetric,
		Resolv: c.ResolvConf != "", NTP: c.NTPConf != "", SetHostname: c.ApplyHostname,
		Leases: saved, Deconfigure: c.Deconfigure,
		Request: c.Request, Ignore: c.Ignore, Require: c.Require,
	}
}
