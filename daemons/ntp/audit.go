package ntp

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
	"github.com/dyad-project/dyad/sdk/audit"
)

// printAudit prints what each process of dyad-ntp holds, and what its
// actuator will do, for the configuration the arguments give. dyad pkg
// build embeds it in the image.
func printAudit(args []string, stdout, stderr io.Writer) int {
	return audit.Command("dyad-ntp", args, stdout, stderr, ParseArgs, auditOf)
}

// auditOf is the audit of a configuration, with the image's engine
// launcher when one is named.
func auditOf(cfg *Config, launcher string) *audit.Audit {
	if launcher != "" {
		cfg.EngineLauncher = launcher
	}
	readable := "the resolver's files (/etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf, /etc/host.conf)"
	if cfg.DHCPServers != "" {
		readable += " and " + filepath.Dir(cfg.DHCPServers) + ", read only"
	}
	a := &audit.Audit{
		Daemon: "dyad-ntp",
		Supervisor: audit.Process{
			User:         "root",
			Capabilities: sandbox.CapNames(sdk.RestartCaps()),
			NoNewPrivs:   true,
			Seccomp:      "the supervisor's: the Go runtime, waiting for and starting its children",
			Landlock:     "none",
			Role:         "starts the actuator once and the engine again whenever it dies; reads nothing from the network nor from the engine",
		},
		Actuator: audit.Process{
			User:         "root",
			Capabilities: sandbox.CapNames(actuatorCaps(cfg)),
			NoNewPrivs:   true,
			Seccomp:      "the engine's, and clock_adjtime: no socket, no file opened for writing",
			Landlock:     "no file access at all",
			Role:         "checks each request of the engine against the grant below, and carries out those that pass",
		},
		Engine: audit.Process{
			User:         fmt.Sprintf("%d:%d", cfg.EngineUID, cfg.EngineGID),
			Capabilities: []string{},
			NoNewPrivs:   true,
			Seccomp:      "the engine's, and UDP sockets of IPv4 and IPv6 (no other socket): no file opened for writing, no fork, no signal but to itself",
			Landlock:     readable,
			Role:         "resolves the servers' names, parses every byte from the network and runs NTP; asks the actuator for each change of the clock",
		},
	}
	if cfg.EngineLauncher != "" {
		a.Supervisor.Capabilities = []string{}
		a.StartedThrough(cfg.EngineLauncher)
	}
	policy := Grant(cfg.Engine())
	for _, k := range policy.Ops {
		does, checks := policy.Describe(k)
		a.Operations = append(a.Operations, audit.Operation{Op: string(k), Does: does, Checks: checks})
	}
	return a
}
