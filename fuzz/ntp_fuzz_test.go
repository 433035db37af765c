package fuzz

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/dyad-project/dyad/daemons/ntp"
	"github.com/dyad-project/dyad/privsep"
)

// ntpStart is the fake clock's start in the NTP targets.
var ntpStart = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// ntpReply is a server's reply to a query at ntpStart plus at, its clock
// off by offset, with the origin left zero for the target to fill.
func ntpReply(at, offset time.Duration, stratum uint8) []byte {
	t := ntpStart.Add(at + offset)
	return ntp.Header{Version: 4, Mode: ntp.ModeServer, Stratum: stratum, Precision: -20,
		RootDelay: ntp.ShortOf(time.Millisecond), RootDispersion: ntp.ShortOf(time.Millisecond), ReferenceID: 0x7f000001,
		ReferenceTime: ntp.Time64Of(t.Add(-time.Minute)), Receive: ntp.Time64Of(t), Transmit: ntp.Time64Of(t.Add(10 * time.Microsecond))}.Append(nil)
}

// ntpPacketSeeds are replies as a server sends them, and a Kiss-o'-Death.
func ntpPacketSeeds() [][]byte {
	kod := ntpReply(0, 0, 0)
	copy(kod[12:16], "RATE")
	return [][]byte{ntpReply(time.Millisecond, 2500*time.Millisecond, 2), ntpReply(time.Millisecond, -30*time.Second, 1), kod}
}

