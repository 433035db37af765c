package backend

import (
	"sync"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

// SimClock is a virtual clock for tests: it starts at the real clock's
// time (plus an error the test chooses), runs at the real clock's rate
// corrected by the frequency set, slews as the kernel does (500 µs a
// second), steps at once, and never touches the host. Every operation it
// performs is passed to Record, for a test to read back.
type SimClock struct {
	mu     sync.Mutex
	real   func() time.Time
	last   time.Time     // the real time of the last update
	offset time.Duration // virtual minus real, at last
	freq   int64         // ppm scaled by 2^16
	slew   time.Duration // left to slew
	status privsep.ClockStatus
	// Record, when set, is told of each operation after it is applied.
	Record func(op privsep.Message)
}

// slewRate is the kernel's rate for a single-shot slew, 500 ppm.
const slewRate = 500e-6

// NewSimClock returns a virtual clock that stands off from real (the host's
// clock, read only) by offset.
func NewSimClock(real func() time.Time, offset time.Duration) *SimClock {
	return &SimClock{real: real, last: real(), offset: offset, status: privsep.ClockStatus{MaxError: privsep.MaxClockError, EstError: privsep.MaxClockError}}
}

// advance brings the virtual clock to the real clock's present; c.mu is held.
func (c *SimClock) advance() time.Time {
	now := c.real()
	dt := now.Sub(c.last)
	if dt <= 0 {
		return now
	}
	c.last = now
	c.offset += time.Duration(float64(dt) * float64(c.freq) / (1e6 * privsep.FrequencyScale))
	if c.slew != 0 {
		step := time.Duration(float64(dt) * slewRate)
		switch {
		case c.slew > 0:
			step = min(step, c.slew)
		default:
			step = -min(step, -c.slew)
		}
		c.offset += step
		c.slew -= step
	}
	return now
}

// Now reads the virtual clock.
func (c *SimClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.advance().Add(c.offset)
}

// Offset is how far the virtual clock stands from the real one.
func (c *SimClock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	return c.offset
}

func (c *SimClock) apply(op privsep.Message, f func()) error {
	c.mu.Lock()
	c.advance()
	f()
	c.mu.Unlock()
	if c.Record != nil {
		c.Record(op)
	}
	return nil
}

// Step moves the virtual clock by offset.
func (c *SimClock) Step(offset time.Duration) error {
	return c.apply(&privsep.ClockStep{Offset: int64(offset)}, func() { c.offset += offset })
}

// Slew starts a slew of offset, replacing what is left of the last.
func (c *SimClock) Slew(offset time.Duration) error {
	return c.apply(&privsep.ClockSlew{Offset: int64(offset)}, func() { c.slew = offset })
}

// SetFrequency sets the rate correction, ppm scaled by 2^16.
func (c *SimClock) SetFrequency(freq int64) error {
	return c.apply(&privsep.ClockFrequency{Frequency: freq}, func() { c.freq = freq })
}

// SetStatus sets the synchronisation status.
func (c *SimClock) SetStatus(st privsep.ClockStatus) error {
	return c.apply(&st, func() { c.status = st })
}

// Read returns the virtual clock's state.
func (c *SimClock) Read() (privsep.ClockState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.advance().Add(c.offset)
	return privsep.ClockState{
		Time:      now.UnixNano(),
		Offset:    int64(c.offset),
		Frequency: c.freq,
		Slewing:   int64(c.slew),
		Synced:    c.status.Synced,
		Leap:      c.status.Leap,
		MaxError:  c.status.MaxError,
		EstError:  c.status.EstError,
	}, nil
}
