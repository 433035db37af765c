package ntp

import (
	"fmt"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

// Status is what the status socket says: each source as the engine sees
// it, the last selection and the last decision about the clock.
type Status struct {
	Mode      string         `json:"mode"`
	Synced    bool           `json:"synced"`
	Offset    time.Duration  `json:"offset_ns"`
	Jitter    time.Duration  `json:"jitter_ns"`
	Poll      time.Duration  `json:"poll_ns"`
	Frequency float64        `json:"frequency_ppm"`
	Last      *Adjustment    `json:"last_adjustment,omitempty"`
	Sources   []SourceStatus `json:"sources"`
}

// SourceStatus is one source in the status.
type SourceStatus struct {
	Name     string        `json:"name"`
	Address  string        `json:"address"`
	Origin   Origin        `json:"origin"`
	Verdict  Verdict       `json:"verdict"`
	Stratum  uint8         `json:"stratum"`
	Reach    string        `json:"reach"` // octal, as ntpq prints it
	Samples  int           `json:"samples"`
	Offset   time.Duration `json:"offset_ns"`
	Delay    time.Duration `json:"delay_ns"`
	Jitter   time.Duration `json:"jitter_ns"`
	Distance time.Duration `json:"root_distance_ns"`
	Poll     time.Duration `json:"poll_ns"`
	Error    string        `json:"last_error,omitempty"`
}

// Status returns the engine's state at now.
func (e *Engine) Status(now time.Time) Status {
	st := Status{
		Mode:      [...]string{"service", "once", "query"}[e.cfg.Mode],
		Synced:    e.clock.set,
		Poll:      pollInterval(e.sysPoll),
		Frequency: float64(e.clock.freq) / privsep.FrequencyScale,
		Sources:   []SourceStatus{},
	}
	if e.lastSel != nil {
		st.Offset, st.Jitter = e.lastSel.Offset, e.lastSel.Jitter
	}
	if e.clock.last.Kind != "" {
		last := e.clock.last
		st.Last = &last
	}
	for _, s := range e.sources {
		ss := SourceStatus{
			Name: s.name, Address: s.addr.String(), Origin: s.origin, Verdict: s.verdict, Stratum: s.stratum,
			Reach: fmt.Sprintf("%o", s.reach), Samples: len(s.filter.samples), Distance: s.distance,
			Poll: pollInterval(s.pollExp(e.sysPoll)), Error: s.lastErr,
		}
		if est, ok := s.filter.estimate(now); ok {
			ss.Offset, ss.Delay, ss.Jitter = est.offset, est.delay, est.jitter
		}
		st.Sources = append(st.Sources, ss)
	}
	return st
}
