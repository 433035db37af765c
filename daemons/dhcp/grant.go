package dhcp

import (
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
	"github.com/dyad-project/dyad/sdk"
)

// The grant of dyad-dhcp: everything its actuator may do, and the
// capabilities it keeps to do it. Together with privsep/catalogue.go and
// privsep/policy.go this is the whole of the daemon's privilege.

// grant returns the policy the actuator enforces for a configuration.
func grant(c *Config) privsep.Policy {
	ops := []privsep.Kind{
		privsep.OpLinkUp,
		privsep.OpLinkMTU,
		privsep.OpAddrReplace,
		privsep.OpAddrRemove,
		privsep.OpRouteReplace,
		privsep.OpRouteRemove,
		privsep.OpLeaseSave,
		privsep.OpLeaseDrop,
	}
	if c.ResolvConf != "" {
		ops = append(ops, privsep.OpResolvConf)
	}
	if c.NTPConf != "" {
		ops = append(ops, privsep.OpNTPServers)
	}
	if c.ApplyHostname {
		ops = append(ops, privsep.OpHostname)
	}
	return privsep.Policy{Daemon: "dhcp", Ops: ops, Interfaces: c.Interfaces, DenyInterfaces: c.DenyInterfaces}.WithDefaultBounds()
}

// actuatorCaps are the capabilities the actuator keeps: CAP_NET_ADMIN for
// links, addresses and routes; CAP_SYS_ADMIN only when a received host name
// is to be applied, since sethostname needs it.
func actuatorCaps(c *Config) []sandbox.Cap {
	caps := []sandbox.Cap{unix.CAP_NET_ADMIN}
	if c.ApplyHostname {
		caps = append(caps, unix.CAP_SYS_ADMIN)
	}
	return caps
}

// supervisorCaps are what the supervisor keeps once the actuator and the
// first engine run: what it needs to restart the engine as another user
// with nothing (setuid, setgid, dropping the bounding set) and to signal
// it; nothing when engine-exec does that. The actuator is never
// restarted, so none of its capabilities stay.
func supervisorCaps(c *Config) []sandbox.Cap {
	if c.EngineLauncher != "" {
		return nil
	}
	return sdk.RestartCaps()
}
