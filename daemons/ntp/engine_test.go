package ntp

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/privsep"
)

// world is a simulated network for the sans-I/O engine: true time, a local
// clock off by localErr, servers off by their own errors, a fixed one-way
// delay. It answers the engine's queries as an NTP server would and
// applies the engine's clock operations to the local clock.
type world struct {
	t        *testing.T
	truth    time.Time
	localErr time.Duration
	oneWay   time.Duration
	servers  map[netip.AddrPort]*fakeServer
	applied  []privsep.Message
	resolve  map[string][]netip.Addr
	e        *Engine
	// drift is the local clock's own rate error, ppm; freq the
	// correction the engine set; slew what is left to slew, at 500 ppm.
	drift, freq float64
	slew        time.Duration
	gradual     bool // slews take time, as in the kernel
}

// advance moves true time on by d, and the local clock with its drift,
// its frequency correction and any slew in progress.
func (w *world) advance(d time.Duration) {
	w.truth = w.truth.Add(d)
	w.localErr += time.Duration(float64(d) * (w.drift + w.freq) / 1e6)
	if w.slew != 0 {
		step := min(time.Duration(float64(d)*500e-6), absDuration(w.slew))
		if w.slew < 0 {
			step = -step
		}
		w.localErr += step
		w.slew -= step
	}
}

type fakeServer struct {
	err    time.Duration
	silent bool
	kiss   string
	// kissOnce makes the server kiss the first query only.
	kissOnce bool
	stratum  uint8
	queries  int
	times    []time.Time // when each query arrived
}

func newWorld(t *testing.T, cfg EngineConfig, servers map[string]*fakeServer) *world {
	w := &world{t: t, truth: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), oneWay: 5 * time.Millisecond, servers: map[netip.AddrPort]*fakeServer{}}
	for a, s := range servers {
		if s.stratum == 0 {
			s.stratum = 2
		}
		w.servers[netip.AddrPortFrom(netip.MustParseAddr(a), 123)] = s
	}
	w.e = NewEngine(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), rand.New(rand.NewPCG(1, 2)), w.local())
	return w
}

func (w *world) local() time.Time { return w.truth.Add(w.localErr) }

// run drives the engine until it is done or until the true time has
// advanced by d, a bounded number of steps.
func (w *world) run(d time.Duration) {
	end := w.truth.Add(d)
	for i := 0; i < 100_000; i++ {
		for range 1000 {
			a := w.e.TakeActions()
			if len(a) == 0 {
				break
			}
			w.do(a)
		}
		if done, _ := w.e.Done(); done {
			return
		}
		next := w.e.Deadline()
		if next.IsZero() || next.Sub(w.local()) > end.Sub(w.truth) {
			w.truth = end
			return
		}
		if wait := next.Sub(w.local()); wait > 0 {
			w.advance(wait)
		}
		w.e.HandleTimer(w.local())
	}
}

func (w *world) do(actions []Action) {
	for _, a := range actions {
		switch a := a.(type) {
		case Send:
			w.e.Sent(a.Token, w.local())
			w.answer(a)
		case Resolve:
			w.e.Resolved(w.local(), a.Name, w.resolve[a.Name], nil)
		case Apply:
			for _, op := range a.Ops {
				w.applied = append(w.applied, op)
				switch op := op.(type) {
				case *privsep.ClockStep:
					w.localErr += time.Duration(op.Offset)
				case *privsep.ClockSlew:
					if w.gradual {
						w.slew = time.Duration(op.Offset)
					} else {
						w.localErr += time.Duration(op.Offset)
					}
				case *privsep.ClockFrequency:
					w.freq = float64(op.Frequency) / privsep.FrequencyScale
				}
				st := &privsep.ClockState{Time: w.local().UnixNano()}
				w.e.Applied(w.local(), op, st, nil)
			}
		}
	}
}

