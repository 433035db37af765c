package dns

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
	"github.com/dyad-project/dyad/sdk/audit"
)

// printAudit prints what each process of dyad-dns holds, and what its
// actuator will do, for the configuration the arguments give. dyad pkg
// build embeds it in the image.
func printAudit(args []string, stdout, stderr io.Writer) int {
	return audit.Command("dyad-dns", args, stdout, stderr, ParseArgs, auditOf)
}

// auditOf is the audit of a configuration, with the image's engine
// launcher when one is named.
func auditOf(cfg *Config, launcher string) *audit.Audit {
	if launcher != "" {
		cfg.EngineLauncher = launcher
	}
	readable := "none"
	if r := readableFiles(cfg); len(r) > 0 {
		readable = "reads " + strings.Join(r, ", ") + ", read only"
	}
	writable := "no file access at all"
	if cfg.ResolvConf != "" {
		writable = "writes only under " + filepath.Dir(cfg.ResolvConf)
	}
	a := &audit.Audit{
		Daemon: "dyad-dns",
		Supervisor: audit.Process{
			User:         "root",
			Capabilities: sandbox.CapNames(sdk.RestartCaps()),
			NoNewPrivs:   true,
			Seccomp:      "the supervisor's: the Go runtime, waiting for and starting its children",
			Landlock:     "none",
			Role:         fmt.Sprintf("opens the listeners on %v (CAP_NET_BIND_SERVICE, then dropped), starts the actuator once and the engine again whenever it dies; reads nothing from the network nor from the engine", cfg.listen),
		},
		Actuator: audit.Process{
			User:         "root",
			Capabilities: sandbox.CapNames(actuatorCaps(cfg)),
			NoNewPrivs:   true,
			Seccomp:      "the actuator's: netlink, unix and IPv4 sockets, atomic file replace",
			Landlock:     writable,
			Role:         "checks each request of the engine against the grant below, and carries out those that pass",
		},
		Engine: audit.Process{
			User:         fmt.Sprintf("%d:%d", cfg.EngineUID, cfg.EngineGID),
			Capabilities: []string{},
			NoNewPrivs:   true,
			Seccomp:      "the engine's, and UDP and TCP sockets of IPv4 and IPv6 (no other socket): no file opened for writing, no fork, no signal but to itself",
			Landlock:     readable,
			Role:         "parses every byte from clients and upstreams, answers from the cache and the local records, asks upstreams; asks the actuator to point resolv.conf at the stub",
		},
	}
	if cfg.EngineLauncher != "" {
		a.Supervisor.Capabilities = []string{}
		a.StartedThrough(cfg.EngineLauncher)
	}
	policy := Grant(cfg)
	for _, k := range policy.Ops {
		does, checks := policy.Describe(k)
		a.Operations = append(a.Operations, audit.Operation{Op: string(k), Does: does, Checks: checks})
	}
	return a
}
