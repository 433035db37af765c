package ntp

import (
	"math"
	"slices"
	"time"
)

// The clock filter of one source (RFC 5905, section 10): of its last
// samples, the one with the least delay is the best estimate, since delay
// is what spoils an offset.

// filterLen is how many samples a source keeps.
const filterLen = 8

// phi is the frequency tolerance every clock is assumed within: an
// estimate's dispersion grows by 15 µs a second of its age.
const phi = 15e-6

// sample is one measurement of a source: the offset of its clock from the
// local one, the round-trip delay, the dispersion (the error the two
// clocks' precision and the measurement itself bring), and when it was
// taken, by the local clock.
type sample struct {
	offset, delay, dispersion time.Duration
	at                        time.Time
}

// filter holds a source's latest samples, newest first.
type filter struct {
	samples []sample
}

func (f *filter) add(s sample) {
	f.samples = slices.Insert(f.samples, 0, s)
	if len(f.samples) > filterLen {
		f.samples = f.samples[:filterLen]
	}
}

func (f *filter) clear() { f.samples = f.samples[:0] }

// estimate is what a filter makes of its samples.
type estimate struct {
	offset, delay, dispersion, jitter time.Duration
	at                                time.Time // when the best sample was taken
}

// aged is a dispersion grown by phi over the time since at.
func aged(d time.Duration, at, now time.Time) time.Duration {
	if age := now.Sub(at); age > 0 {
		d += time.Duration(phi * float64(age))
	}
	return d
}

// estimate returns the best sample's offset and delay, the filter's
// dispersion (each sample's, aged, weighted by halves in order of delay)
// and the jitter (the RMS of the other samples' offsets from the best).
func (f *filter) estimate(now time.Time) (estimate, bool) {
	if len(f.samples) == 0 {
		return estimate{}, false
	}
	byDelay := slices.Clone(f.samples)
	slices.SortStableFunc(byDelay, func(a, b sample) int {
		switch {
		case a.delay < b.delay:
			return -1
		case a.delay > b.delay:
			return 1
		}
		return 0
	})
	best := byDelay[0]
	e := estimate{offset: best.offset, delay: best.delay, at: best.at}
	var disp float64
	weight := 0.5
	for _, s := range byDelay {
		disp += weight * float64(aged(s.dispersion, s.at, now))
		weight /= 2
	}
	e.dispersion = time.Duration(disp)
	if n := len(byDelay) - 1; n > 0 {
		var sum float64
		for _, s := range byDelay[1:] {
			d := float64(s.offset - best.offset)
			sum += d * d
		}
		e.jitter = time.Duration(math.Sqrt(sum / float64(n)))
	}
	return e, true
}