func TestNTPPacketSeeds(t *testing.T) {
	if err := syncSeeds("FuzzNTPPacket", oneArg(ntpPacketSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzNTPPacket covers the NTP engine's reading of a server's reply: the
// packet decoder and every check a reply must pass (mode, origin, stratum,
// leap, timestamps, root distance, Kiss-o'-Death). The input is the
// reply, its origin timestamp set to the query's so that it reaches the
// checks behind that one. The invariants: no panic; a header decodes and
// encodes back to the same bytes; an accepted reply gives a sample whose
// offset and delay are what its timestamps say.
func FuzzNTPPacket(f *testing.F) {
	for _, s := range ntpPacketSeeds() {
		f.Add(s)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	server := netip.MustParseAddrPort("192.0.2.1:123")
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ntp.ParseHeader(b); err == nil {
			if back := h.Append(nil); !bytes.Equal(back, b[:ntp.HeaderLen]) {
				t.Fatalf("header %x encodes back as %x", b[:ntp.HeaderLen], back)
			}
		}
		e := ntp.NewEngine(ntp.EngineConfig{Mode: ntp.ModeQuery, Sources: []ntp.SourceConfig{{Name: "192.0.2.1"}}}, log, rand.New(rand.NewPCG(1, 2)), ntpStart)
		e.HandleTimer(ntpStart)
		var nonce []byte
		for _, a := range e.TakeActions() {
			if s, ok := a.(ntp.Send); ok {
				nonce = s.Packet[40:48]
			}
		}
		reply := bytes.Clone(b)
		if len(reply) >= 32 {
			copy(reply[24:32], nonce)
		}
		if err := e.HandlePacket(ntpStart.Add(2*time.Millisecond), server, reply); err != nil {
			return
		}
		st := e.Status(ntpStart.Add(2 * time.Millisecond))
		if len(st.Sources) != 1 || st.Sources[0].Samples != 1 {
			t.Fatalf("an accepted reply left %+v", st.Sources)
		}
		h, _ := ntp.ParseHeader(reply)
		t2, t3 := h.Receive.Time(ntpStart), h.Transmit.Time(ntpStart)
		t4 := ntpStart.Add(2 * time.Millisecond)
		want := (t2.Sub(ntpStart) + t3.Sub(t4)) / 2
		if src := st.Sources[0]; src.Offset != want || src.Delay < 0 {
			t.Fatalf("sample offset %s delay %s, want offset %s and no negative delay", src.Offset, src.Delay, want)
		}
	})
}

// ntpSelectSeeds encode candidates as FuzzNTPSelect reads them.
func ntpSelectSeeds() [][]byte {
	enc := func(cands ...[2]int64) []byte {
		var b []byte
		for _, c := range cands {
			b = binary.BigEndian.AppendUint64(b, uint64(c[0]))
			b = binary.BigEndian.AppendUint64(b, uint64(c[1]))
		}
		return b
	}
	ms := int64(time.Millisecond)
	return [][]byte{
		enc([2]int64{0, 5 * ms}, [2]int64{ms, 5 * ms}, [2]int64{10_000 * ms, 5 * ms}),
		enc([2]int64{0, 100 * ms}, [2]int64{0, ms}, [2]int64{99 * ms, ms}),
		enc([2]int64{2500 * ms, 10 * ms}),
	}
}

func TestNTPSelectSeeds(t *testing.T) {
	if err := syncSeeds("FuzzNTPSelect", oneArg(ntpSelectSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzNTPSelect covers source selection and combining, which decides from
// what the servers claim (offsets and root distances, all untrusted) how
// far to move the clock. The input is a list of candidates, 16 bytes
// each: offset and distance in nanoseconds. The invariants: no panic; a
// selection is made only by a majority, its offset lies within the part
// of the line every survivor's interval holds, and every candidate is a
// survivor exactly when its interval holds that part.
func FuzzNTPSelect(f *testing.F) {
	for _, s := range ntpSelectSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cands []ntp.Candidate
		for i := 0; len(b) >= 16 && i < 64; i++ {
			cands = append(cands, ntp.Candidate{
				ID:       i,
				Offset:   time.Duration(binary.BigEndian.Uint64(b)),
				Distance: time.Duration(binary.BigEndian.Uint64(b[8:]) >> 1),
			})
			b = b[16:]
		}
		sel, ok := ntp.Select(cands, 1)
		if !ok {
			return
		}
		if err := ntp.CheckSelection(cands, sel); err != nil {
			t.Fatal(err)
		}
	})
}

// ntpExchangeSeeds are sequences of replies and timer events that set the
// clock: servers 2.5 s ahead (a step), 40 ms behind (a slew), and a
// falseticker 10 s ahead of two that agree. Each is made by playing the
// servers against the engine, so that every reply answers a query at the
// time the target will feed it.
func ntpExchangeSeeds() [][]byte {
	var seeds [][]byte
	for _, offsets := range [][3]time.Duration{
		{2500 * time.Millisecond, 2500 * time.Millisecond, 2500 * time.Millisecond},
		{-40 * time.Millisecond, -40 * time.Millisecond, -40 * time.Millisecond},
		{0, time.Millisecond, 10 * time.Second},
	} {
		seeds = append(seeds, ntpPlay(offsets, 60))
	}
	return seeds
}

// ntpHost is what FuzzNTPExchange runs the engine on: a clock that time
// moves (mono, the true time, which the actuator's spacing of steps reads
// as it reads the kernel's monotonic clock) and that the engine's steps
// move too (offset), and the actuator's guard. Events advance mono.
type ntpHost struct {
	e       *ntp.Engine
	guard   *privsep.Guard
	mono    time.Time
	offset  time.Duration
	queries map[byte][]byte // the last query to each server, by its last byte
	applied []privsep.Message
}

func newNTPHost() *ntpHost {
	h := &ntpHost{mono: ntpStart, queries: map[byte][]byte{}}
	cfg := ntpExchangeConfig()
	policy := ntp.Grant(cfg)
	policy.Now = func() time.Time { return h.mono }
	h.guard = privsep.NewGuard(policy)
	h.e = ntp.NewEngine(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), rand.New(rand.NewPCG(1, 2)), h.now())
	h.e.HandleTimer(h.now())
	return h
}

// now is the engine's clock.
func (h *ntpHost) now() time.Time { return h.mono.Add(h.offset) }

// drain carries out what the engine asked for; refused is told of a clock
// operation the guard refuses.
func (h *ntpHost) drain(refused func(op privsep.Message, err error)) {
	for range 64 {
		actions := h.e.TakeActions()
		if len(actions) == 0 {
			return
		}
		for _, a := range actions {
			switch a := a.(type) {
			case ntp.Send:
				h.queries[a.To.Addr().As4()[3]] = a.Packet
			case ntp.Apply:
				for _, op := range a.Ops {
					if err := h.guard.Check(op); err != nil {
						refused(op, err)
						h.e.Applied(h.now(), op, nil, err)
						continue
					}
					h.guard.Record(op)
					h.applied = append(h.applied, op)
					if step, ok := op.(*privsep.ClockStep); ok {
						h.offset += time.Duration(step.Offset)
					}
					h.e.Applied(h.now(), op, &privsep.ClockState{Time: h.now().UnixNano(), Set: h.guard.ClockSet()}, nil)
				}
			}
		}
	}
}

// timer advances true time to the engine's deadline and runs it.
func (h *ntpHost) timer() bool {
	next := h.e.Deadline()
	if next.IsZero() {
		return false
	}
	if d := next.Sub(h.now()); d > 0 {
		h.mono = h.mono.Add(d)
	}
	h.e.HandleTimer(h.now())
	return true
}

// reply feeds b to the engine as server src's answer a millisecond later,
// its origin set to match the last query to src.
func (h *ntpHost) reply(src byte, b []byte) {
	b = bytes.Clone(b)
	if q := h.queries[src]; q != nil && len(b) >= 32 {
		copy(b[24:32], q[40:48])
	}
	h.mono = h.mono.Add(time.Millisecond)
	h.e.HandlePacket(h.now(), netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, src}), 123), b)
}

