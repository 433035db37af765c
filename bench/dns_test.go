package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
)

// dnsForwarder is one caching forwarder under test, started in the
// client's namespace on the stub address, port 53.
type dnsForwarder struct {
	name, shown string
	argv        func(dir, stub, upstream string) ([]string, error)
}

func dnsForwarders(t *testing.T, dyad string) []dnsForwarder {
	return []dnsForwarder{
		{"dyad-dns", "dyad-dns -f dns.yaml (cache_entries: 10000)", func(dir, stub, up string) ([]string, error) {
			conf := filepath.Join(dir, "dns.yaml")
			body := fmt.Sprintf("listen: [%s]\nupstreams: [%s]\nhosts_file: none\nresolv_conf: none\nupstreams_file: none\ncache_entries: 10000\n", stub, up)
			return []string{dyad, "-f", conf, "--run-dir", filepath.Join(dir, "run")}, os.WriteFile(conf, []byte(body), 0o644)
		}},
		{"dnsmasq", "dnsmasq --no-resolv --server=UPSTREAM --cache-size=10000", func(dir, stub, up string) ([]string, error) {
			return testnet.DnsmasqDNSArgs(dir, stub, "--server="+up, "--cache-size=10000"), nil
		}},
		{"dnsmasq, default cache", "dnsmasq --no-resolv --server=UPSTREAM (cache-size 150)", func(dir, stub, up string) ([]string, error) {
			return testnet.DnsmasqDNSArgs(dir, stub, "--server="+up), nil
		}},
		{"unbound", "unbound, forward-zone \".\" to UPSTREAM, 1 thread", func(dir, stub, up string) ([]string, error) {
			conf := testnet.UnboundConf(t, stub, 53, []string{"num-threads: 1", `local-zone: "test." nodefault`},
				"forward-zone:", `  name: "."`, "  forward-addr: "+up)
			return []string{"unbound", "-d", "-c", conf}, nil
		}},
	}
}

const (
	// envBenchOnly, a regular expression, runs the forwarders whose
	// names it matches alone: for profiling one.
	envBenchOnly = "DYAD_BENCH_ONLY"
	// envBenchPerf names a directory where each forwarder's warm and
	// cold streams are recorded by perf (perf record -g), a file each a
	// round.
	envBenchPerf = "DYAD_BENCH_PERF"
)

// dnsResult is what was measured of one forwarder.
type dnsResult struct {
	warmQPS, coldQPS float64
	cpuPerAnswer     time.Duration // warm
	coldCPUPerAnswer time.Duration
	// coldCPU0 is how busy CPU 0 (dnsperf and the upstream) was during
	// the cold stream, 0 to 1: near 1, the forwarder is not the bound.
	coldCPU0 float64
	lats     []latencies // the runs at a fixed rate, warm
	mem      memSample   // with 10,000 names cached
}

// latency is the median of each percentile of r's runs.
func (r dnsResult) latency() latencies {
	lat := func(get func(l latencies) time.Duration) time.Duration {
		return time.Duration(medianOf(r.lats, func(l latencies) float64 { return float64(get(l)) }))
	}
	return latencies{
		avg:  lat(func(l latencies) time.Duration { return l.avg }),
		p50:  lat(func(l latencies) time.Duration { return l.p50 }),
		p99:  lat(func(l latencies) time.Duration { return l.p99 }),
		p999: lat(func(l latencies) time.Duration { return l.p999 }),
	}
}

// latencyRuns is how many times a round measures latency: a tail
// percentile moves more from one run to the next than the forwarders
// differ (a p99 of 0.11 to 0.28 ms for the same forwarder in one
// session's runs), so its median is taken over every round's runs.
const latencyRuns = 3

type latencies struct{ avg, p50, p99, p999 time.Duration }