// answer plays the server a query went to, at once.
func (w *world) answer(s Send) {
	srv := w.servers[s.To]
	if srv == nil {
		w.t.Fatalf("query to %s, which is no server", s.To)
	}
	srv.queries++
	srv.times = append(srv.times, w.truth)
	if srv.silent {
		return
	}
	q, err := ParseHeader(s.Packet)
	if err != nil || q.Mode != ModeClient {
		w.t.Fatalf("the engine sent %x: %v", s.Packet, err)
	}
	arrive := w.truth.Add(w.oneWay)
	r := Header{Version: 4, Mode: ModeServer, Stratum: srv.stratum, Precision: -20, RootDelay: ShortOf(time.Millisecond), RootDispersion: ShortOf(time.Millisecond),
		ReferenceID: 0x7f000001, Origin: q.Transmit,
		Receive: Time64Of(arrive.Add(srv.err)), Transmit: Time64Of(arrive.Add(srv.err + 10*time.Microsecond))}
	if srv.kiss != "" {
		r.Stratum = 0
		r.ReferenceID = uint32(srv.kiss[0])<<24 | uint32(srv.kiss[1])<<16 | uint32(srv.kiss[2])<<8 | uint32(srv.kiss[3])
	}
	w.advance(arrive.Add(w.oneWay + 10*time.Microsecond).Sub(w.truth))
	kissed := srv.kiss != ""
	if srv.kissOnce {
		srv.kiss = ""
	}
	if err := w.e.HandlePacket(w.local(), s.To, r.Append(nil)); err != nil && !kissed {
		w.t.Errorf("reply rejected: %v", err)
	}
}

func (w *world) steps() (out []time.Duration) {
	for _, op := range w.applied {
		if s, ok := op.(*privsep.ClockStep); ok {
			out = append(out, time.Duration(s.Offset))
		}
	}
	return out
}

func near(a, b, tol time.Duration) bool { return absDuration(a-b) <= tol }

func TestEngineStepsToOneServer(t *testing.T) {
	for _, err := range []time.Duration{2500 * time.Millisecond, -30 * time.Second, 10 * 365 * 24 * time.Hour} {
		w := newWorld(t, EngineConfig{Mode: ModeOnce, BurstCount: 4, Sources: []SourceConfig{{Name: "192.0.2.1"}}},
			map[string]*fakeServer{"192.0.2.1": {err: err}})
		w.run(time.Minute)
		done, result := w.e.Done()
		if !done || result != AdjustStep {
			t.Fatalf("server %s off: done %v %q, want a step", err, done, result)
		}
		if s := w.steps(); len(s) != 1 || !near(s[0], err, time.Millisecond) {
			t.Errorf("server %s off: steps %v, want one of %s", err, s, err)
		}
		if !near(w.localErr, err, time.Millisecond) {
			t.Errorf("server %s off: the local clock ends %s off the truth", err, w.localErr-err)
		}
	}
}

func TestEngineSlewsSmallOffsets(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeOnce, Sources: []SourceConfig{{Name: "192.0.2.1"}}}, map[string]*fakeServer{"192.0.2.1": {err: 40 * time.Millisecond}})
	w.run(time.Minute)
	if len(w.applied) < 2 {
		t.Fatalf("applied %v", w.applied)
	}
	// A ClockRead at start, then the slew and the status.
	slew, ok := w.applied[1].(*privsep.ClockSlew)
	if !ok || !near(time.Duration(slew.Offset), 40*time.Millisecond, time.Millisecond) {
		t.Errorf("applied %v, want a slew of 40ms", w.applied)
	}
	st, ok := w.applied[2].(*privsep.ClockStatus)
	if !ok || !st.Synced || st.MaxError <= 0 {
		t.Errorf("applied %v, want a synced status", w.applied)
	}
}

