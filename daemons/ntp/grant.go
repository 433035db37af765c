package ntp

import (
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/sandbox"
)

// The grant of dyad-ntp: everything its actuator may do. Together with
// privsep/catalogue.go and privsep/clockpolicy.go this is the whole of the
// daemon's privilege: the clock's five operations, within the bounds of
// the clock policy, and CAP_SYS_TIME to perform them.

// Grant returns the policy the actuator enforces for an engine
// configuration: the thresholds the configuration sets bound the engine
// too.
func Grant(c EngineConfig) privsep.Policy {
	c = c.withDefaults()
	return privsep.Policy{
		Daemon: "ntp",
		Ops:    []privsep.Kind{privsep.OpClockRead, privsep.OpClockSlew, privsep.OpClockFrequency, privsep.OpClockStep, privsep.OpClockStatus},
		Clock: privsep.ClockPolicy{
			PanicThreshold: c.PanicThreshold,
			MaxInitialStep: c.MaxInitialStep,
		},
	}.WithDefaultBounds()
}

// actuatorCaps are the capabilities the actuator keeps: CAP_SYS_TIME, or
// none when the clock it disciplines is the simulated one.
func actuatorCaps(c *Config) []sandbox.Cap {
	if c.SimulatedClock != "" {
		return nil
	}
	return []sandbox.Cap{unix.CAP_SYS_TIME}
}
