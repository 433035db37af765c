package ntp

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTime64(t *testing.T) {
	tests := []struct {
		name  string
		t     time.Time
		pivot time.Time
	}{
		{"now", time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC), time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)},
		{"across 2036 from before", time.Date(2036, 2, 7, 6, 28, 20, 0, time.UTC), time.Date(2036, 2, 7, 6, 28, 10, 0, time.UTC)},
		{"across 2036 from after", time.Date(2036, 2, 7, 6, 28, 10, 0, time.UTC), time.Date(2036, 2, 7, 6, 28, 20, 0, time.UTC)},
		{"a clock 16 years behind", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"1970", time.Unix(0, 0).UTC(), time.Unix(1000, 0)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC), time.Unix(0, 0)},
	}
	for _, tt := range tests {
		got := Time64Of(tt.t).Time(tt.pivot)
		if d := got.Sub(tt.t); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%s: %s came back as %s", tt.name, tt.t, got.UTC())
		}
	}
	if got := ShortOf(1500 * time.Millisecond); got != 0x18000 || got.Duration() != 1500*time.Millisecond {
		t.Errorf("ShortOf(1.5s) = %#x (%s)", got, got.Duration())
	}
	if ShortOf(-time.Second) != 0 || ShortOf(100000*time.Second) != 0xffffffff {
		t.Error("ShortOf does not clamp")
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Leap: LeapInsert, Version: 4, Mode: ModeServer, Stratum: 2, Poll: 6, Precision: -23, RootDelay: 0x123, RootDispersion: 0x456,
		ReferenceID: 0xc0000201, ReferenceTime: 1, Origin: 2, Receive: 3, Transmit: 4}
	b := h.Append(nil)
	if len(b) != HeaderLen {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := ParseHeader(b)
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if !bytes.Equal(got.Append(nil), b) {
		t.Error("re-encoding differs")
	}
	if code, ok := (Header{Stratum: 0, ReferenceID: 0x52415445}).KissCode(); !ok || code != "RATE" {
		t.Errorf("KissCode = %q %v", code, ok)
	}
	if _, ok := (Header{Stratum: 0, ReferenceID: 0x7f000001}).KissCode(); ok {
		t.Error("an address taken for a kiss code")
	}
}

// TestRejectedReplies feeds the engine replies that must be dropped, each
// for its reason, and a good one that must be taken.
func TestRejectedReplies(t *testing.T) {
	server := netip.MustParseAddrPort("192.0.2.1:123")
	tests := []struct {
		name   string
		from   netip.AddrPort
		mangle func(h *Header, b *[]byte)
		want   string // "" for a good reply
	}{
		{name: "good", want: ""},
		{name: "short packet", want: "shorter than an NTP header"},
		{name: "oversize packet", mangle: func(_ *Header, b *[]byte) { *b = append(*b, make([]byte, MaxPacket)...) }, want: "longer than"},
		{name: "wrong mode", mangle: func(h *Header, _ *[]byte) { h.Mode = ModeClient }, want: "mode 3, not a server's"},
		{name: "broadcast mode", mangle: func(h *Header, _ *[]byte) { h.Mode = 5 }, want: "mode 5"},
		{name: "origin mismatch", mangle: func(h *Header, _ *[]byte) { h.Origin++ }, want: "origin timestamp does not match"},
		{name: "stratum 0", mangle: func(h *Header, _ *[]byte) { h.Stratum = 0 }, want: "stratum 0"},
		{name: "stratum 16", mangle: func(h *Header, _ *[]byte) { h.Stratum = 16 }, want: "stratum 16: the server is not synchronised"},
		{name: "leap alarm", mangle: func(h *Header, _ *[]byte) { h.Leap = LeapAlarm }, want: "leap indicator alarm"},
		{name: "zero transmit", mangle: func(h *Header, _ *[]byte) { h.Transmit = 0 }, want: "zero transmit timestamp"},
		{name: "zero receive", mangle: func(h *Header, _ *[]byte) { h.Receive = 0 }, want: "zero receive timestamp"},
		{name: "huge root distance", mangle: func(h *Header, _ *[]byte) { h.RootDispersion = ShortOf(2 * time.Second) }, want: "root distance"},
		{name: "version 0", mangle: func(h *Header, _ *[]byte) { h.Version = 0 }, want: "version 0"},
		{name: "transmit before receive", mangle: func(h *Header, _ *[]byte) { h.Transmit = h.Receive - 1<<32 }, want: "before it received"},
		{name: "wrong address", from: netip.MustParseAddrPort("192.0.2.99:123"), want: "which was not asked"},
		{name: "wrong port", from: netip.MustParseAddrPort("192.0.2.1:124"), want: "which was not asked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			e := NewEngine(EngineConfig{Mode: ModeQuery, Sources: []SourceConfig{{Name: "192.0.2.1"}}}, slog.New(slog.NewTextHandler(io.Discard, nil)), rand.New(rand.NewPCG(1, 2)), now)
			e.HandleTimer(now)
			var q Header
			for _, a := range e.TakeActions() {
				if s, ok := a.(Send); ok {
					q, _ = ParseHeader(s.Packet)
				}
			}
			if q.Transmit == 0 {
				t.Fatal("no query sent")
			}
			h := Header{Version: 4, Mode: ModeServer, Stratum: 2, Precision: -20, Origin: q.Transmit,
				Receive: Time64Of(now.Add(time.Millisecond)), Transmit: Time64Of(now.Add(time.Millisecond + 10*time.Microsecond))}
			var b []byte
			if tt.mangle != nil {
				tt.mangle(&h, &b)
			}
			b = append(h.Append(nil), b...)
			if tt.name == "short packet" {
				b = b[:47]
			}
			from := server
			if tt.from.IsValid() {
				from = tt.from
			}
			err := e.HandlePacket(now.Add(2*time.Millisecond), from, b)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("a good reply rejected: %v", err)
			case tt.want == "":
				if len(e.sources[0].filter.samples) != 1 {
					t.Fatal("a good reply left no sample")
				}
			case err == nil || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			default:
				if len(e.sources[0].filter.samples) != 0 {
					t.Fatal("a rejected reply left a sample")
				}
			}
		})
	}
	if _, err := ParseHeader(make([]byte, 10)); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
}
