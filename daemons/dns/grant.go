package dns

import (
	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
)

// The grant of dyad-dns: everything its actuator may do. Together with
// privsep/catalogue.go this is the whole of the daemon's privilege after
// start-up: write the consumers' resolv.conf, pointing at the stub's own
// addresses and nowhere else. The listening sockets on port 53 are opened
// by the supervisor before it drops CAP_NET_BIND_SERVICE with everything
// else; no process keeps it.

// Grant returns the policy the actuator enforces.
func Grant(cfg *Config) privsep.Policy {
	p := privsep.Policy{Daemon: "dns"}
	if cfg.ResolvConf != "" {
		p.Ops = []privsep.Kind{privsep.OpResolvConf}
		for _, a := range cfg.listen {
			p.OwnNameservers = append(p.OwnNameservers, a.Addr())
		}
	}
	return p.WithDefaultBounds()
}

// actuatorCaps are the capabilities the actuator keeps: none. It writes
// one file as root, the owner of the files it replaces.
func actuatorCaps(*Config) []sandbox.Cap { return nil }
