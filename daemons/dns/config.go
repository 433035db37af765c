package dns

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/sdk"
)

// Config is dyad-dns's configuration: the file (YAML, strict) overlaid by
// the command line. Every stage parses the same arguments.
type Config struct {
	// Listen are the addresses the stub answers on, UDP and TCP.
	Listen []string `yaml:"listen"`
	// Upstreams are the servers asked on a miss; with none, those of
	// UpstreamsFile.
	Upstreams []string `yaml:"upstreams"`
	// UpstreamsFile is a resolv.conf a DHCP client writes (dyad-dhcp's
	// resolv_conf), read again when it changes; "none" reads none.
	UpstreamsFile string `yaml:"upstreams_file"`
	// Routes send the names under a domain to upstreams of their own.
	Routes map[string][]string `yaml:"routes"`
	// TLSUpstreams are upstreams asked over TLS (RFC 7858): an address
	// (port 853 unless given) and the name its certificate must carry,
	// which chains to an authority of TLSCAFile (the system's by default).
	TLSUpstreams map[string]string `yaml:"tls_upstreams"`
	TLSCAFile    string            `yaml:"tls_ca_file"`
	// HostsFile is answered locally ("none" for none); LocalRecords too,
	// records in presentation form.
	HostsFile    string   `yaml:"hosts_file"`
	LocalRecords []string `yaml:"local_records"`

	CacheEntries   int      `yaml:"cache_entries"`
	CacheBytes     int      `yaml:"cache_bytes"`
	MinTTL         Duration `yaml:"min_ttl"`
	MaxTTL         Duration `yaml:"max_ttl"`
	MaxNegativeTTL Duration `yaml:"max_negative_ttl"`
	ServeStale     Duration `yaml:"serve_stale"`
	PrefetchHits   int      `yaml:"prefetch_hits"`

	// ResolvConf is the consumers' resolv.conf, which the actuator
	// writes pointing at the stub ("none" for none); Search is its search
	// list, the DHCP client's when empty.
	ResolvConf string   `yaml:"resolv_conf"`
	Search     []string `yaml:"search"`

	RunDir         string `yaml:"run_dir"`
	EngineUID      uint32 `yaml:"engine_uid"`
	EngineGID      uint32 `yaml:"engine_gid"`
	EngineLauncher string `yaml:"engine_launcher"`

	AllowNoLandlock bool `yaml:"allow_no_landlock"`
	Debug           bool `yaml:"debug"`

	// Read from Listen, Upstreams, Routes and TLSUpstreams by finish.
	listen    []netip.AddrPort
	upstreams []netip.AddrPort
	routes    []Route
	tls       []TLSUpstream
}

// TLSUpstream is an upstream asked over TLS, and the name its certificate
// must carry.
type TLSUpstream struct {
	Addr netip.AddrPort `cbor:"1,keyasint"`
	Name string         `cbor:"2,keyasint"`
}

// Duration is a time.Duration the file writes as Go does.
type Duration = sdk.Duration

// Defaults, per DESIGN.md's paths.
const (
	DefaultConfigFile    = "/etc/dyad/dns.yaml"
	defaultRunDir        = "/run/dyad/dns"
	defaultUpstreamsFile = "/run/dyad/dhcp/resolv.conf"
	defaultHostsFile     = "/etc/hosts"
	defaultResolvConf    = "/etc/resolv.conf"
	defaultTLSCAFile     = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultListen is systemd-resolved's stub address.
	DefaultListen = "127.0.0.53:53"
	// DefaultEngineID is the engine's uid and gid (the dns image's
	// /etc/passwd names it dyad-dns).
	DefaultEngineID = 2103
	// DefaultEngineLauncher is where the images put engine-exec.
	DefaultEngineLauncher = "/usr/libexec/dyad/engine-exec"
	maxListen             = 8
	maxUpstreams          = 16
)

func newConfig() *Config {
	return &Config{EngineUID: DefaultEngineID, EngineGID: DefaultEngineID}
}

