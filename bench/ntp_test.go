package bench

import (
	"context"
	"fmt"
	"os"
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

// ntpShift is the error faketime gives the server's clock: what every
// client should measure.
const ntpShift = 2500 * time.Millisecond

// ntpClient is one way to ask a server for the offset once.
type ntpClient struct {
	name, shown string
	args        func(server string) []string
	// offset finds the measured offset in the output.
	offset *regexp.Regexp
}

func ntpClients(dyad string) []ntpClient {
	num := `([-+]?[0-9]+\.[0-9]+)`
	return []ntpClient{
		{name: "dyad-ntp", shown: "dyad-ntp -q SERVER",
			args:   func(s string) []string { return []string{dyad, "-q", "-f", "/dev/null", "--dhcp-servers", "none", s} },
			offset: regexp.MustCompile(`(?m)^offset ` + num + ` s`)},
		{name: "chronyd -Q", shown: "chronyd -Q 'server SERVER iburst'",
			args: func(s string) []string {
				return []string{"chronyd", "-Q", "-f", "/dev/null", "server " + s + " iburst"}
			},
			offset: regexp.MustCompile(`System clock wrong by ` + num + ` seconds`)},
		{name: "chronyd -Q, polls of 1/64 s", shown: "chronyd -Q 'server SERVER iburst minpoll -6 maxpoll -6'",
			args: func(s string) []string {
				return []string{"chronyd", "-Q", "-f", "/dev/null", "server " + s + " iburst minpoll -6 maxpoll -6"}
			},
			offset: regexp.MustCompile(`System clock wrong by ` + num + ` seconds`)},
		{name: "ntpdate -q", shown: "ntpdate -q SERVER",
			args:   func(s string) []string { return []string{"ntpdate", "-q", s} },
			offset: regexp.MustCompile(`\) ` + num + ` \+/-`)},
		{name: "ntpdig", shown: "ntpdig SERVER",
			args:   func(s string) []string { return []string{"ntpdig", s} },
			offset: regexp.MustCompile(`\) ` + num + ` \+/-`)},
	}
}

// ntpRun is one query's error and time.
type ntpRun struct {
	err  time.Duration // |measured - ntpShift|
	took time.Duration
}

// TestBenchNTP asks a chronyd whose clock is 2.5 s ahead (faketime) for
// the offset, with dyad-ntp -q and with chronyd -Q, ntpdate -q and ntpdig,
// interleaved: each one's median absolute error and time to answer. Then
// the memory of dyad-ntp's service (all its processes, with a simulated
// clock) and of chronyd as a client of the same server. Without
// DYAD_BENCH=1 it is a smoke test: one run of each.
func TestBenchNTP(t *testing.T) {
	testnet.RequireIsolated(t)
	testnet.RequireTools(t, "chronyd", "faketime", "ntpdate", "ntpdig")
	runs := 1
	full := os.Getenv(envBench) == "1"
	if full {
		runs = 10
	}
	dyad := binary(t, "dyad-ntp", "github.com/dyad-project/dyad/daemons/ntp/cmd/dyad-ntp")
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	n.StartChrony(t, testnet.ChronyOptions{Shift: ntpShift})
	server := n.ServerAddr.Addr().String()

	clients := ntpClients(dyad)
	got := map[string][]ntpRun{}
	for round := range runs {
		for i := range clients {
			c := clients[(i+round)%len(clients)]
			r, err := ntpOnce(t, n, c, server)
			if err != nil {
				t.Fatalf("%s, round %d: %v", c.name, round, err)
			}
			got[c.name] = append(got[c.name], r)
		}
	}
	dyadMem, chronyMem := ntpMemory(t, n, dyad, server)

	report := renderNTP(full, runs, dyad, clients, got, dyadMem, chronyMem)
	fmt.Print(report)
	if full {
		if err := os.WriteFile("RESULTS-ntp.md", []byte(report), 0o644); err != nil {
			t.Errorf("writing RESULTS-ntp.md: %v", err)
		}
	}
}

// ntpOnce runs one query in the client's namespace.
func ntpOnce(t *testing.T, n *testnet.Net, c ntpClient, server string) (ntpRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := c.args(server)
	cmd := n.Command(ctx, n.Client, args[0], args[1:]...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return ntpRun{}, fmt.Errorf("%v\n%s", err, out)
	}
	m := c.offset.FindSubmatch(out)
	if m == nil {
		return ntpRun{}, fmt.Errorf("no offset in:\n%s", out)
	}
	off, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return ntpRun{}, err
	}
	e := time.Duration(off*1e9) - ntpShift
	return ntpRun{err: max(e, -e), took: took}, nil
}

