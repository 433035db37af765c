package ntp

import (
	"errors"
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
	c := newConfig()
	cl := sdk.NewCommandLine("dyad-ntp", DefaultConfigFile, stderr)
	once := cl.Bool("1", false, "set the clock once and exit")
	query := cl.Bool("q", false, "query the servers, print what they say and change nothing")
	timeout := cl.Int("t", 0, "seconds -1 and -q wait at most (default 30)")
	cl.Override("run-dir", &c.RunDir, "directory of the status socket (default "+defaultRunDir+")")
	cl.Override("dhcp-servers", &c.DHCPServers, "servers a DHCP client wrote (default "+defaultDHCPServers+"; none for none)")
	minPoll := cl.Int("minpoll", 0, "shortest poll interval, a power of two seconds (default 6)")
	sim := cl.String("simulate-clock", "", "tests: discipline a virtual clock, logging each operation to this file")
	cl.Switch("d", &c.Debug, "log debug messages")
	cl.Switch("allow-no-landlock", &c.AllowNoLandlock, "start even if the kernel has no landlock")
	file, given, err := cl.Load(args, c)
	if err != nil {
		return nil, err
	}
	switch {
	case *once && *query:
		return nil, errors.New("-1 and -q: choose one")
	case *once:
		c.Mode = ModeOnce
	case *query:
		c.Mode = ModeQuery
	}
	if given["t"] {
		if *timeout <= 0 {
			return nil, fmt.Errorf("-t %d: the timeout must be a positive number of seconds", *timeout)
		}
		c.TimeoutSeconds = *timeout
	}
	if given["minpoll"] {
		c.MinPoll = *minPoll
	}
	c.SimulatedClock = *sim
	if cl.NArg() > 0 {
		// Servers on the command line replace the file's, as ntpdate's.
		c.Servers, c.Pools = cl.Args(), nil
	}
	if err := c.finish(); err != nil {
		return nil, sdk.Blame(err, file)
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
	return sdk.StageConfig("dyad-ntp", args, stage, ParseArgs, func(c *Config) bool { return c.Debug })
}