// ParseArgs reads the command line (without argv[0]) and the file it
// names, or the default one when it exists.
func ParseArgs(args []string, stderr io.Writer) (*Config, error) {
	c := newConfig()
	cl := sdk.NewCommandLine("dyad-dns", DefaultConfigFile, stderr)
	listen := cl.String("listen", "", "addresses to answer on, comma-separated (default "+DefaultListen+")")
	cl.Override("upstreams-file", &c.UpstreamsFile, "a resolv.conf naming the upstreams (default "+defaultUpstreamsFile+"; none for none)")
	cl.Override("resolv-conf", &c.ResolvConf, "the consumers' resolv.conf to point at the stub (default "+defaultResolvConf+"; none for none)")
	cl.Override("hosts", &c.HostsFile, "hosts file answered locally (default "+defaultHostsFile+"; none for none)")
	cl.Override("run-dir", &c.RunDir, "directory of the status socket (default "+defaultRunDir+")")
	cl.Switch("d", &c.Debug, "log debug messages")
	cl.Switch("allow-no-landlock", &c.AllowNoLandlock, "start even if the kernel has no landlock")
	file, given, err := cl.Load(args, c)
	if err != nil {
		return nil, err
	}
	if given["listen"] {
		c.Listen = strings.Split(*listen, ",")
	}
	if cl.NArg() > 0 {
		// Upstreams on the command line replace the file's.
		c.Upstreams = cl.Args()
	}
	if err := c.finish(); err != nil {
		return nil, sdk.Blame(err, file)
	}
	return c, nil
}

// finish fills defaults and checks what does not depend on the host.
func (c *Config) finish() error {
	defaults := []struct {
		p   *string
		def string
	}{{&c.RunDir, defaultRunDir}, {&c.UpstreamsFile, defaultUpstreamsFile}, {&c.HostsFile, defaultHostsFile}, {&c.ResolvConf, defaultResolvConf}}
	for _, d := range defaults {
		switch *d.p {
		case "":
			*d.p = d.def
		case "none":
			*d.p = ""
		}
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	if len(c.Listen) > maxListen {
		return fmt.Errorf("config: listen: %d addresses, at most %d", len(c.Listen), maxListen)
	}
	c.listen = nil
	for _, s := range c.Listen {
		a, err := parseAddrPort(s, 53)
		if err != nil {
			return fmt.Errorf("config: listen: %w", err)
		}
		if slices.Contains(c.listen, a) {
			return fmt.Errorf("config: listen: %s twice", a)
		}
		c.listen = append(c.listen, a)
	}
	var err error
	if c.upstreams, err = parseUpstreams("upstreams", c.Upstreams); err != nil {
		return err
	}
	c.tls = nil
	for s, name := range c.TLSUpstreams {
		a, err := parseUpstream(s, 853)
		if err != nil {
			return fmt.Errorf("config: tls_upstreams: %w", err)
		}
		if err := privsep.CheckDomainName(name); err != nil {
			return fmt.Errorf("config: tls_upstreams: %s: %w", a, err)
		}
		c.tls = append(c.tls, TLSUpstream{Addr: a, Name: name})
		// A TLS upstream is an upstream: asked for every name unless
		// routes say otherwise.
		if !slices.Contains(c.upstreams, a) {
			c.upstreams = append(c.upstreams, a)
		}
	}
	slices.SortFunc(c.tls, func(a, b TLSUpstream) int { return a.Addr.Compare(b.Addr) })
	if len(c.tls) > 0 && c.TLSCAFile == "" {
		c.TLSCAFile = defaultTLSCAFile
	}
	if len(c.upstreams) == 0 && c.UpstreamsFile == "" {
		return errors.New("config: no upstream: name some, or the DHCP client's resolv.conf (upstreams_file)")
	}
	c.routes = nil
	for domain, list := range c.Routes {
		ups, err := parseUpstreams("routes: "+domain, list)
		if err != nil {
			return err
		}
		c.routes = append(c.routes, Route{Domain: domain, Upstreams: ups})
	}
	slices.SortFunc(c.routes, func(a, b Route) int { return strings.Compare(a.Domain, b.Domain) })
	if _, err := NewForwarder(ForwarderConfig{Routes: c.routes}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := NewLocal(nil, c.LocalRecords, 0); err != nil {
		return fmt.Errorf("config: local_records: %w", err)
	}
	for _, d := range c.Search {
		if err := privsep.CheckDomainName(d); err != nil {
			return fmt.Errorf("config: search: %w", err)
		}
	}
	switch {
	case c.CacheEntries < 0 || c.CacheBytes < 0 || c.PrefetchHits < 0:
		return errors.New("config: cache_entries, cache_bytes and prefetch_hits must not be negative")
	case c.MaxTTL > 0 && c.MinTTL > c.MaxTTL:
		return errors.New("config: min_ttl is above max_ttl")
	case c.EngineUID == 0 || c.EngineGID == 0:
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
	for _, p := range []string{c.RunDir, c.UpstreamsFile, c.HostsFile, c.ResolvConf, c.EngineLauncher, c.TLSCAFile} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return fmt.Errorf("config: path %q must be absolute", p)
		}
	}
	return nil
}

// parseAddrPort reads an address with a port, or without one: port then.
func parseAddrPort(s string, port uint16) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, port), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q: not an address, or an address and a port", s)
	}
	return ap, nil
}

