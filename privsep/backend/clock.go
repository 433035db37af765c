package backend

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep"
)

// Clock is the system clock, CLOCK_REALTIME, disciplined through
// clock_adjtime. Changing it needs CAP_SYS_TIME. dyad runs it only inside
// a QEMU guest or on a machine it is meant to keep the time of: tests use
// SimClock.
type Clock struct{}

func adjtime(tx *unix.Timex) error {
	if _, err := unix.ClockAdjtime(unix.CLOCK_REALTIME, tx); err != nil {
		return fmt.Errorf("clock_adjtime: %w", err)
	}
	return nil
}

// Step moves the clock by offset at once.
func (Clock) Step(offset time.Duration) error {
	sec, nsec := int64(offset/time.Second), int64(offset%time.Second)
	if nsec < 0 {
		// The kernel wants the nanoseconds in [0, 1e9).
		sec--
		nsec += int64(time.Second)
	}
	tx := unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: unix.Timeval{Sec: sec, Usec: nsec}}
	return adjtime(&tx)
}

// Slew corrects the clock by offset gradually (at the kernel's 500 µs a
// second), replacing what is left of the last slew.
func (Clock) Slew(offset time.Duration) error {
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT, Offset: offset.Microseconds()}
	return adjtime(&tx)
}

// SetFrequency sets the rate correction, ppm scaled by 2^16.
func (Clock) SetFrequency(freq int64) error {
	tx := unix.Timex{Modes: unix.ADJ_FREQUENCY, Freq: freq}
	return adjtime(&tx)
}

// SetStatus sets the synchronisation flag, the leap second to come and the
// error estimates, leaving the kernel's other status bits as they are.
func (Clock) SetStatus(st privsep.ClockStatus) error {
	var cur unix.Timex
	if err := adjtime(&cur); err != nil {
		return err
	}
	status := cur.Status &^ (unix.STA_UNSYNC | unix.STA_INS | unix.STA_DEL)
	if !st.Synced {
		status |= unix.STA_UNSYNC
	}
	switch st.Leap {
	case 1:
		status |= unix.STA_INS
	case 2:
		status |= unix.STA_DEL
	}
	tx := unix.Timex{Modes: unix.ADJ_STATUS | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR, Status: status, Maxerror: st.MaxError, Esterror: st.EstError}
	return adjtime(&tx)
}

// Read returns the clock's state.
func (Clock) Read() (privsep.ClockState, error) {
	var tx unix.Timex
	if err := adjtime(&tx); err != nil {
		return privsep.ClockState{}, err
	}
	frac := tx.Time.Usec * 1000
	if tx.Status&unix.STA_NANO != 0 {
		frac = tx.Time.Usec
	}
	st := privsep.ClockState{
		Time:      tx.Time.Sec*int64(time.Second) + frac,
		Frequency: tx.Freq,
		Synced:    tx.Status&unix.STA_UNSYNC == 0,
		MaxError:  tx.Maxerror,
		EstError:  tx.Esterror,
	}
	switch {
	case tx.Status&unix.STA_INS != 0:
		st.Leap = 1
	case tx.Status&unix.STA_DEL != 0:
		st.Leap = 2
	}
	ss := unix.Timex{Modes: unix.ADJ_OFFSET_SS_READ}
	if err := adjtime(&ss); err != nil {
		return privsep.ClockState{}, err
	}
	st.Slewing = ss.Offset * int64(time.Microsecond)
	return st, nil
}
