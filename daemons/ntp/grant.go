package ntp

import (
	"github.com/dyad-project/dyad/privsep"
)

// The grant of dyad-ntp: everything its actuator may do. Together with
// privsep/catalogue.go and privsep/clockpolicy.go this is the whole of the
// daemon's privilege: the clock's five operations, within the bounds of
// the clock policy, and CAP_SYS_TIME to perform them.

// Grant returns the policy the actuator enforces for an engine
// configuration: the thresholds the configuration sets bound the engine
// too.
func Grant(c Config) privsep.Policy {
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