// ntpPlay plays servers off by offsets against an engine as
// FuzzNTPExchange runs it, and returns the events as the target's input.
func ntpPlay(offsets [3]time.Duration, events int) []byte {
	h := newNTPHost()
	answered := map[byte][]byte{}
	var out []byte
	for range events {
		h.drain(func(privsep.Message, error) {})
		src := byte(0)
		for i := byte(1); i <= 3; i++ {
			if q := h.queries[i]; q != nil && !bytes.Equal(q, answered[i]) {
				src = i
				break
			}
		}
		if src == 0 {
			out = append(out, 0)
			h.timer()
			continue
		}
		answered[src] = h.queries[src]
		// The server's clock: true time (a millisecond on, less half
		// the way back) plus its error.
		reply := ntpReply(h.mono.Add(500*time.Microsecond).Sub(ntpStart), offsets[src-1], 2)
		out = append(append(out, src), reply...)
		h.reply(src, reply)
	}
	return out
}

func ntpExchangeConfig() ntp.EngineConfig {
	return ntp.EngineConfig{Mode: ntp.ModeService, Sources: []ntp.SourceConfig{{Name: "192.0.2.1"}, {Name: "192.0.2.2"}, {Name: "192.0.2.3"}}}
}

func TestNTPExchangeSeeds(t *testing.T) {
	if err := syncSeeds("FuzzNTPExchange", oneArg(ntpExchangeSeeds())); err != nil {
		t.Fatal(err)
	}
	// The seeds reach the clock: one step of 2.5 s, then slews only.
	h := newNTPHost()
	ntpFeed(h, ntpExchangeSeeds()[0], func(op privsep.Message, err error) { t.Fatalf("%s refused: %v", op.Kind(), err) })
	var steps []time.Duration
	for _, op := range h.applied {
		if s, ok := op.(*privsep.ClockStep); ok {
			steps = append(steps, time.Duration(s.Offset))
		}
	}
	if len(steps) != 1 || steps[0] < 2499*time.Millisecond || steps[0] > 2501*time.Millisecond {
		t.Errorf("the first seed steps the clock by %v, want one step of 2.5 s", steps)
	}
}

// ntpFeed feeds the events of b to h, as FuzzNTPExchange reads them.
func ntpFeed(h *ntpHost, b []byte, refused func(privsep.Message, error)) bool {
	for i := 0; len(b) > 0 && i < 256; i++ {
		h.drain(refused)
		op := b[0] % 4
		b = b[1:]
		if op == 0 {
			if !h.timer() {
				return false
			}
			continue
		}
		n := min(len(b), ntp.HeaderLen)
		h.reply(op, b[:n])
		b = b[n:]
	}
	h.drain(refused)
	return true
}

// FuzzNTPExchange covers the NTP engine as a whole, as a server (or an
// attacker able to answer its queries) drives it: three sources, fed
// replies and timer expiries from the input, on a clock the engine's
// steps move. Each event is a byte: 0 runs the timer, 1 to 3 answer the
// query last sent to that source with the 48 bytes that follow (the
// origin set to match). The invariants: no panic, the engine always has a
// deadline, and every clock operation it asks for passes the actuator's
// policy, so a compromised engine's worst is a bounded one.
func FuzzNTPExchange(f *testing.F) {
	for _, s := range ntpExchangeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newNTPHost()
		refused := func(op privsep.Message, err error) {
			t.Fatalf("the engine asked for %s %+v, which the actuator refuses: %v", op.Kind(), op, err)
		}
		if !ntpFeed(h, b, refused) {
			t.Fatal("the engine has no deadline")
		}
	})
}