func TestEngineRejectsFalseticker(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 1, MaxPoll: 2, BurstInterval: time.Second, Sources: []SourceConfig{{Name: "192.0.2.1"}, {Name: "192.0.2.2"}, {Name: "192.0.2.3"}}},
		map[string]*fakeServer{"192.0.2.1": {err: 2 * time.Second}, "192.0.2.2": {err: 2*time.Second + 300*time.Microsecond}, "192.0.2.3": {err: 12 * time.Second}})
	w.run(30 * time.Second)
	if s := w.steps(); len(s) != 1 || !near(s[0], 2*time.Second, time.Millisecond) {
		t.Fatalf("steps %v, want one of 2s (the majority's)", s)
	}
	verdicts := map[string]Verdict{}
	for _, s := range w.e.sources {
		verdicts[s.name] = s.verdict
	}
	if verdicts["192.0.2.3"] != VerdictFalseticker || verdicts["192.0.2.1"] != VerdictSelected || verdicts["192.0.2.2"] != VerdictSelected {
		t.Errorf("verdicts %v", verdicts)
	}
}

func TestEngineLeavesTheClockWithoutMajority(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeQuery, Sources: []SourceConfig{{Name: "192.0.2.1"}, {Name: "192.0.2.2"}}},
		map[string]*fakeServer{"192.0.2.1": {err: 2 * time.Second}, "192.0.2.2": {err: -3 * time.Second}})
	w.run(time.Minute)
	if done, _ := w.e.Done(); !done {
		t.Fatal("a query run did not finish")
	}
	if w.e.Selection() != nil || len(w.applied) != 0 {
		t.Errorf("two disagreeing sources gave selection %+v, applied %v", w.e.Selection(), w.applied)
	}
	for _, s := range w.e.sources {
		if s.verdict != VerdictNoMajority {
			t.Errorf("%s: verdict %q", s.name, s.verdict)
		}
	}
}

func TestEnginePanicThreshold(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 1, MaxPoll: 1, Sources: []SourceConfig{{Name: "192.0.2.1"}}}, map[string]*fakeServer{"192.0.2.1": {err: 5 * time.Second}})
	w.run(20 * time.Second)
	if s := w.steps(); len(s) != 1 {
		t.Fatalf("steps %v, want the first", s)
	}
	// The server jumps by more than the panic threshold: refused.
	for _, s := range w.servers {
		s.err += 2000 * time.Second
	}
	w.run(20 * time.Second)
	if s := w.steps(); len(s) != 1 {
		t.Errorf("steps %v after the server jumped 2000 s, want none more", s)
	}
	if a := w.e.LastAdjustment(); a.Kind != AdjustRefused || !strings.Contains(a.Reason, "panic threshold") {
		t.Errorf("last adjustment %+v, want refused at the panic threshold", a)
	}
}

func TestEngineKissOfDeath(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 1, MaxPoll: 1, Sources: []SourceConfig{{Name: "192.0.2.1"}, {Name: "192.0.2.2"}}},
		map[string]*fakeServer{"192.0.2.1": {kiss: "RATE"}, "192.0.2.2": {kiss: "DENY"}})
	w.run(64 * time.Second)
	rate := w.servers[netip.MustParseAddrPort("192.0.2.1:123")]
	deny := w.servers[netip.MustParseAddrPort("192.0.2.2:123")]
	// RATE doubles the interval each time: 4, 8, 16, 32 s... after 2 s
	// polls; a client that ignored it would have sent 32 in 64 s.
	t.Logf("RATE server: %d queries", rate.queries)
	if rate.queries > 6 {
		t.Errorf("%d queries to a server that kissed RATE in 64 s", rate.queries)
	}
	if deny.queries != 1 {
		t.Errorf("%d queries to a server that kissed DENY, want 1", deny.queries)
	}
	for _, s := range w.e.sources {
		if s.addr.Addr().String() == "192.0.2.2" && s.verdict != VerdictDenied {
			t.Errorf("verdict of the denying server %q", s.verdict)
		}
	}
}