// TestBenchDNS measures dyad-dns, dnsmasq and unbound as caching
// forwarders in front of the same upstream (unbound answering every name
// of example.test.), one after the other, each pinned to CPU 1 and dnsperf
// to CPU 0: warm (1000 names cached) queries a second and the forwarder's
// CPU time per answer, latency at 20,000 queries a second, cold (a stream
// of names never asked) queries a second, and RSS with 10,000 names
// cached. Without DYAD_BENCH=1 it is a smoke test: a second a measure.
func TestBenchDNS(t *testing.T) {
	testnet.RequireIsolated(t)
	testnet.RequireTools(t, "unbound", "dnsmasq", "dnsperf", "taskset", "kdig")
	full := os.Getenv(envBench) == "1"
	dur := 1
	if full {
		dur = 10
	}
	dyad := binary(t, "dyad-dns", "github.com/dyad-project/dyad/daemons/dns/cmd/dyad-dns")
	n := testnet.NewNet(t)
	stub := n.AddClientAddress(t).Addr().String()
	upstream := n.ServerAddr.Addr().String()
	startRedirectUpstream(t, n)

	dir, err := os.MkdirTemp("", "dyad-bench-dns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	warm := queryFile(t, dir, "warm", "w", 1000)
	primed := queryFile(t, dir, "ten-thousand", "m", 10000)
	cold := queryFile(t, dir, "cold", "c", 200000*dur)

	forwarders := dnsForwarders(t, dyad)
	if only := os.Getenv(envBenchOnly); only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			t.Fatalf("%s: %v", envBenchOnly, err)
		}
		forwarders = slices.DeleteFunc(forwarders, func(f dnsForwarder) bool { return !re.MatchString(f.name) })
		if len(forwarders) == 0 {
			t.Fatalf("%s=%q names no forwarder", envBenchOnly, only)
		}
	}
	// In turns, each forwarder once a round, and the median of each
	// figure: this machine's figures move by 5 to 10% from one run to the
	// next, and a turn each spreads what moves them over all.
	rounds := 1
	if full {
		rounds = 3
	}
	all := map[string][]dnsResult{}
	for round := range rounds {
		for _, f := range forwarders {
			r := measureDNS(t, n, f, dir, stub, upstream, warm, cold, primed, dur)
			all[f.name] = append(all[f.name], r)
			t.Logf("round %d, %s: %+v", round+1, f.name, r)
		}
	}
	results := map[string]dnsResult{}
	for name, rs := range all {
		results[name] = medianDNS(rs)
	}
	report := renderDNS(full, dur, rounds, dyad, forwarders, results)
	fmt.Print(report)
	if full {
		if err := os.WriteFile("RESULTS-dns.md", []byte(report), 0o644); err != nil {
			t.Errorf("writing RESULTS-dns.md: %v", err)
		}
	}
}

