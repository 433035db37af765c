package ntp

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Source selection and combining (RFC 5905, sections 11.2.1 and 11.2.3,
// after Marzullo): each source says the true time lies within its offset
// plus or minus its root distance. The largest set of sources whose
// intervals share a common part is a majority, or nothing is chosen; the
// others are falsetickers. The survivors' offsets are averaged, weighted by
// the inverse square of their distance, and the result is kept within the
// common part, where the majority says the time is.

// Candidate is one source's say in the selection.
type Candidate struct {
	ID       int
	Offset   time.Duration
	Distance time.Duration // root distance, the interval's half-width
}

// Selection is the outcome of one selection.
type Selection struct {
	// Low and High bound the part every survivor's interval holds.
	Low, High time.Duration
	// Survivors and Falsetickers are candidates' IDs.
	Survivors, Falsetickers []int
	// Offset is the combined offset, within [Low, High].
	Offset time.Duration
	// Jitter is the survivors' RMS offset about the combined one.
	Jitter time.Duration
}

// minDistance is the least half-width an interval is given, so that two
// sources a few microseconds apart, each with a near-zero root distance
// (a server on the same link), still agree.
const minDistance = time.Millisecond

// Select chooses among candidates. It fails when no part of the line is
// held by a majority of them (more than half, and at least minSources),
// or when two disjoint parts are held by equally many: then the sources
// cannot tell the time, and the clock is left alone.
func Select(cands []Candidate, minSources int) (Selection, bool) {
	n := len(cands)
	if n == 0 || n < minSources {
		return Selection{}, false
	}
	type edge struct {
		at    time.Duration
		start bool
	}
	edges := make([]edge, 0, 2*n)
	for _, c := range cands {
		d := max(c.Distance, minDistance)
		lo, hi := satSub(c.Offset, d), satAdd(c.Offset, d)
		edges = append(edges, edge{lo, true}, edge{hi, false})
	}
	// Intervals are closed: at a shared point, starts come first, so
	// that two intervals that touch agree on the point.
	slices.SortFunc(edges, func(a, b edge) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		case a.start && !b.start:
			return -1
		case !a.start && b.start:
			return 1
		}
		return 0
	})
	count, best, ties := 0, 0, 0
	var low, high time.Duration
	for i, e := range edges {
		if !e.start {
			count--
			continue
		}
		count++
		// The part held by count intervals runs to the next edge, which
		// is an end when count is a peak.
		switch {
		case count > best:
			best, ties = count, 0
			low, high = e.at, edges[i+1].at
		case count == best && !edges[i+1].start:
			ties++
		}
	}
	if ties > 0 || 2*best <= n || best < minSources {
		return Selection{}, false
	}
	sel := Selection{Low: low, High: high}
	var sum, weights float64
	for _, c := range cands {
		d := max(c.Distance, minDistance)
		if satSub(c.Offset, d) <= low && satAdd(c.Offset, d) >= high {
			sel.Survivors = append(sel.Survivors, c.ID)
			// Inverse variance: a wide interval says little of where
			// in it the time is.
			w := 1 / (float64(d) * float64(d))
			sum += w * float64(c.Offset)
			weights += w
		} else {
			sel.Falsetickers = append(sel.Falsetickers, c.ID)
		}
	}
	sel.Offset = min(max(time.Duration(sum/weights), low), high)
	var sq float64
	for _, c := range cands {
		if slices.Contains(sel.Survivors, c.ID) {
			d := float64(c.Offset - sel.Offset)
			sq += d * d
		}
	}
	sel.Jitter = time.Duration(math.Sqrt(sq / float64(len(sel.Survivors))))
	return sel, true
}

// satAdd and satSub add and subtract durations, saturating rather than
// wrapping: a source's claims are untrusted, and may be absurd.
func satAdd(a, b time.Duration) time.Duration {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

func satSub(a, b time.Duration) time.Duration {
	if b == math.MinInt64 {
		return satAdd(satAdd(a, math.MaxInt64), 1)
	}
	return satAdd(a, -b)
}

// CheckSelection verifies what Select promises of a selection it made from
// cands: a majority of them survive, every survivor's interval holds
// [Low, High], the rest are falsetickers whose intervals do not, and the
// offset lies within [Low, High]. Tests and the fuzz target call it.
func CheckSelection(cands []Candidate, sel Selection) error {
	if len(sel.Survivors)+len(sel.Falsetickers) != len(cands) {
		return fmt.Errorf("%d survivors and %d falsetickers of %d candidates", len(sel.Survivors), len(sel.Falsetickers), len(cands))
	}
	if 2*len(sel.Survivors) <= len(cands) {
		return fmt.Errorf("%d survivors of %d: not a majority", len(sel.Survivors), len(cands))
	}
	if sel.Low > sel.High || sel.Offset < sel.Low || sel.Offset > sel.High {
		return fmt.Errorf("offset %d outside [%d, %d]", sel.Offset, sel.Low, sel.High)
	}
	for _, c := range cands {
		d := max(c.Distance, minDistance)
		holds := satSub(c.Offset, d) <= sel.Low && satAdd(c.Offset, d) >= sel.High
		if holds != slices.Contains(sel.Survivors, c.ID) {
			return fmt.Errorf("candidate %d (%d ± %d): holds [%d, %d] %v, survivor %v", c.ID, c.Offset, c.Distance, sel.Low, sel.High, holds, !holds)
		}
	}
	return nil
}