// TestEngineKeepsKissedInterval: a server that kisses RATE once, as a
// rate-limiting server does, is polled at twice the interval from then
// on, not only until the next poll.
func TestEngineKeepsKissedInterval(t *testing.T) {
	for _, tc := range []struct {
		minPoll int
		want    time.Duration
	}{
		{1, 4 * time.Second},
		{-2, 500 * time.Millisecond}, // poll exponents below 0 are kept too
	} {
		t.Run(tc.want.String(), func(t *testing.T) {
			w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: tc.minPoll, MaxPoll: tc.minPoll, Sources: []SourceConfig{{Name: "192.0.2.1"}}},
				map[string]*fakeServer{"192.0.2.1": {kiss: "RATE", kissOnce: true}})
			w.run(64 * time.Second)
			srv := w.servers[netip.MustParseAddrPort("192.0.2.1:123")]
			if len(srv.times) < 5 {
				t.Fatalf("%d queries in 64 s: the server was dropped", len(srv.times))
			}
			// The first gap is the burst's, cut short by the kiss.
			for i := 2; i < len(srv.times); i++ {
				if gap := srv.times[i].Sub(srv.times[i-1]); gap < tc.want-time.Millisecond || gap > tc.want+100*time.Millisecond {
					t.Fatalf("query %d came %s after the one before; the kiss asked for %s", i, gap, tc.want)
				}
			}
			if p := w.e.Status(w.local()).Sources[0].Poll; p != tc.want {
				t.Errorf("status: poll %s, want %s", p, tc.want)
			}
		})
	}
}

func TestEngineDropsSilentSource(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 1, MaxPoll: 1, Sources: []SourceConfig{{Name: "192.0.2.1"}, {Name: "192.0.2.2"}, {Name: "192.0.2.3"}}},
		map[string]*fakeServer{"192.0.2.1": {}, "192.0.2.2": {}, "192.0.2.3": {}})
	w.run(20 * time.Second)
	w.servers[netip.MustParseAddrPort("192.0.2.3:123")].silent = true
	w.run(60 * time.Second)
	got := map[string]Verdict{}
	for _, s := range w.e.sources {
		got[s.name] = s.verdict
	}
	if got["192.0.2.3"] != VerdictUnreachable || got["192.0.2.1"] != VerdictSelected || got["192.0.2.2"] != VerdictSelected {
		t.Errorf("verdicts %v: want the silent one unreachable, the others selected", got)
	}
}

func TestEngineResolvesNames(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeQuery, Sources: []SourceConfig{{Name: "pool.example", Pool: true}, {Name: "ntp.example"}}},
		map[string]*fakeServer{"192.0.2.1": {}, "192.0.2.2": {}, "192.0.2.3": {}})
	w.resolve = map[string][]netip.Addr{
		"pool.example": {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")},
		"ntp.example":  {netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.1")},
	}
	w.run(time.Minute)
	if len(w.e.sources) != 3 {
		t.Fatalf("%d sources, want 3", len(w.e.sources))
	}
	if sel := w.e.Selection(); sel == nil || len(sel.Survivors) != 3 {
		t.Errorf("selection %+v", sel)
	}
}

// TestEngineFollowsDrift runs a clock 50 ppm fast against a good server
// for a day: the frequency correction must settle near -50 ppm, within the
// bounds, and the clock stay within a millisecond once settled.
func TestEngineFollowsDrift(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, Sources: []SourceConfig{{Name: "192.0.2.1"}}}, map[string]*fakeServer{"192.0.2.1": {}})
	w.drift, w.gradual = 50, true
	w.run(24 * time.Hour)
	t.Logf("after a day: frequency %.2f ppm, clock %s off, poll %s", w.freq, w.localErr, w.e.Status(w.local()).Poll)
	if w.freq < -60 || w.freq > -40 {
		t.Errorf("frequency correction %.1f ppm after a day against a drift of +50 ppm", w.freq)
	}
	if absDuration(w.localErr) > time.Millisecond {
		t.Errorf("the clock is %s off after a day", w.localErr)
	}
	if p := w.e.Status(w.local()).Poll; p < 128*time.Second {
		t.Errorf("poll interval %s after a day of good samples, want it lengthened", p)
	}
}

