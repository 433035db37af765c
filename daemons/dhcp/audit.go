package dhcp

import (
	"fmt"
	"io"
	"slices"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk/audit"
)

// printAudit prints what each process of dyad-dhcp holds, and what its
// actuator will do, for the configuration the arguments give: derived
// from the grant and the capability lists the daemon runs with. dyad pkg
// build embeds it in the image.
func printAudit(args []string, stdout, stderr io.Writer) int {
	return audit.Command("dyad-dhcp", args, stdout, stderr, ParseArgs, auditOf)
}

// auditOf is the audit of a configuration, with the image's engine
// launcher when one is named.
func auditOf(cfg *Config, launcher string) *audit.Audit {
	if launcher != "" {
		cfg.EngineLauncher = launcher
	}
	a := &audit.Audit{
		Daemon: "dyad-dhcp",
		Supervisor: audit.Process{
			User:         "root",
			Capabilities: sandbox.CapNames(supervisorCaps(cfg)),
			NoNewPrivs:   true,
			Seccomp:      "the supervisor's: the Go runtime, waiting for and starting its children",
			Landlock:     "none",
			Role:         "opens the packet and UDP sockets, starts the actuator once and the engine again whenever it dies; reads nothing from the network nor from the engine",
		},
		Actuator: audit.Process{
			User:         "root",
			Capabilities: sandbox.CapNames(actuatorCaps(cfg)),
			NoNewPrivs:   true,
			Seccomp:      "the actuator's: netlink, unix and IPv4 sockets, atomic file replace",
			Landlock:     fmt.Sprintf("writes only under %v", actuatorWritable(cfg)),
			Role:         "checks each request of the engine against the grant below, and carries out those that pass",
		},
		Engine: audit.Process{
			User:         fmt.Sprintf("%d:%d", cfg.EngineUID, cfg.EngineGID),
			Capabilities: []string{},
			NoNewPrivs:   true,
			Seccomp:      "the engine's: I/O on the descriptors it was given; no new socket, no file opened for writing, no fork, no signal but to itself",
			Landlock:     "no file access at all",
			Role:         "parses every byte from the network and runs DHCP; asks the actuator for each host change",
		},
	}
	if cfg.EngineLauncher != "" {
		a.StartedThrough(cfg.EngineLauncher)
	}
	// Every operation a configuration can grant, and the setting that
	// grants those the given one does not.
	granted := grant(cfg)
	full := *cfg
	full.ResolvConf, full.NTPConf, full.ApplyHostname = defaultResolvConf, defaultNTPConf, true
	only := map[privsep.Kind]string{
		privsep.OpResolvConf: "resolv_conf not none",
		privsep.OpNTPServers: "ntp_conf not none",
		privsep.OpHostname:   "apply_hostname: true, with CAP_SYS_ADMIN added to the label",
	}
	for _, k := range grant(&full).Ops {
		does, checks := granted.Describe(k)
		doc := audit.Operation{Op: string(k), Does: does, Checks: checks}
		if !slices.Contains(granted.Ops, k) {
			doc.Only = only[k]
		}
		a.Operations = append(a.Operations, doc)
	}
	return a
}
