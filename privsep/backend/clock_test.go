package backend

import (
	"testing"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

func TestSimClock(t *testing.T) {
	real := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var ops []privsep.Kind
	c := NewSimClock(func() time.Time { return real }, 2500*time.Millisecond)
	c.Record = func(op privsep.Message) { ops = append(ops, op.Kind()) }
	if got := c.Now().Sub(real); got != 2500*time.Millisecond {
		t.Fatalf("starts %s off, want 2.5s", got)
	}
	c.Step(-2500 * time.Millisecond)
	if got := c.Offset(); got != 0 {
		t.Fatalf("after the step, %s off", got)
	}
	// A slew of 10 ms runs at 500 µs a second: half done after 10 s,
	// done after 20 s, and no further after 30.
	c.Slew(10 * time.Millisecond)
	for _, tc := range []struct {
		after time.Duration
		want  time.Duration
	}{{10 * time.Second, 5 * time.Millisecond}, {10 * time.Second, 10 * time.Millisecond}, {10 * time.Second, 10 * time.Millisecond}} {
		real = real.Add(tc.after)
		if got := c.Offset(); got != tc.want {
			t.Errorf("slewed %s, want %s", got, tc.want)
		}
	}
	// +100 ppm: 100 µs a second.
	c.SetFrequency(100 * privsep.FrequencyScale)
	real = real.Add(100 * time.Second)
	if got := c.Offset() - 10*time.Millisecond; got != 10*time.Millisecond {
		t.Errorf("100 s at +100 ppm gained %s, want 10ms", got)
	}
	c.SetStatus(privsep.ClockStatus{Synced: true, Leap: 1, MaxError: 100, EstError: 10})
	st, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	if want := real.Add(20 * time.Millisecond).UnixNano(); st.Time != want || st.Offset != int64(20*time.Millisecond) || !st.Synced || st.Leap != 1 || st.Frequency != 100<<16 || st.MaxError != 100 {
		t.Errorf("state %+v, want time %d, synced, leap 1, +100 ppm, max error 100", st, want)
	}
	if want := []privsep.Kind{privsep.OpClockStep, privsep.OpClockSlew, privsep.OpClockFrequency, privsep.OpClockStatus}; len(ops) != len(want) {
		t.Errorf("recorded %v, want %v", ops, want)
	}
}

// TestClockRead reads the host's clock state, which needs no privilege and
// changes nothing: the real clock is never set by a test.
func TestClockRead(t *testing.T) {
	st, err := Clock{}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(time.Unix(0, st.Time)); d < 0 || d > time.Minute {
		t.Errorf("the clock's state says %s, %s from time.Now", time.Unix(0, st.Time), d)
	}
	if st.Frequency > 500<<16 || st.Frequency < -500<<16 {
		t.Errorf("frequency %d is beyond what the kernel allows", st.Frequency)
	}
}