// TestEngineLosesNamedSources: of three servers given by name, the first
// stops answering; it is dropped and its name resolved again, and the
// engine carries on (removing a source while walking the list once
// panicked).
func TestEngineLosesNamedSources(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 1, MaxPoll: 1, Sources: []SourceConfig{{Name: "a.example"}, {Name: "b.example"}, {Name: "c.example"}}},
		map[string]*fakeServer{"192.0.2.1": {}, "192.0.2.2": {}, "192.0.2.3": {}})
	w.resolve = map[string][]netip.Addr{
		"a.example": {netip.MustParseAddr("192.0.2.1")},
		"b.example": {netip.MustParseAddr("192.0.2.2")},
		"c.example": {netip.MustParseAddr("192.0.2.3")},
	}
	w.run(20 * time.Second)
	a := w.servers[netip.MustParseAddrPort("192.0.2.1:123")]
	a.silent = true
	before := a.queries
	w.run(time.Minute)
	if len(w.e.sources) != 3 {
		t.Fatalf("%d sources", len(w.e.sources))
	}
	// Resolved again, the name comes back with a new burst.
	if a.queries-before < 8+DefaultBurstCount {
		t.Errorf("%d queries to the silent server in a minute, want its 8 polls and a new burst", a.queries-before)
	}
}

// TestEngineAfterBackwardStep: a clock an hour ahead is stepped back; the
// engine's times move with it, so it goes on disciplining the clock at
// once rather than an hour later.
func TestEngineAfterBackwardStep(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 4, MaxPoll: 4, Sources: []SourceConfig{{Name: "192.0.2.1"}}}, map[string]*fakeServer{"192.0.2.1": {}})
	w.localErr = time.Hour
	w.e = NewEngine(w.e.cfg, w.e.log, rand.New(rand.NewPCG(1, 2)), w.local())
	w.run(10 * time.Minute)
	if s := w.steps(); len(s) != 1 || !near(s[0], -time.Hour, time.Millisecond) {
		t.Fatalf("steps %v, want one of -1h", s)
	}
	slews := 0
	for _, op := range w.applied {
		if _, ok := op.(*privsep.ClockSlew); ok {
			slews++
		}
	}
	// A round every 16 s: some 30 in the ten minutes after the step.
	if slews < 20 {
		t.Errorf("%d slews in the ten minutes after a step of -1h: the engine stalled", slews)
	}
}

// TestEngineBoundsStepsOverAnHour: after the first, steps that would add
// up beyond the panic threshold within an hour are refused by the engine
// itself, as the actuator would.
func TestEngineBoundsStepsOverAnHour(t *testing.T) {
	w := newWorld(t, EngineConfig{Mode: ModeService, MinPoll: 6, MaxPoll: 6, Sources: []SourceConfig{{Name: "192.0.2.1"}}}, map[string]*fakeServer{"192.0.2.1": {err: time.Second}})
	srv := w.servers[netip.MustParseAddrPort("192.0.2.1:123")]
	w.run(time.Minute)
	// The server jumps twice by 600 s. A jump is believed once it has
	// filled the filter (eight polls), which these twelve minutes allow.
	for range 2 {
		srv.err += 600 * time.Second
		w.run(12 * time.Minute)
	}
	s := w.steps()
	if len(s) != 2 || !near(s[1], 600*time.Second, time.Millisecond) {
		t.Errorf("steps %v: want the first (1 s) and one of 600 s, the next refused", s)
	}
	if a := w.e.LastAdjustment(); a.Kind != AdjustRefused || !strings.Contains(a.Reason, "steps of the last 1h0m0s") {
		t.Errorf("last adjustment %+v", a)
	}
}