// ntpMemory measures the RSS of dyad-ntp's service and of chronyd as a
// client, each once synchronised to the server and a second later.
func ntpMemory(t *testing.T, n *testnet.Net, dyad, server string) (dyadMem, chronyMem memSample) {
	t.Helper()
	dir, err := os.MkdirTemp("", "dyad-bench-ntp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := n.Start(t, n.Client, dyad, "-f", "/dev/null", "--dhcp-servers", "none", "--run-dir", filepath.Join(dir, "run"),
		"--simulate-clock", filepath.Join(dir, "clock.log"), "--minpoll", "-1", server)
	if !d.WaitLog(`msg="stepping the clock"`, 30*time.Second) {
		t.Fatalf("dyad-ntp did not step its clock:\n%s", d.Output())
	}
	time.Sleep(time.Second)
	if dyadMem, err = treeMemory(d.Pid()); err != nil {
		t.Fatal(err)
	}
	d.Stop()

	conf := filepath.Join(dir, "chrony-client.conf")
	body := fmt.Sprintf("server %s iburst minpoll -1 maxpoll -1\ncmdport 0\npidfile %s\n", server, filepath.Join(dir, "chronyd-client.pid"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// -x: it measures, and never touches a clock.
	c := n.Start(t, n.Client, "chronyd", "-d", "-x", "-f", conf)
	if !c.WaitLog("Selected source", 30*time.Second) {
		t.Fatalf("chronyd did not select its source:\n%s", c.Output())
	}
	time.Sleep(time.Second)
	if chronyMem, err = treeMemory(c.Pid()); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	return dyadMem, chronyMem
}

func renderNTP(full bool, runs int, dyad string, clients []ntpClient, got map[string][]ntpRun, dyadMem, chronyMem memSample) string {
	var b strings.Builder
	if c := os.Getenv(envCmd); full && c != "" {
		fmt.Fprintf(&b, "Command: `%s` (that is, `%s`)\n\n", c, goTestCmd)
	} else if full {
		fmt.Fprintf(&b, "Command: `%s`\n\n", goTestCmd)
	} else {
		b.WriteString("Command: `go test -run TestBenchNTP ./bench/` (smoke run: one run each; `make bench` for figures)\n\n")
	}
	b.WriteString("# NTP clients: one measurement of a server 2.5 s ahead\n\n")
	fmt.Fprintf(&b, "- %s, %d CPUs, %s; dyad-ntp: %s%s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), dyad, binaryNote(dyad))
	fmt.Fprintf(&b, "- The server: chronyd serving its own clock (`local stratum 1`), shifted by +2.5 s with faketime, over a veth pair between two network namespaces. Error: |measured offset - 2.5 s|. Time: from the start of the command to its exit. %d runs each, interleaved round-robin with the order rotating each round.\n\n", runs)
	dyadMed := medianRun(got["dyad-ntp"])
	b.WriteString("| client | command | median error | max error | median time | time / dyad-ntp's |\n|---|---|---:|---:|---:|---:|\n")
	for _, c := range clients {
		rs := got[c.name]
		m := medianRun(rs)
		maxErr := slices.MaxFunc(rs, func(a, b ntpRun) int { return int(a.err - b.err) }).err
		fmt.Fprintf(&b, "| %s | `%s` | %.1f µs | %.1f µs | %s | %.2f |\n", c.name, c.shown, us(m.err), us(maxErr), ms(m.took), float64(m.took)/float64(dyadMed.took))
	}
	b.WriteString("\nMemory once synchronised (RSS and PSS from /proc/PID/smaps_rollup, summed over the process tree, one sample):\n\n")
	b.WriteString("| daemon | processes | RSS MiB | PSS MiB |\n|---|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| dyad-ntp (supervisor, actuator, engine; simulated clock) | %d | %.1f | %.1f |\n", dyadMem.procs, mib(dyadMem.rss), mib(dyadMem.pss))
	fmt.Fprintf(&b, "| chronyd -x as a client | %d | %.1f | %.1f |\n", chronyMem.procs, mib(chronyMem.rss), mib(chronyMem.pss))
	return b.String()
}

// medianRun is the run of median time, with the median error.
func medianRun(rs []ntpRun) ntpRun {
	errs := make([]time.Duration, len(rs))
	took := make([]time.Duration, len(rs))
	for i, r := range rs {
		errs[i], took[i] = r.err, r.took
	}
	return ntpRun{err: median(errs), took: median(took)}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
