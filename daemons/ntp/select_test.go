package ntp

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name         string
		cands        []Candidate
		minSources   int
		ok           bool
		survivors    []int
		offset       time.Duration
		tol          time.Duration
		falsetickers []int
	}{
		{name: "none", ok: false},
		{name: "one", cands: []Candidate{{1, 2500 * ms, 10 * ms}}, ok: true, survivors: []int{1}, offset: 2500 * ms},
		{name: "one, two required", cands: []Candidate{{1, 0, ms}}, minSources: 2, ok: false},
		{name: "two agree", cands: []Candidate{{1, 10 * ms, 5 * ms}, {2, 12 * ms, 5 * ms}}, ok: true, survivors: []int{1, 2}, offset: 11 * ms, tol: ms},
		{name: "two disagree", cands: []Candidate{{1, 0, 5 * ms}, {2, time.Second, 5 * ms}}, ok: false},
		{name: "three, one 10 s ahead", cands: []Candidate{{1, 0, 5 * ms}, {2, ms, 5 * ms}, {3, 10 * time.Second, 5 * ms}}, ok: true, survivors: []int{1, 2}, falsetickers: []int{3}, offset: 500 * time.Microsecond, tol: ms},
		{name: "two disjoint pairs of equal weight", cands: []Candidate{{1, 0, 100 * ms}, {2, 0, ms}, {3, 99 * ms, ms}}, ok: false},
		{name: "the wide one agrees with both", cands: []Candidate{{1, 0, 100 * ms}, {2, 0, 2 * ms}, {3, ms, 2 * ms}}, ok: true, survivors: []int{1, 2, 3}, offset: 500 * time.Microsecond, tol: ms},
		{name: "touching intervals agree", cands: []Candidate{{1, 0, 5 * ms}, {2, 10 * ms, 5 * ms}}, ok: true, survivors: []int{1, 2}, offset: 5 * ms},
		{name: "zero distance gets the floor", cands: []Candidate{{1, 0, 0}, {2, 500 * time.Microsecond, 0}}, ok: true, survivors: []int{1, 2}, offset: 250 * time.Microsecond, tol: time.Microsecond},
		{name: "absurd values saturate", cands: []Candidate{{1, math.MaxInt64, math.MaxInt64}, {2, 0, ms}, {3, ms / 2, ms}}, ok: true, survivors: []int{1, 2, 3}, offset: 250 * time.Microsecond, tol: 10 * time.Microsecond},
		{name: "absurd values disagree", cands: []Candidate{{1, math.MaxInt64, math.MaxInt64}, {2, math.MinInt64, math.MaxInt64}, {3, 0, ms}}, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, ok := Select(tt.cands, max(tt.minSources, 1))
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v (%+v)", ok, tt.ok, sel)
			}
			if !ok {
				return
			}
			if !slices.Equal(sel.Survivors, tt.survivors) || !slices.Equal(sel.Falsetickers, tt.falsetickers) {
				t.Errorf("survivors %v falsetickers %v, want %v %v", sel.Survivors, sel.Falsetickers, tt.survivors, tt.falsetickers)
			}
			if !near(sel.Offset, tt.offset, tt.tol) {
				t.Errorf("offset %s, want %s ± %s", sel.Offset, tt.offset, tt.tol)
			}
			if err := CheckSelection(tt.cands, sel); err != nil {
				t.Error(err)
			}
		})
	}
}