// measureDNS starts forwarder f and measures it.
func measureDNS(t *testing.T, n *testnet.Net, f dnsForwarder, dir, stub, upstream, warm, cold, primed string, dur int) dnsResult {
	t.Helper()
	fdir := filepath.Join(dir, f.name)
	os.MkdirAll(fdir, 0o755)
	argv, err := f.argv(fdir, stub, upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := n.Start(t, n.Client, "taskset", append([]string{"-c", "1"}, argv...)...)
	if !testnet.WaitFor(10*time.Second, func() bool {
		out, err := n.Run(t, n.Client, "kdig", "+short", "+time=1", "+retry=0", "@"+stub, "ready.example.test.", "A")
		return err == nil && strings.TrimSpace(string(out)) == "192.0.2.1"
	}) {
		t.Fatalf("%s does not answer:\n%s", f.name, p.Output())
	}
	// stream runs dnsperf over file for dur seconds with outstanding
	// queries at most, recorded by perf when asked, and returns what it
	// measured and the forwarder's CPU time per answer.
	stream := func(phase, file, outstanding string) (testnet.DnsperfStats, time.Duration) {
		cpu0 := treeCPU(t, p.Pid())
		stopPerf := startPerf(t, f.name, phase, p.Pid())
		res := dnsperfRun(t, n, stub, file, "-l", strconv.Itoa(dur), "-c", "4", "-q", outstanding)
		stopPerf()
		// dnsperfRun fails the test when nothing completed.
		return res, (treeCPU(t, p.Pid()) - cpu0) / time.Duration(res.Completed)
	}
	var r dnsResult
	dnsperfRun(t, n, stub, warm, "-n", "1") // the cache primed
	res, perAnswer := stream("warm", warm, "200")
	r.warmQPS, r.cpuPerAnswer = res.QPS, perAnswer
	for range latencyRuns {
		r.lats = append(r.lats, dnsperfLatency(t, n, stub, warm, dur))
	}
	idle0 := cpuIdle(t, 0)
	res, perAnswer = stream("cold", cold, "500")
	r.coldCPU0 = 1 - float64(cpuIdle(t, 0)-idle0)/float64(time.Duration(dur)*time.Second)
	r.coldQPS, r.coldCPUPerAnswer = res.QPS, perAnswer
	dnsperfRun(t, n, stub, primed, "-n", "1", "-q", "200")
	if r.mem, err = treeMemory(p.Pid()); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	return r
}

// medianDNS is the median of each figure of rs, with the latency runs of
// all of them.
func medianDNS(rs []dnsResult) dnsResult {
	var lats []latencies
	for _, r := range rs {
		lats = append(lats, r.lats...)
	}
	d := func(get func(r dnsResult) time.Duration) time.Duration {
		return time.Duration(medianOf(rs, func(r dnsResult) float64 { return float64(get(r)) }))
	}
	return dnsResult{
		warmQPS:          medianOf(rs, func(r dnsResult) float64 { return r.warmQPS }),
		coldQPS:          medianOf(rs, func(r dnsResult) float64 { return r.coldQPS }),
		cpuPerAnswer:     d(func(r dnsResult) time.Duration { return r.cpuPerAnswer }),
		coldCPUPerAnswer: d(func(r dnsResult) time.Duration { return r.coldCPUPerAnswer }),
		coldCPU0:         medianOf(rs, func(r dnsResult) float64 { return r.coldCPU0 }),
		lats:             lats,
		mem: memSample{
			rss:     int(medianOf(rs, func(r dnsResult) float64 { return float64(r.mem.rss) })),
			pss:     int(medianOf(rs, func(r dnsResult) float64 { return float64(r.mem.pss) })),
			private: int(medianOf(rs, func(r dnsResult) float64 { return float64(r.mem.private) })),
			biggest: int(medianOf(rs, func(r dnsResult) float64 { return float64(r.mem.biggest) })),
		},
	}
}

// medianOf is the median of get over xs.
func medianOf[T any](xs []T, get func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = get(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// startRedirectUpstream runs unbound in the server's namespace answering
// every name under example.test. with 192.0.2.1, TTL 3600.
func startRedirectUpstream(t *testing.T, n *testnet.Net) {
	t.Helper()
	conf := testnet.UnboundConf(t, n.ServerAddr.Addr().String(), 53, []string{`module-config: "iterator"`, `local-zone: "test." nodefault`,
		`local-zone: "example.test." redirect`, `local-data: "example.test. 3600 IN A 192.0.2.1"`, `local-zone: "." refuse`})
	n.Start(t, n.Server, "taskset", "-c", "0", "unbound", "-d", "-c", conf)
}

// queryFile writes count queries for A records of distinct names.
func queryFile(t *testing.T, dir, name, prefix string, count int) string {
	t.Helper()
	var b bytes.Buffer
	for i := range count {
		fmt.Fprintf(&b, "%s%d.example.test A\n", prefix, i)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dnsperfRun runs dnsperf on CPU 0 in the client's namespace.
func dnsperfRun(t *testing.T, n *testnet.Net, stub, file string, args ...string) testnet.DnsperfStats {
	t.Helper()
	out, err := n.Run(t, n.Client, "taskset", append([]string{"-c", "0", "dnsperf", "-s", stub, "-d", file, "-t", "2", "-b", "4096"}, args...)...)
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	st, err := testnet.ParseDnsperf(out)
	if err != nil || st.Completed == 0 {
		t.Fatalf("dnsperf completed nothing: %v\n%s", err, out)
	}
	return st
}

// dnsperfLatency runs dnsperf at 20,000 queries a second, reporting each
// query (-v), and reads the latencies.
func dnsperfLatency(t *testing.T, n *testnet.Net, stub, file string, dur int) latencies {
	t.Helper()
	// dnsperf -v writes a line an answer. Into a file, not a pipe: this
	// process reading a pipe as it fills would wake 20,000 times a second,
	// on the forwarder's CPU as often as not, and be measured with it.
	lines, err := os.CreateTemp("", "dnsperf-latency-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(lines.Name())
	defer lines.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(dur)*time.Second+time.Minute)
	defer cancel()
	cmd := n.Command(ctx, n.Client, "taskset", "-c", "0", "dnsperf", "-s", stub, "-d", file, "-t", "2", "-b", "4096", "-Q", "20000", "-l", strconv.Itoa(dur), "-v")
	cmd.Stdout, cmd.Stderr = lines, lines
	if err := cmd.Run(); err != nil {
		t.Fatalf("dnsperf: %v", err)
	}
	out, err := os.ReadFile(lines.Name())
	if err != nil {
		t.Fatal(err)
	}
	// "> NOERROR w1.example.test A 0.000123"
	var ds []time.Duration
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 5 && f[0] == ">" {
			if v, err := strconv.ParseFloat(f[4], 64); err == nil {
				ds = append(ds, time.Duration(v*1e9))
			}
		}
	}
	if len(ds) == 0 {
		t.Fatalf("no latencies in dnsperf -v's output:\n%.2000s", out)
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	q := func(f float64) time.Duration { return ds[min(len(ds)-1, int(f*float64(len(ds))))] }
	return latencies{avg: sum / time.Duration(len(ds)), p50: q(0.5), p99: q(0.99), p999: q(0.999)}
}

// cpuIdle is how long CPU cpu has been idle since boot (/proc/stat).
func cpuIdle(t *testing.T, cpu int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("cpu%d", cpu)
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		// cpuN user nice system idle iowait ...
		if len(f) > 5 && f[0] == name {
			idle, _ := strconv.ParseInt(f[4], 10, 64)
			iowait, _ := strconv.ParseInt(f[5], 10, 64)
			return time.Duration(idle+iowait) * time.Second / 100 // USER_HZ
		}
	}
	t.Fatalf("no %s in /proc/stat", name)
	return 0
}

// startPerf records the process tree of root with perf, when envBenchPerf
// asks for it, until the function it returns is called.
func startPerf(t *testing.T, forwarder, phase string, root int) (stop func()) {
	t.Helper()
	dir := os.Getenv(envBenchPerf)
	if dir == "" {
		return func() {}
	}
	ps, err := procs()
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, pid := range tree(ps, root) {
		pids = append(pids, strconv.Itoa(pid))
	}
	out := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.data", strings.ReplaceAll(forwarder, " ", "_"), phase, time.Now().UnixNano()))
	cmd := exec.Command("perf", "record", "-q", "-g", "-o", out, "-p", strings.Join(pids, ","))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("perf: %v", err)
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait() // an error: the interrupt
		t.Logf("perf record of %s, %s (pids %s): %s", forwarder, phase, strings.Join(pids, ","), out)
	}
}

// treeCPU is the user and system time of root's process tree.
func treeCPU(t *testing.T, root int) time.Duration {
	t.Helper()
	ps, err := procs()
	if err != nil {
		t.Fatal(err)
	}
	var ticks int64
	for _, pid := range tree(ps, root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		// After the command: state is 0, utime 11, stime 12.
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func renderDNS(full bool, dur, rounds int, dyad string, fs []dnsForwarder, rs map[string]dnsResult) string {
	var b strings.Builder
	if c := os.Getenv(envCmd); full && c != "" {
		fmt.Fprintf(&b, "Command: `%s` (that is, `%s`)\n\n", c, goTestCmd)
	} else if full {
		fmt.Fprintf(&b, "Command: `%s`\n\n", goTestCmd)
	} else {
		b.WriteString("Command: `go test -run TestBenchDNS ./bench/` (smoke run: a second a measure; `make bench` for figures)\n\n")
	}
	b.WriteString("# Caching DNS forwarders in front of the same upstream\n\n")
	fmt.Fprintf(&b, "- %s, %d CPUs, %s; dyad-dns: %s%s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), dyad, binaryNote(dyad))
	fmt.Fprintf(&b, "- The upstream: unbound answering every name of example.test. (a redirect zone), in a namespace of its own, over a veth pair. Each forwarder in turn, pinned to CPU 1; dnsperf pinned to CPU 0. Warm: 1000 names, cached first, %d s at up to 200 queries outstanding, 4 clients. CPU per answer: the forwarder's user and system time (all its processes) over the answers. Latency: warm, at 20,000 queries a second, %d s, each query's (dnsperf -v), %d times a round. Cold: names never asked, %d s, 500 outstanding; CPU 0 busy is how much of CPU 0, where dnsperf and the upstream run, was in use meanwhile (near 100%%, the forwarder is not what bounds the figure). Memory: with 10,000 names cached, summed over the forwarder's processes: RSS counts a page once for each process that maps it (dyad-dns's three map the same binary), PSS shares it out among them, private counts only the pages no other process maps; and the RSS of the largest process. %d rounds, each forwarder once a round, started afresh; each figure is the median of its rounds (latency's, of all their runs).\n\n", dur, dur, latencyRuns, dur, rounds)
	d := rs["dyad-dns"]
	b.WriteString("| forwarder | command | warm qps | CPU per answer | CPU / dyad-dns's | avg | p50 | p99 | p99.9 | cold qps | cold / dyad-dns's | cold CPU per answer | CPU 0 busy, cold | RSS MiB | PSS MiB | private MiB | largest process RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range fs {
		r := rs[f.name]
		lat := r.latency()
		fmt.Fprintf(&b, "| %s | `%s` | %.0f | %.2f µs | %.2f | %s | %s | %s | %s | %.0f | %.2f | %.2f µs | %.0f%% | %.1f | %.1f | %.1f | %.1f |\n", f.name, f.shown, r.warmQPS, us(r.cpuPerAnswer),
			float64(r.cpuPerAnswer)/float64(d.cpuPerAnswer), ms3(lat.avg), ms3(lat.p50), ms3(lat.p99), ms3(lat.p999), r.coldQPS, r.coldQPS/d.coldQPS, us(r.coldCPUPerAnswer), 100*r.coldCPU0, mib(r.mem.rss), mib(r.mem.pss), mib(r.mem.private), mib(r.mem.biggest))
	}
	return b.String()
}

// ms3 is a latency in milliseconds, to the microsecond.
func ms3(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
