package ntp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The NTP packet codec (RFC 5905, section 7.3). It runs in the engine: every
// byte it reads came from the network.

// HeaderLen is the length of an NTP header without extension fields or a
// MAC; the engine reads nothing beyond it.
const HeaderLen = 48

// MaxPacket bounds what the engine accepts as one reply: a header with
// room for extension fields and a MAC it ignores.
const MaxPacket = 1024

// Leap is the leap indicator.
type Leap uint8

// The leap indicators.
const (
	LeapNone   Leap = 0
	LeapInsert Leap = 1 // the last minute of the day has 61 seconds
	LeapDelete Leap = 2 // the last minute of the day has 59 seconds
	LeapAlarm  Leap = 3 // the server's clock is not synchronised
)

func (l Leap) String() string {
	switch l {
	case LeapNone:
		return "none"
	case LeapInsert:
		return "insert"
	case LeapDelete:
		return "delete"
	}
	return "alarm"
}

// The modes this client speaks.
const (
	ModeClient = 3
	ModeServer = 4
)

// The stratum bounds: 0 is a Kiss-o'-Death (or unspecified), 16 an
// unsynchronised server.
const (
	StratumKoD   = 0
	StratumUnset = 16
)

// Time64 is an NTP timestamp: seconds since 1900 in the high 32 bits, the
// fraction in the low ones. The era is not carried; Time picks it.
type Time64 uint64

// ntpEpochOffset is the number of seconds from 1900 to 1970.
const ntpEpochOffset = 2208988800

// eraSeconds is the length of one NTP era, 2^32 seconds (about 136 years).
const eraSeconds = 1 << 32

// Time64Of encodes t; the era is lost.
func Time64Of(t time.Time) Time64 {
	ns := t.UnixNano()
	secs := ns/1e9 + ntpEpochOffset
	frac := ns % 1e9
	if frac < 0 {
		secs--
		frac += 1e9
	}
	return Time64(uint64(secs)<<32 | (uint64(frac)<<32+5e8)/1e9)
}

// minPivotUnix is the earliest pivot Time takes: 2026-01-01 UTC.
const minPivotUnix = 1767225600

// Time decodes t in the era that puts it nearest to pivot, so that a
// timestamp is read right across 2036 and wherever within 68 years the
// local clock stands; a pivot before 2026 counts as 2026, so that a
// machine that boots at 1970 reads the time right after 2038 too.
func (t Time64) Time(pivot time.Time) time.Time {
	// A clock before dyad was written is wrong: take the era nearest to
	// that date instead, which holds until 2094.
	if pivot.Unix() < minPivotUnix {
		pivot = time.Unix(minPivotUnix, 0)
	}
	secs := int64(t >> 32)
	frac := int64((uint64(t&0xffffffff)*1e9 + 1<<31) >> 32)
	pivotSecs := pivot.Unix() + ntpEpochOffset
	// The number of eras to add: (pivot - secs) / 2^32, rounded to the
	// nearest, with floor division.
	d := pivotSecs - secs + eraSeconds/2
	era := d / eraSeconds
	if d < 0 && d%eraSeconds != 0 {
		era--
	}
	secs += era * eraSeconds
	return time.Unix(secs-ntpEpochOffset, frac)
}

// Short is NTP's 32-bit unsigned duration: seconds in the high 16 bits, the
// fraction in the low ones.
type Short uint32

// Duration converts s.
func (s Short) Duration() time.Duration {
	return time.Duration((uint64(s)*1e9 + 1<<15) >> 16)
}

// ShortOf encodes d, clamped to what 16.16 bits hold.
func ShortOf(d time.Duration) Short {
	if d <= 0 {
		return 0
	}
	// The largest Short is just under 65536 s; clamped before the shift,
	// which would overflow for days.
	if d >= 65536*time.Second {
		return 0xffffffff
	}
	return Short(min((uint64(d)<<16+5e8)/1e9, 0xffffffff))
}

// Header is an NTP packet's fixed part.
type Header struct {
	Leap           Leap
	Version        uint8
	Mode           uint8
	Stratum        uint8
	Poll           int8
	Precision      int8
	RootDelay      Short
	RootDispersion Short
	ReferenceID    uint32
	ReferenceTime  Time64
	Origin         Time64
	Receive        Time64
	Transmit       Time64
}

// ErrShort is returned for a datagram shorter than a header.
var ErrShort = errors.New("shorter than an NTP header")

// ParseHeader reads the header of a datagram. It checks only what makes the
// bytes a header; whether the header is an acceptable reply is the
// engine's judgement (see checkReply).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("ntp: %d bytes: %w", len(b), ErrShort)
	}
	if len(b) > MaxPacket {
		return Header{}, fmt.Errorf("ntp: %d bytes: longer than %d", len(b), MaxPacket)
	}
	be := binary.BigEndian
	return Header{
		Leap:           Leap(b[0] >> 6),
		Version:        b[0] >> 3 & 7,
		Mode:           b[0] & 7,
		Stratum:        b[1],
		Poll:           int8(b[2]),
		Precision:      int8(b[3]),
		RootDelay:      Short(be.Uint32(b[4:])),
		RootDispersion: Short(be.Uint32(b[8:])),
		ReferenceID:    be.Uint32(b[12:]),
		ReferenceTime:  Time64(be.Uint64(b[16:])),
		Origin:         Time64(be.Uint64(b[24:])),
		Receive:        Time64(be.Uint64(b[32:])),
		Transmit:       Time64(be.Uint64(b[40:])),
	}, nil
}

// Append appends h in wire form to b.
func (h Header) Append(b []byte) []byte {
	be := binary.BigEndian
	b = append(b, byte(h.Leap&3)<<6|(h.Version&7)<<3|h.Mode&7, h.Stratum, byte(h.Poll), byte(h.Precision))
	b = be.AppendUint32(b, uint32(h.RootDelay))
	b = be.AppendUint32(b, uint32(h.RootDispersion))
	b = be.AppendUint32(b, h.ReferenceID)
	b = be.AppendUint64(b, uint64(h.ReferenceTime))
	b = be.AppendUint64(b, uint64(h.Origin))
	b = be.AppendUint64(b, uint64(h.Receive))
	return be.AppendUint64(b, uint64(h.Transmit))
}

// KissCode returns the ASCII code of a Kiss-o'-Death (stratum 0), such as
// "RATE", "DENY" or "RSTR", and whether the header is one.
func (h Header) KissCode() (string, bool) {
	if h.Stratum != StratumKoD {
		return "", false
	}
	var code [4]byte
	binary.BigEndian.PutUint32(code[:], h.ReferenceID)
	for _, c := range code {
		if c < 'A' || c > 'Z' {
			return "", false
		}
	}
	return string(code[:]), true
}
