package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
)

// TestMain runs the benchmarks in private PID, mount and UTS namespaces:
// nothing of the host is written but the report, bench/RESULTS.md.
func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

const (
	// envBench set to 1 runs the full benchmark; otherwise one run of
	// each client against each server checks that the set-up works.
	envBench = "DYAD_BENCH"
	// envRuns overrides the number of timed runs per client and server.
	envRuns = "DYAD_BENCH_RUNS"
	// envCmd is the command that started the benchmark, for the report;
	// `make bench` sets it.
	envCmd = "DYAD_BENCH_CMD"
	// goTestCmd is what `make bench` runs.
	goTestCmd = `DYAD_BENCH=1 go test -count=1 -timeout 60m -run '^TestBench(DHCP|VM|NTP|DNS)$' -v ./bench/`

	defaultRuns = 20
	minRuns     = 10
)

// settings of one run of the benchmark.
type settings struct {
	full       bool
	runs       int           // timed runs of each client against each server
	warmUp     bool          // one untimed round first
	memSamples int           // memory samples of each client against each server
	settle     time.Duration // how long a daemon holds its lease before its memory is read
}

func benchSettings(t *testing.T) settings {
	t.Helper()
	if os.Getenv(envBench) != "1" {
		return settings{runs: 1, memSamples: 1, settle: 300 * time.Millisecond}
	}
	s := settings{full: true, runs: defaultRuns, warmUp: true, memSamples: 3, settle: time.Second}
	if v := os.Getenv(envRuns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minRuns || n > 1000 {
			t.Fatalf("%s=%q: want a number of runs from %d to 1000", envRuns, v, minRuns)
		}
		s.runs = n
	}
	return s
}

// binary returns $DYAD_BIN/NAME, as make builds it, or a fresh build of
// the command in package pkg.
func binary(t *testing.T, name, pkg string) string { return testnet.Binary(t, name, pkg) }

// serverResult is what was measured against one server.
type serverResult struct {
	kind  testnet.Kind
	times map[string][]time.Duration
	mem   map[string][]memSample
}

