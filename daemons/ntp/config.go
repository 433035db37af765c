package ntp

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dyad-project/dyad/sdk"
)

// Config is dyad-ntp's configuration: the file (YAML, strict) overlaid by
// the command line. Every stage parses the same arguments.
type Config struct {
	Servers []string `yaml:"servers"`
	Pools   []string `yaml:"pools"`
	// DHCPServers is the list of servers a DHCP client writes (dyad-dhcp's
	// ntp_conf), read when it changes; "none" reads none.
	DHCPServers string `yaml:"dhcp_servers"`

	MinPoll        int      `yaml:"minpoll"`
	MaxPoll        int      `yaml:"maxpoll"`
	Burst          int      `yaml:"burst"`
	StepThreshold  Duration `yaml:"step_threshold"`
	PanicThreshold Duration `yaml:"panic_threshold"`
	MaxInitialStep Duration `yaml:"max_initial_step"`
	MinSources     int      `yaml:"min_sources"`
	// TimeoutSeconds bounds -1: past it the daemon gives up.
	TimeoutSeconds int `yaml:"timeout"`

	RunDir         string `yaml:"run_dir"`
	EngineUID      uint32 `yaml:"engine_uid"`
	EngineGID      uint32 `yaml:"engine_gid"`
	EngineLauncher string `yaml:"engine_launcher"`

	AllowNoLandlock bool `yaml:"allow_no_landlock"`
	Debug           bool `yaml:"debug"`

	// Mode is ModeOnce with -1, ModeQuery with -q.
	Mode    Mode          `yaml:"-"`
	Timeout time.Duration `yaml:"-"`
	// SimulatedClock, a test's flag, makes the actuator discipline a
	// virtual clock and append each operation to this file, as a JSON
	// line: the host's clock is never touched.
	SimulatedClock string `yaml:"-"`
	// ConfigTest checks the configuration and exits (openntpd's -n).
	ConfigTest bool `yaml:"-"`
	// Warnings are what a parser ignored, each saying where.
	Warnings []string `yaml:"-"`
}

// Duration is a time.Duration the file writes as Go does.
type Duration = sdk.Duration

// Defaults, per DESIGN.md's paths.
const (
	DefaultConfigFile  = "/etc/dyad/ntp.yaml"
	defaultRunDir      = "/run/dyad/ntp"
	defaultDHCPServers = "/run/dyad/dhcp/ntp.conf"
	defaultTimeout     = 30 * time.Second
	// DefaultEngineID is the engine's uid and gid (the ntp image's
	// /etc/passwd names it dyad-ntp).
	DefaultEngineID = 2102
	// DefaultEngineLauncher is where the images put engine-exec.
	DefaultEngineLauncher = "/usr/libexec/dyad/engine-exec"
	// OpenntpdMode, first on a command line, says it is openntpd's (the
	// image runs dyad-ntp ntpd -d).
	OpenntpdMode = "ntpd"
	maxServers   = 64
)

func newConfig() *Config {
	return &Config{EngineUID: DefaultEngineID, EngineGID: DefaultEngineID}
}

