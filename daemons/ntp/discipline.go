package ntp

import (
	"fmt"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

// The clock policy, as the engine applies it: step a large offset, slew a
// small one and follow the drift with the frequency, refuse an offset
// beyond the panic threshold once the clock is set. The actuator checks
// the same bounds again: the engine decides, but is not trusted.

// clockState is what the engine knows of the clock it disciplines.
type clockState struct {
	set        bool      // the engine has corrected it once
	freq       int64     // the kernel's rate correction, ppm scaled by 2^16
	lastUpdate time.Time // the last slew, for the drift since
	lastStep   time.Time
	lastSlew   time.Duration // the offset of the last slew
	// steps are those since the clock was set, for the actuator's bound
	// on their sum over an hour.
	steps   privsep.RecentSteps
	last    Adjustment    // the latest decision
	maxFreq int64         // the bound on freq
	cfg     clockSettings // from the configuration
}

type clockSettings struct {
	step, panic, maxInitial time.Duration
}

func (c *clockState) init(cfg EngineConfig) {
	c.maxFreq = privsep.DefaultMaxFrequencyPPM * privsep.FrequencyScale
	c.cfg = clockSettings{step: cfg.StepThreshold, panic: cfg.PanicThreshold, maxInitial: cfg.MaxInitialStep}
}

// Adjustment is a decision about the clock.
type Adjustment struct {
	At     time.Time     `json:"at"`
	Kind   string        `json:"kind"` // step, slew, refused, failed
	Offset time.Duration `json:"offset_ns"`
	Reason string        `json:"reason,omitempty"`
}

// The kinds of Adjustment.
const (
	AdjustStep    = "step"
	AdjustSlew    = "slew"
	AdjustRefused = "refused"
	AdjustFailed  = "failed"
)

// fllGain damps the frequency correction: half the drift an update sees is
// taken up, so that noise in one measurement does not swing the rate.
const fllGain = 0.5

// slewRate is how fast the kernel slews a single-shot correction.
const slewRate = 500e-6

// minFLLInterval is the least time between two updates for their offsets
// to say something of the drift rather than of noise.
const minFLLInterval = 16 * time.Second

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// discipline applies the policy to the offset of a selection, and returns
// the step it asked for (zero without one).
func (e *Engine) discipline(now time.Time, sel Selection) (step time.Duration) {
	c := &e.clock
	theta := sel.Offset
	var ops []privsep.Message
	// What is left wrong once the operation is done: a slew takes time.
	residual := absDuration(theta)
	refuse := func(reason string) {
		c.last = Adjustment{At: now, Kind: AdjustRefused, Offset: theta, Reason: reason}
		e.log.Error("clock offset not applied", "offset", theta.String(), "reason", reason)
		if e.cfg.Mode == ModeOnce {
			e.finish("refused: " + reason)
		}
	}
	switch {
	case !c.set && c.cfg.maxInitial > 0 && absDuration(theta) > c.cfg.maxInitial:
		refuse(fmt.Sprintf("the first offset is beyond the %s configured", c.cfg.maxInitial))
		return 0
	case c.set && absDuration(theta) > c.cfg.panic:
		refuse(fmt.Sprintf("beyond the panic threshold of %s", c.cfg.panic))
		return 0
	case c.set && absDuration(theta) > c.cfg.step && c.steps.Sum(now)+absDuration(theta) > c.cfg.panic:
		refuse(fmt.Sprintf("with the steps of the last %s, beyond the panic threshold of %s", privsep.StepWindow, c.cfg.panic))
		return 0
	case absDuration(theta) > c.cfg.step && !c.lastStep.IsZero() && now.Sub(c.lastStep) < privsep.DefaultMinStepInterval:
		// The actuator allows one step a minute: wait for the next round.
		e.log.Info("a step is due, but the last was less than a minute ago: waiting", "offset", theta.String())
		return 0
	case absDuration(theta) > c.cfg.step:
		ops = append(ops, &privsep.ClockStep{Offset: int64(theta)})
		residual = 0
		c.last = Adjustment{At: now, Kind: AdjustStep, Offset: theta}
		e.log.Info("stepping the clock", "offset", theta.String(), "sources", len(sel.Survivors))
		c.lastUpdate = time.Time{}
		e.afterStep(theta)
		// In the clock's new time, the step happens now+theta.
		c.lastStep = now.Add(theta)
		if c.set {
			c.steps.Add(c.lastStep, absDuration(theta))
		}
		step = theta
	default:
		ops = append(ops, &privsep.ClockSlew{Offset: int64(theta)})
		if f, ok := c.drift(now, theta); ok {
			ops = append(ops, &privsep.ClockFrequency{Frequency: f})
		}
		c.last = Adjustment{At: now, Kind: AdjustSlew, Offset: theta}
		e.log.Debug("slewing the clock", "offset", theta.String(), "frequency_ppm", float64(c.freq)/privsep.FrequencyScale)
		c.lastUpdate, c.lastSlew = now, theta
		e.adaptPoll(theta, sel.Jitter)
	}
	ops = append(ops, &privsep.ClockStatus{
		Synced:   true,
		Leap:     int(e.leapToArm(now, e.survivorsLeap(sel))),
		MaxError: min((e.survivorsDistance(sel) + residual).Microseconds(), privsep.MaxClockError),
		EstError: min(sel.Jitter.Microseconds(), privsep.MaxClockError),
	})
	e.actions = append(e.actions, Apply{Ops: ops})
	return step
}

// drift returns the new frequency the offset since the last slew calls
// for, if it says anything.
func (c *clockState) drift(now time.Time, theta time.Duration) (int64, bool) {
	if c.lastUpdate.IsZero() {
		return 0, false
	}
	dt := now.Sub(c.lastUpdate)
	if dt < minFLLInterval {
		return 0, false
	}
	// The last slew may not be done: the kernel slews 500 µs a second.
	// Only what the offset holds beyond that is drift.
	pending := max(absDuration(c.lastSlew)-time.Duration(slewRate*float64(dt)), 0)
	if c.lastSlew < 0 {
		pending = -pending
	}
	adj := int64(fllGain * float64(theta-pending) / float64(dt) * 1e6 * privsep.FrequencyScale)
	f := min(max(c.freq+adj, -c.maxFreq), c.maxFreq)
	if f == c.freq {
		return 0, false
	}
	c.freq = f
	return f, true
}

// afterStep forgets every sample, which the step made wrong, moves every
// time the engine keeps into the clock's new time, and polls again soon
// to confirm it.
func (e *Engine) afterStep(theta time.Duration) {
	for _, s := range e.sources {
		s.filter.clear()
		s.hasEst = false
	}
	e.shiftTimes(theta)
	e.sysPoll, e.pollScore = e.cfg.MinPoll, 0
}

// shiftTimes moves the times the engine keeps by d, the size of a step:
// they were read on the clock the step moved. A query in flight was timed
// on the old clock, and is forgotten.
func (e *Engine) shiftTimes(d time.Duration) {
	shift := func(t *time.Time) {
		if !t.IsZero() {
			*t = t.Add(d)
		}
	}
	shift(&e.nextRound)
	shift(&e.roundAt)
	shift(&e.started)
	shift(&e.clock.lastStep)
	e.clock.steps.Shift(d)
	e.lastUsed = time.Time{}
	for _, s := range e.sources {
		shift(&s.skipUntil)
		shift(&s.nextSend)
		s.query = nil
	}
	for _, n := range e.names {
		shift(&n.next)
	}
}

// adaptPoll lengthens the poll interval while the offsets stay within the
// noise, and shortens it when they do not.
func (e *Engine) adaptPoll(theta, jitter time.Duration) {
	if absDuration(theta) <= max(4*jitter, 2*time.Millisecond) {
		if e.pollScore++; e.pollScore >= 4 && e.sysPoll < e.cfg.MaxPoll {
			e.sysPoll++
			e.pollScore = 0
		}
		return
	}
	e.pollScore = 0
	if e.sysPoll > e.cfg.MinPoll {
		e.sysPoll--
	}
}

// leapToArm passes a leap second on to the kernel only on the last day of
// a month, when it is due: the kernel inserts or deletes the second at
// the next midnight UTC, and servers announce it weeks before.
func (e *Engine) leapToArm(now time.Time, l Leap) Leap {
	// Leap seconds have only ever come at the end of June and December,
	// the ITU's first choice: an announcement for another month is more
	// likely a fault than a leap second.
	u := now.UTC()
	if u.AddDate(0, 0, 1).Day() != 1 || u.Month() != time.June && u.Month() != time.December {
		return LeapNone
	}
	return l
}

// Applied gives the engine the actuator's reply to one of the operations it
// asked for: the clock's state after it, or why it failed.
func (e *Engine) Applied(now time.Time, op privsep.Message, st *privsep.ClockState, err error) {
	c := &e.clock
	if err != nil {
		switch op := op.(type) {
		case *privsep.ClockStep, *privsep.ClockSlew:
			if step, ok := op.(*privsep.ClockStep); ok {
				// The clock did not move: back to its time.
				e.shiftTimes(-time.Duration(step.Offset))
				c.lastStep = time.Time{}
				c.steps.DropLast(absDuration(time.Duration(step.Offset)))
			}
			c.last = Adjustment{At: now, Kind: AdjustFailed, Offset: c.last.Offset, Reason: err.Error()}
			e.log.Error("the actuator did not correct the clock", "op", string(op.Kind()), "err", err.Error())
			if e.cfg.Mode == ModeOnce {
				e.finish("failed: " + err.Error())
			}
		default:
			e.log.Warn("clock operation failed", "op", string(op.Kind()), "err", err.Error())
		}
		return
	}
	switch op.(type) {
	case *privsep.ClockRead:
		if st != nil {
			c.freq = min(max(st.Frequency, -c.maxFreq), c.maxFreq)
			// Set by an engine before this one: its panic threshold
			// holds, and the actuator's does anyway.
			c.set = c.set || st.Set
		}
	case *privsep.ClockStep, *privsep.ClockSlew:
		c.set = true
		if e.cfg.Mode == ModeOnce {
			e.finish(c.last.Kind)
		}
	}
}

// LastAdjustment is the latest decision about the clock.
func (e *Engine) LastAdjustment() Adjustment { return e.clock.last }