// TestBenchDHCP measures, against dnsmasq and against kea, how long each
// client takes from its start to its address, and how much memory it holds
// with a lease. Without DYAD_BENCH=1 it is a smoke test: one run of each.
func TestBenchDHCP(t *testing.T) {
	testnet.RequireIsolated(t)
	testnet.RequireTools(t, "dnsmasq", "kea-dhcp4")
	s := benchSettings(t)
	dyad := binary(t, "dyad-dhcp", "github.com/dyad-project/dyad/daemons/dhcp/cmd/dyad-dhcp")
	isolateClientState(t)

	// Not t.TempDir: dyad-dhcp's status socket path must stay short.
	base, err := os.MkdirTemp("", "dyad-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })

	var results []serverResult
	var clients []*dhcpClient // the last subtest's, for their names
	for _, kind := range []testnet.Kind{testnet.Dnsmasq, testnet.Kea} {
		t.Run(string(kind), func(t *testing.T) {
			n := testnet.NewNet(t)
			srv := testnet.StartServer(t, kind, n, n.DefaultOptions())
			dir, err := os.MkdirTemp(base, string(kind)+"-")
			if err != nil {
				t.Fatal(err)
			}
			clients = dhcpClients(t, dir, dyad, n.ClientIf)
			l := newLab(t, n, srv, dir)
			res := serverResult{kind: kind, times: map[string][]time.Duration{}, mem: map[string][]memSample{}}

			// Timing: round-robin, the order rotating each round so
			// that no client always follows the same one.
			rounds := s.runs
			if s.warmUp {
				rounds++
			}
			for round := range rounds {
				for i := range clients {
					c := clients[(i+round)%len(clients)]
					d, err := l.timeOnce(c)
					if err != nil {
						t.Fatalf("against %s, round %d: %v", kind, round, err)
					}
					if s.warmUp && round == 0 {
						continue
					}
					res.times[c.name] = append(res.times[c.name], d)
				}
			}
			// Memory, interleaved likewise.
			for round := range s.memSamples {
				for i := range clients {
					c := clients[(i+round)%len(clients)]
					m, err := l.memOnce(c, s.settle)
					if err != nil {
						t.Fatalf("against %s, memory round %d: %v", kind, round, err)
					}
					res.mem[c.name] = append(res.mem[c.name], m)
				}
			}
			results = append(results, res)
		})
	}
	if t.Failed() || len(results) == 0 {
		return
	}
	fs := floors(t)
	floorMem := measureFloors(t, fs, s)

	report := render(s, dyad, clients, results) + renderFloors(fs, floorMem, results)
	fmt.Print(report)
	if s.full {
		if err := os.WriteFile("RESULTS.md", []byte(report), 0o644); err != nil {
			t.Errorf("writing RESULTS.md: %v", err)
		}
	}
}

// render formats the results as Markdown.
func render(s settings, dyad string, clients []*dhcpClient, results []serverResult) string {
	var b strings.Builder
	cmd := os.Getenv(envCmd)
	switch {
	case cmd != "":
		fmt.Fprintf(&b, "Command: `%s` (that is, `%s`)\n\n", cmd, goTestCmd)
	case s.full:
		fmt.Fprintf(&b, "Command: `%s`\n\n", goTestCmd)
	default:
		fmt.Fprintf(&b, "Command: `go test -run TestBenchDHCP ./bench/` (smoke run: one run each; `make bench` for figures)\n\n")
	}
	b.WriteString("# DHCP clients: start to address, and memory holding a lease\n\n")
	var uts strings.Builder
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		uts.WriteString(strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(&b, "- %s, %s, %d CPUs, %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), uts.String(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "- dyad-dhcp: %s%s; peers: %s\n", dyad, binaryNote(dyad), versions())
	fmt.Fprintf(&b, "- Time: from just before the fork and exec of the client (started in the client's network namespace by a thread that joined it, no wrapper) "+
		"to the RTM_NEWADDR event for its IPv4 address, read from a netlink subscription in that namespace opened before the client starts. "+
		"%d runs of each client per server, interleaved round-robin with the order rotating each round", s.runs)
	if s.warmUp {
		b.WriteString(", after one untimed warm-up round")
	}
	b.WriteString(". Before each run the client interface loses its addresses and routes and the client its saved lease (dyad-dhcp's state directory, dhcpcd's *.lease, dhclient's lease file), " +
		"so each run is a full DISCOVER, OFFER, REQUEST, ACK; the server keeps its leases, so it offers each client the address it had (same MAC and client identifier).\n")
	fmt.Fprintf(&b, "- Memory: each client as a daemon, %v after its address appeared; RSS and PSS from /proc/PID/smaps_rollup summed over the client's whole process tree; median of %d sample(s). MiB = 1024 kB.\n",
		s.settle, s.memSamples)
	b.WriteString("- Hooks: dhcpcd's is a no-op (dhcpcd configures addresses itself); dhclient's and udhcpc's add the address and default route with `ip`. dyad-dhcp runs with its sandbox (seccomp, capabilities, no_new_privs, landlock) on, as by default.\n")

	for _, r := range results {
		dyadMed := median(r.times["dyad-dhcp"])
		fmt.Fprintf(&b, "\n## Against %s\n\n", r.kind)
		fmt.Fprintf(&b, "Start to address configured (%d runs each):\n\n", len(r.times["dyad-dhcp"]))
		b.WriteString("| client | command | median | min | max | median / dyad-dhcp's |\n|---|---|---:|---:|---:|---:|\n")
		for _, c := range clients {
			ts := r.times[c.name]
			med := median(ts)
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %.2f |\n", c.name, c.oneShotShown,
				ms(med), ms(slices.Min(ts)), ms(slices.Max(ts)), float64(med)/float64(dyadMed))
		}
		dyadMem := medianMem(r.mem["dyad-dhcp"])
		b.WriteString("\nMemory holding a lease (sum over the client's processes):\n\n")
		b.WriteString("| client | command | processes | RSS MiB | PSS MiB | RSS / dyad-dhcp's | PSS / dyad-dhcp's |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, c := range clients {
			m := medianMem(r.mem[c.name])
			fmt.Fprintf(&b, "| %s | `%s` | %d | %.1f | %.1f | %.2f | %.2f |\n", c.name, c.daemonShown, m.procs,
				mib(m.rss), mib(m.pss), float64(m.rss)/float64(dyadMem.rss), float64(m.pss)/float64(dyadMem.pss))
		}
		fmt.Fprintf(&b, "\ndyad-dhcp: %d of its %d processes under a seccomp filter.\n", dyadMem.seccomp, dyadMem.procs)
	}
	return b.String()
}

// renderFloors formats what the floor binaries hold, beside dyad-dhcp and
// dhcpcd against the first server.
func renderFloors(fs []floor, mem map[string][]memSample, results []serverResult) string {
	var b strings.Builder
	r := results[0]
	dyadMem, dhcpcdMem := medianMem(r.mem["dyad-dhcp"]), medianMem(r.mem["dhcpcd"])
	b.WriteString("\n## The floor under a Go process\n\n")
	b.WriteString("What one idle process of a static PIE holds, built as `make build` builds dyad-dhcp, measured as above " +
		"(median of the same number of samples), beside what dyad-dhcp's processes hold on average and dhcpcd's sum, against " + string(r.kind) + ":\n\n")
	b.WriteString("| process | what it links | RSS MiB | PSS MiB |\n|---|---|---:|---:|\n")
	for _, f := range fs {
		m := medianMem(mem[f.name])
		fmt.Fprintf(&b, "| %s%s | %s | %.1f | %.1f |\n", f.name, binaryNote(f.path), f.what, mib(m.rss), mib(m.pss))
	}
	if dyadMem.procs > 0 {
		fmt.Fprintf(&b, "| dyad-dhcp, per process | the daemon | %.1f | %.1f |\n", mib(dyadMem.rss)/float64(dyadMem.procs), mib(dyadMem.pss)/float64(dyadMem.procs))
	}
	fmt.Fprintf(&b, "| dhcpcd, all %d processes | | %.1f | %.1f |\n", dhcpcdMem.procs, mib(dhcpcdMem.rss), mib(dhcpcdMem.pss))
	return b.String()
}

// binaryNote describes the binary's size.
func binaryNote(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (%.1f MiB)", float64(fi.Size())/(1<<20))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianMem returns the sample with the median RSS.
func medianMem(ms []memSample) memSample {
	s := slices.Clone(ms)
	slices.SortFunc(s, func(a, b memSample) int { return a.rss - b.rss })
	return s[(len(s)-1)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(kb int) float64 { return float64(kb) / 1024 }