// ParseArgs reads the command line (without argv[0]) and the file it
// names, or the default one when it exists.
func ParseArgs(args []string, stderr io.Writer) (*Config, error) {
	if len(args) > 0 && args[0] == OpenntpdMode {
		return parseOpenntpd(args[1:])
	}
	fs := flag.NewFlagSet("dyad-ntp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("1", false, "set the clock once and exit")
	query := fs.Bool("q", false, "query the servers, print what they say and change nothing")
	timeout := fs.Int("t", 0, "seconds -1 and -q wait at most (default 30)")
	file := fs.String("f", "", "configuration file (default "+DefaultConfigFile+" when present)")
	runDir := fs.String("run-dir", "", "directory of the status socket (default "+defaultRunDir+")")
	dhcp := fs.String("dhcp-servers", "", "servers a DHCP client wrote (default "+defaultDHCPServers+"; none for none)")
	minPoll := fs.Int("minpoll", 0, "shortest poll interval, a power of two seconds (default 6)")
	sim := fs.String("simulate-clock", "", "tests: discipline a virtual clock, logging each operation to this file")
	debug := fs.Bool("d", false, "log debug messages")
	noLandlock := fs.Bool("allow-no-landlock", false, "start even if the kernel has no landlock")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c := newConfig()
	path, must := *file, true
	if path == "" {
		path, must = DefaultConfigFile, false
	}
	loaded, err := sdk.LoadConfig(path, must, c)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *once && *query:
		return nil, errors.New("-1 and -q: choose one")
	case *once:
		c.Mode = ModeOnce
	case *query:
		c.Mode = ModeQuery
	}
	if set["t"] {
		if *timeout <= 0 {
			return nil, fmt.Errorf("-t %d: the timeout must be a positive number of seconds", *timeout)
		}
		c.TimeoutSeconds = *timeout
	}
	if set["run-dir"] {
		c.RunDir = *runDir
	}
	if set["dhcp-servers"] {
		c.DHCPServers = *dhcp
	}
	if set["minpoll"] {
		c.MinPoll = *minPoll
	}
	c.SimulatedClock = *sim
	c.Debug = c.Debug || *debug
	c.AllowNoLandlock = c.AllowNoLandlock || *noLandlock
	if fs.NArg() > 0 {
		// Servers on the command line replace the file's, as ntpdate's.
		c.Servers, c.Pools = fs.Args(), nil
	}
	if err := c.finish(); err != nil {
		if loaded {
			return nil, fmt.Errorf("%w (configuration %s)", err, path)
		}
		return nil, err
	}
	return c, nil
}

// finish fills defaults and checks what does not depend on the host.
func (c *Config) finish() error {
	if c.RunDir == "" {
		c.RunDir = defaultRunDir
	}
	switch c.DHCPServers {
	case "":
		c.DHCPServers = defaultDHCPServers
	case "none":
		c.DHCPServers = ""
	}
	c.Timeout = defaultTimeout
	if c.TimeoutSeconds < 0 {
		return fmt.Errorf("config: timeout %d: must be positive", c.TimeoutSeconds)
	}
	if c.TimeoutSeconds > 0 {
		c.Timeout = time.Duration(c.TimeoutSeconds) * time.Second
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
	for _, p := range []string{c.RunDir, c.DHCPServers, c.EngineLauncher, c.SimulatedClock} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return fmt.Errorf("config: path %q must be absolute", p)
		}
	}
	if len(c.Servers)+len(c.Pools) > maxServers {
		return fmt.Errorf("config: %d servers and pools: at most %d", len(c.Servers)+len(c.Pools), maxServers)
	}
	if len(c.Servers)+len(c.Pools) == 0 && c.DHCPServers == "" {
		return errors.New("config: no server: name one, a pool, or the DHCP client's list")
	}
	if err := c.Engine().Check(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Engine is the engine's part of the configuration.
func (c *Config) Engine() EngineConfig {
	ec := EngineConfig{
		Mode:           c.Mode,
		MinPoll:        c.MinPoll,
		MaxPoll:        c.MaxPoll,
		BurstCount:     c.Burst,
		StepThreshold:  time.Duration(c.StepThreshold),
		PanicThreshold: time.Duration(c.PanicThreshold),
		MaxInitialStep: time.Duration(c.MaxInitialStep),
		MinSources:     c.MinSources,
		DHCPServers:    c.DHCPServers,
		SimulatedClock: c.SimulatedClock != "",
		Timeout:        c.Timeout,
	}
	if c.Mode != ModeService {
		// Nothing to wait for between packets of the first burst: each
		// goes as soon as the last is answered, as ntpdate's.
		ec.BurstInterval = -1
	}
	for _, s := range c.Servers {
		ec.Sources = append(ec.Sources, SourceConfig{Name: s})
	}
	for _, p := range c.Pools {
		ec.Sources = append(ec.Sources, SourceConfig{Name: p, Pool: true})
	}
	return ec
}

// stageConfig parses the command line a privileged stage was given and
// makes its logger.
func stageConfig(args []string, stage sdk.Stage) (*Config, *slog.Logger, bool) {
	cfg, err := ParseArgs(args, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dyad-ntp:", err)
		return nil, nil, false
	}
	return cfg, sdk.NewLogger(os.Stderr, "dyad-ntp", stage, cfg.Debug), true
}