// parseUpstream reads an upstream's address, port as parseAddrPort.
func parseUpstream(s string, port uint16) (netip.AddrPort, error) {
	a, err := parseAddrPort(s, port)
	if err == nil && (a.Addr().IsUnspecified() || a.Addr().IsMulticast()) {
		err = fmt.Errorf("%s: not a unicast address", a)
	}
	return a, err
}

func parseUpstreams(where string, list []string) ([]netip.AddrPort, error) {
	if len(list) > maxUpstreams {
		return nil, fmt.Errorf("config: %s: %d upstreams, at most %d", where, len(list), maxUpstreams)
	}
	var out []netip.AddrPort
	for _, s := range list {
		a, err := parseUpstream(s, 53)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", where, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// ListenAddrs are the addresses the stub answers on.
func (c *Config) ListenAddrs() []netip.AddrPort { return c.listen }

// EngineConfig is what the engine is told in the actuator's Welcome.
type EngineConfig struct {
	Listen        []netip.AddrPort `cbor:"1,keyasint"`
	Upstreams     []netip.AddrPort `cbor:"2,keyasint"`
	UpstreamsFile string           `cbor:"3,keyasint"`
	Routes        []Route          `cbor:"4,keyasint"`
	HostsFile     string           `cbor:"5,keyasint"`
	LocalRecords  []string         `cbor:"6,keyasint"`
	Cache         CacheConfig      `cbor:"7,keyasint"`
	WriteResolv   bool             `cbor:"8,keyasint"`
	Search        []string         `cbor:"9,keyasint"`
	TLS           []TLSUpstream    `cbor:"10,keyasint"`
	TLSCAFile     string           `cbor:"11,keyasint"`
}

// Engine is the engine's part of the configuration.
func (c *Config) Engine() EngineConfig {
	serveStale := time.Duration(c.ServeStale)
	if serveStale == 0 {
		serveStale = DefaultServeStale
	}
	prefetch := c.PrefetchHits
	if prefetch == 0 {
		prefetch = DefaultPrefetchHits
	}
	return EngineConfig{
		Listen: c.listen, Upstreams: c.upstreams, UpstreamsFile: c.UpstreamsFile, Routes: c.routes,
		HostsFile: c.HostsFile, LocalRecords: c.LocalRecords,
		Cache: CacheConfig{MaxEntries: c.CacheEntries, MaxBytes: c.CacheBytes, MinTTL: time.Duration(c.MinTTL), MaxTTL: time.Duration(c.MaxTTL),
			MaxNegativeTTL: time.Duration(c.MaxNegativeTTL), ServeStale: serveStale, PrefetchHits: prefetch},
		WriteResolv: c.ResolvConf != "",
		Search:      c.Search,
		TLS:         c.tls,
		TLSCAFile:   c.TLSCAFile,
	}
}

// stageConfig parses the arguments again in a child stage.
func stageConfig(args []string, stage sdk.Stage) (*Config, *slog.Logger, bool) {
	return sdk.StageConfig("dyad-dns", args, stage, ParseArgs, func(c *Config) bool { return c.Debug })
}
