package privsep

import (
	"math"
	"testing"
	"time"
)

var clkOps = []Kind{OpClockRead, OpClockSlew, OpClockFrequency, OpClockStep, OpClockStatus}

// clkGuard returns a clock guard whose clock is the returned pointer.
func clkGuard(c ClockPolicy) (*Guard, *time.Time) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := Policy{Daemon: "ntp", Ops: clkOps, Now: func() time.Time { return now }, Clock: c}.WithDefaultBounds()
	return NewGuard(p), &now
}

func TestClockPolicy(t *testing.T) {
	const s = int64(time.Second)
	tests := []struct {
		name   string
		policy ClockPolicy
		before []Message // applied first, each must pass
		m      Message
		want   string // "" when it must pass
	}{
		{name: "read", m: &ClockRead{}},
		{name: "slew within bounds", m: &ClockSlew{Offset: -s / 4}},
		{name: "slew too large", m: &ClockSlew{Offset: s}, want: "more than the 500ms allowed"},
		{name: "slew of MinInt64", m: &ClockSlew{Offset: math.MinInt64}, want: "more than"},
		{name: "frequency at the bound", m: &ClockFrequency{Frequency: -500 << 16}},
		{name: "frequency of a million ppm", m: &ClockFrequency{Frequency: 1_000_000 << 16}, want: "outside ±500 ppm"},
		{name: "first step of years", m: &ClockStep{Offset: 20 * 365 * 86400 * s}},
		{name: "first step capped", policy: ClockPolicy{MaxInitialStep: 10 * time.Second}, m: &ClockStep{Offset: 11 * s}, want: "first step of 11s"},
		{name: "first slew capped", policy: ClockPolicy{MaxInitialStep: 100 * time.Millisecond}, m: &ClockSlew{Offset: s / 5}, want: "first correction"},
		{name: "step of zero", m: &ClockStep{}, want: "step of zero"},
		{name: "step of 10^9 s after the first", before: []Message{&ClockStep{Offset: 3 * s}}, m: &ClockStep{Offset: 1e9 * s}, want: "beyond the panic threshold"},
		{name: "step beyond panic after a slew", before: []Message{&ClockSlew{Offset: s / 10}}, m: &ClockStep{Offset: -1001 * s}, want: "panic threshold"},
		{name: "step within panic after a slew", before: []Message{&ClockSlew{Offset: s / 10}}, m: &ClockStep{Offset: 999 * s}},
		{name: "steps adding up beyond the panic threshold in an hour", before: []Message{&ClockStep{Offset: 3 * s}, &ClockStep{Offset: 600 * s}}, m: &ClockStep{Offset: -500 * s}, want: "with the steps of the last 1h0m0s"},
		{name: "a second step at once", before: []Message{&ClockStep{Offset: 3 * s}}, m: &ClockStep{Offset: s}, want: "at most one every 1m0s"},
		{name: "capped first step counts once", policy: ClockPolicy{MaxInitialStep: 10 * time.Second}, before: []Message{&ClockStep{Offset: 5 * s}}, m: &ClockStep{Offset: 50 * s}, want: "at most one every"},
		{name: "status synced", m: &ClockStatus{Synced: true, Leap: 1, MaxError: 16000, EstError: 100}},
		{name: "status leap 3", m: &ClockStatus{Leap: 3}, want: "leap 3"},
		{name: "status negative error", m: &ClockStatus{MaxError: -1}, want: "error estimates"},
		{name: "status error beyond the kernel's", m: &ClockStatus{EstError: MaxClockError + 1}, want: "error estimates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, now := clkGuard(tt.policy)
			for _, m := range tt.before {
				polDo(t, g, m)
				if _, ok := m.(*ClockStep); ok && tt.name != "a second step at once" && tt.name != "capped first step counts once" {
					*now = now.Add(2 * time.Minute)
				}
			}
			if tt.want == "" {
				if err := g.Check(tt.m); err != nil {
					t.Fatalf("%+v refused: %v", tt.m, err)
				}
				return
			}
			polRefused(t, g, tt.m, tt.want)
		})
	}
}

// TestClockPolicyStepSpacing plays a compromised engine that asks for a
// step every millisecond: one passes, then none until a minute has gone.
func TestClockPolicyStepSpacing(t *testing.T) {
	g, now := clkGuard(ClockPolicy{})
	polDo(t, g, &ClockStep{Offset: int64(time.Second)})
	passed := 0
	for i := 0; i < 60_000; i++ {
		*now = now.Add(time.Millisecond)
		if g.Check(&ClockStep{Offset: int64(time.Millisecond)}) == nil {
			passed++
			g.Record(&ClockStep{Offset: int64(time.Millisecond)})
		}
	}
	if passed != 1 {
		t.Errorf("%d steps passed in a minute of one a millisecond, want 1 (the last, a minute after the first)", passed)
	}
}

// TestClockNotInOtherGrants: the DHCP grant holds no clock operation.
func TestClockNotInOtherGrants(t *testing.T) {
	g := NewGuard(polPolicy())
	for _, m := range []Message{&ClockRead{}, &ClockStep{Offset: 1}, &ClockSlew{Offset: 1}, &ClockFrequency{}, &ClockStatus{}} {
		polRefused(t, g, m, "not in the dhcp grant")
	}
}
