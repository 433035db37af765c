package dhcp

import (
	"fmt"
	"io"
	"slices"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk/audit"
)

// audit prints what each process of dyad-dhcp holds, and what its
// actuator will do, for the configuration the arguments give: derived
// from the grant and the capability lists the daemon runs with. dyad pkg
// build embeds it in the image.
//
// The engine launcher is the one of the machine that runs it; an image
// build, which runs it elsewhere, names the image's with -engine-launcher
// before the daemon's own arguments.
func printAudit(args []string, stdout, stderr io.Writer) int {
	launcher := ""
	if len(args) > 1 && args[0] == "-engine-launcher" {
		launcher, args = args[1], args[2:]
	}
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dyad-dhcp:", err)
		return 2
	}
	if launcher != "" {
		cfg.EngineLauncher = launcher
	}
	stdout.Write(auditOf(cfg).Marshal())
	return 0
}

func auditOf(cfg *Config) *audit.Audit {
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
		a.Supervisor.NoNewPrivs = false
		a.Supervisor.Seccomp = "none: a filter needs no_new_privs, under which the kernel would ignore engine-exec's set-user-ID bit; so, root without no_new_privs, an exec would give it back the container's bounding set, and it execs only engine-exec"
		a.Supervisor.Role += "; starts and signals the engine through " + cfg.EngineLauncher + ", set-user-ID to the engine's user"
		a.Engine.Role += "; started by engine-exec, which sets its user and no_new_privs"
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
