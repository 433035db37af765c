package ntp

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The supervisor: the process the operator starts, as root. It opens the
// status socket, starts the actuator and the engine, then drops to what it
// needs to restart the engine and confines itself. It never reads a byte
// from the network.

func supervise(cfg *Config, args []string) int {
	log := sdk.NewLogger(os.Stderr, "dyad-ntp", sdk.StageSupervisor, cfg.Debug)
	fail := func(err error) int {
		log.Error(err.Error())
		fmt.Fprintln(os.Stderr, "dyad-ntp:", err)
		return 1
	}
	// Whatever the caller left open must not reach the children.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail(fmt.Errorf("close-on-exec: %w", err))
	}
	if err := sdk.CheckRoot("dyad-ntp"); err != nil {
		return fail(err)
	}
	if cfg.SimulatedClock != "" {
		log.Warn("the clock is simulated: the host's clock is not changed", "log", cfg.SimulatedClock)
		if err := os.MkdirAll(filepath.Dir(cfg.SimulatedClock), 0o755); err != nil {
			return fail(err)
		}
	}
	status, err := sdk.ListenStatus(cfg.RunDir)
	if err != nil {
		return fail(err)
	}
	s := &sdk.Supervisor{
		Name:           "dyad-ntp",
		Log:            log,
		ActuatorArgs:   args,
		EngineArgs:     engineArgs(cfg),
		ActuatorCaps:   actuatorCaps(cfg),
		EngineFiles:    []*os.File{status},
		EngineUID:      cfg.EngineUID,
		EngineGID:      cfg.EngineGID,
		EngineLauncher: cfg.EngineLauncher,
		Confine: func() error {
			return sdk.ConfineSupervisor(log, cfg.EngineLauncher != "", sdk.RestartCaps(), sandbox.UDPClientSyscalls())
		},
	}
	if cfg.Mode == ModeOnce {
		s.Deadline = time.Now().Add(cfg.Timeout)
	}
	code := s.Run()
	if code == sdk.ExitTimeout || code != 0 && cfg.Mode == ModeOnce && time.Now().After(s.Deadline) {
		fmt.Fprintf(os.Stderr, "dyad-ntp: the clock was not set within %s\n", cfg.Timeout)
	}
	return code
}

// engineArgs are the engine's command line: what it needs before the
// actuator's Welcome.
func engineArgs(cfg *Config) []string {
	var args []string
	if cfg.Debug {
		args = append(args, "-d")
	}
	if cfg.AllowNoLandlock {
		args = append(args, "--allow-no-landlock")
	}
	if cfg.DHCPServers != "" {
		// The directory: the DHCP client replaces the file, and
		// landlock follows the file it was given.
		args = append(args, "--dhcp-dir", filepath.Dir(cfg.DHCPServers))
	}
	return args
}
