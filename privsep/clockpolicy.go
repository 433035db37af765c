package privsep

import (
	"math"
	"slices"
	"time"
)

// The clock's part of the policy: what an NTP engine may do to the system
// clock. The bounds hold whatever the engine believes of its servers, so
// that a compromised engine can at worst keep the clock within them.

// ClockPolicy bounds the clock operations.
type ClockPolicy struct {
	// MaxSlew bounds one slew. The kernel slews 500 µs a second at most:
	// 0.5 s takes over 16 minutes.
	MaxSlew time.Duration
	// MaxFrequency bounds the rate correction, ppm scaled by 2^16.
	MaxFrequency int64
	// PanicThreshold bounds a step once the clock has been set: a larger
	// offset is a fault (of the servers, or of the engine), not time.
	PanicThreshold time.Duration
	// MaxInitialStep bounds the first correction; zero allows any, which
	// a machine whose clock starts years wrong needs.
	MaxInitialStep time.Duration
	// MinStepInterval is the least time between two steps.
	MinStepInterval time.Duration
}

// The default clock bounds.
const (
	DefaultMaxSlew         = 500 * time.Millisecond
	DefaultMaxFrequencyPPM = 500
	DefaultPanicThreshold  = 1000 * time.Second
	DefaultMinStepInterval = time.Minute
	// MaxClockError is the kernel's own limit on the error estimates
	// (NTP_PHASE_LIMIT, 16 s), in microseconds.
	MaxClockError = 16_000_000
)

// FrequencyScale is the kernel's unit of frequency per ppm.
const FrequencyScale = 1 << 16

func (c ClockPolicy) withDefaults() ClockPolicy {
	if c.MaxSlew == 0 {
		c.MaxSlew = DefaultMaxSlew
	}
	if c.MaxFrequency == 0 {
		c.MaxFrequency = DefaultMaxFrequencyPPM * FrequencyScale
	}
	if c.PanicThreshold == 0 {
		c.PanicThreshold = DefaultPanicThreshold
	}
	if c.MinStepInterval == 0 {
		c.MinStepInterval = DefaultMinStepInterval
	}
	return c
}

// clockLedger is what the guard remembers of the clock: whether it has
// been set, and when it was last stepped. It belongs to the actuator, so a
// restarted engine is not at start-up again.
type clockLedger struct {
	set      bool
	lastStep time.Time
	steps    RecentSteps // since the clock was set
}

// StepWindow is the span over which steps after the first add up: within
// it, together, they may not exceed the panic threshold, so that an
// engine cannot walk the clock away a panic threshold a minute.
const StepWindow = time.Hour

// RecentSteps are the clock's steps of the last StepWindow, by size: the
// actuator's ledger, and the engine's copy of it, kept so that it never
// asks for a step the actuator must refuse.
type RecentSteps struct {
	steps []pastStep
}

type pastStep struct {
	at  time.Time
	abs time.Duration
}

// Sum is the size of the steps of the StepWindow before now, all together.
func (r *RecentSteps) Sum(now time.Time) time.Duration {
	var sum time.Duration
	for _, s := range r.steps {
		if now.Sub(s.at) < StepWindow {
			sum += s.abs
		}
	}
	return sum
}

// Add records a step of size abs at, forgetting those out of the window.
func (r *RecentSteps) Add(at time.Time, abs time.Duration) {
	r.steps = slices.DeleteFunc(r.steps, func(s pastStep) bool { return at.Sub(s.at) >= StepWindow })
	r.steps = append(r.steps, pastStep{at, abs})
}

// Shift moves the steps' times by d, as a clock that was itself stepped
// reads them.
func (r *RecentSteps) Shift(d time.Duration) {
	for i := range r.steps {
		r.steps[i].at = r.steps[i].at.Add(d)
	}
}

// DropLast forgets the last step when it was of size abs: one that was
// recorded before the actuator refused it.
func (r *RecentSteps) DropLast(abs time.Duration) {
	if n := len(r.steps); n > 0 && r.steps[n-1].abs == abs {
		r.steps = r.steps[:n-1]
	}
}

// ClockSet reports whether the clock has been corrected through this guard.
func (g *Guard) ClockSet() bool { return g.clock.set }

func (g *Guard) checkClock(m Message) error {
	c := g.policy.Clock
	switch m := m.(type) {
	case *ClockRead:
		return nil
	case *ClockSlew:
		if abs(m.Offset) > int64(c.MaxSlew) {
			return refuse("slew of %s: more than the %s allowed", time.Duration(m.Offset), c.MaxSlew)
		}
		if !g.clock.set && c.MaxInitialStep > 0 && abs(m.Offset) > int64(c.MaxInitialStep) {
			return refuse("first correction of %s: more than the %s allowed", time.Duration(m.Offset), c.MaxInitialStep)
		}
	case *ClockFrequency:
		if abs(m.Frequency) > c.MaxFrequency {
			return refuse("frequency of %.3f ppm: outside ±%.0f ppm", float64(m.Frequency)/FrequencyScale, float64(c.MaxFrequency)/FrequencyScale)
		}
	case *ClockStep:
		if m.Offset == 0 {
			return refuse("step of zero")
		}
		if !g.clock.set {
			if c.MaxInitialStep > 0 && abs(m.Offset) > int64(c.MaxInitialStep) {
				return refuse("first step of %s: more than the %s allowed", time.Duration(m.Offset), c.MaxInitialStep)
			}
			return nil
		}
		if abs(m.Offset) > int64(c.PanicThreshold) {
			return refuse("step of %s: beyond the panic threshold of %s", time.Duration(m.Offset), c.PanicThreshold)
		}
		now := g.policy.Now()
		if since := now.Sub(g.clock.lastStep); !g.clock.lastStep.IsZero() && since < c.MinStepInterval {
			return refuse("step %s after the last one: at most one every %s", since.Round(time.Millisecond), c.MinStepInterval)
		}
		if total := abs(m.Offset) + int64(g.clock.steps.Sum(now)); total > int64(c.PanicThreshold) {
			return refuse("step of %s: with the steps of the last %s, more than the panic threshold of %s", time.Duration(m.Offset), StepWindow, c.PanicThreshold)
		}
	case *ClockStatus:
		if m.Leap < 0 || m.Leap > 2 {
			return refuse("leap %d: want 0 (none), 1 (insert) or 2 (delete)", m.Leap)
		}
		if m.MaxError < 0 || m.MaxError > MaxClockError || m.EstError < 0 || m.EstError > MaxClockError {
			return refuse("error estimates %d and %d µs: outside 0..%d", m.MaxError, m.EstError, MaxClockError)
		}
	}
	return nil
}

func (g *Guard) recordClock(m Message) {
	step, ok := m.(*ClockStep)
	if ok {
		now := g.policy.Now()
		g.clock.lastStep = now
		if g.clock.set {
			// Only steps after the first count against the window.
			g.clock.steps.Add(now, time.Duration(abs(step.Offset)))
		}
	}
	g.clock.set = true
}

// abs is |v|, with the one value that has no positive counterpart mapped
// to the largest, so that it fails every bound.
func abs(v int64) int64 {
	switch {
	case v == math.MinInt64:
		return math.MaxInt64
	case v < 0:
		return -v
	}
	return v
}
