package ntp_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/daemons/ntp"
	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/privsep/backend"
)

// Integration tests: the real binary against chronyd servers (their clocks
// shifted with faketime) in network namespaces the tests create, inside
// private mount, UTS and PID namespaces (testnet.Isolate). The clock the
// daemon disciplines is the simulated one: the host's is never changed.

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// binary returns the dyad-ntp to test.
func binary(t *testing.T) string {
	return testnet.Binary(t, "dyad-ntp", "github.com/dyad-project/dyad/daemons/ntp/cmd/dyad-ntp")
}

// servers starts a chronyd for each shift, each in its own namespace,
// all reached from one client namespace; it returns the Nets (the first
// one's Client is the client's namespace).
func servers(t *testing.T, shifts ...time.Duration) []*testnet.Net {
	t.Helper()
	testnet.RequireRoot(t)
	var nets []*testnet.Net
	for i, s := range shifts {
		c := testnet.Config{ClientIf: fmt.Sprintf("veth%d", i)}
		if i > 0 {
			c.Client = nets[0].Client
		}
		n := testnet.NewNetConfig(t, c)
		n.AddClientAddress(t)
		n.StartChrony(t, testnet.ChronyOptions{Shift: s})
		nets = append(nets, n)
	}
	return nets
}

func addrs(nets []*testnet.Net) []string {
	var a []string
	for _, n := range nets {
		a = append(a, n.ServerAddr.Addr().String())
	}
	return a
}

// daemon is one run of dyad-ntp with a simulated clock, its paths in a
// temporary directory.
type daemon struct {
	*testnet.Proc
	run, simLog string
}

func startDaemon(t *testing.T, n *testnet.Net, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{run: filepath.Join(dir, "run"), simLog: filepath.Join(dir, "clock.log")}
	full := append([]string{"-d", "-f", "/dev/null", "--run-dir", d.run, "--dhcp-servers", "none",
		"--simulate-clock", d.simLog}, args...)
	d.Proc = n.Start(t, n.Client, binary(t), full...)
	return d
}

// clockOp is a line of the simulated clock's log.
type clockOp struct {
	Time int64           `json:"time"`
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args"`
}

func (d *daemon) ops(t *testing.T) []clockOp {
	t.Helper()
	f, err := os.Open(d.simLog)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ops []clockOp
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var op clockOp
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			t.Fatalf("simulated clock log: %v: %q", err, sc.Text())
		}
		ops = append(ops, op)
	}
	return ops
}

// steps returns the offsets of the steps the simulated clock took.
func (d *daemon) steps(t *testing.T) []time.Duration {
	var out []time.Duration
	for _, op := range d.ops(t) {
		if op.Op == "clock.step" {
			var s struct{ Offset int64 }
			json.Unmarshal(op.Args, &s)
			out = append(out, time.Duration(s.Offset))
		}
	}
	return out
}

// status reads the status socket; a daemon still starting has none, and
// gives the zero Status.
func (d *daemon) status(t *testing.T) ntp.Status {
	t.Helper()
	out, err := exec.Command(binary(t), "status", "--run-dir", d.run).CombinedOutput()
	if err != nil {
		return ntp.Status{}
	}
	var st ntp.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

func near(a, b, tol time.Duration) bool { d := a - b; return d >= -tol && d <= tol }

// TestQuery: dyad-ntp -q against a server 2.5 s ahead prints its offset,
// and changes nothing.
func TestQuery(t *testing.T) {
	nets := servers(t, 2500*time.Millisecond)
	n := nets[0]
	out, err := n.Run(t, n.Client, binary(t), "-q", "-f", "/dev/null", "--dhcp-servers", "none", addrs(nets)[0])
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var off float64
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "offset "); ok {
			fmt.Sscanf(rest, "%f", &off)
		}
	}
	if !near(time.Duration(off*1e9), 2500*time.Millisecond, time.Millisecond) {
		t.Errorf("offset %f s, want 2.5 s ± 1 ms:\n%s", off, out)
	}
}

// TestQueryUnprivileged: dyad-ntp -q needs no privilege, as ntpdate -q:
// run as nobody, with no capability at all, it measures the server.
func TestQueryUnprivileged(t *testing.T) {
	testnet.RequireTools(t, "setpriv")
	nets := servers(t, 2500*time.Millisecond)
	n := nets[0]
	// A copy nobody may run: the build's directory is root's alone.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dyad-ntp")
	b, err := os.ReadFile(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := n.Run(t, n.Client, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		bin, "-q", "-f", "/dev/null", "--dhcp-servers", "none", addrs(nets)[0])
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "offset +2.5") {
		t.Errorf("no offset of 2.5 s:\n%s", out)
	}
}

// TestStep: with -1, a server 2.5 s ahead, or 30 s behind, gives one step
// of its shift in the simulated clock, and the daemon exits 0.
func TestStep(t *testing.T) {
	for _, shift := range []time.Duration{2500 * time.Millisecond, -30 * time.Second} {
		t.Run(shift.String(), func(t *testing.T) {
			nets := servers(t, shift)
			d := startDaemon(t, nets[0], append([]string{"-1", "-t", "20"}, addrs(nets)...)...)
			if err := d.Wait(30 * time.Second); err != nil || d.ExitCode() != 0 {
				t.Fatalf("dyad-ntp -1: %v, exit %d\n%s", err, d.ExitCode(), d.Output())
			}
			s := d.steps(t)
			if len(s) != 1 || !near(s[0], shift, time.Millisecond) {
				t.Errorf("steps %v, want one of %s ± 1ms", s, shift)
			}
		})
	}
}

// TestFalseticker: of three servers, one 10 s ahead of the other two, the
// majority wins and the third is a falseticker in the status.
func TestFalseticker(t *testing.T) {
	nets := servers(t, 2*time.Second, 2*time.Second, 12*time.Second)
	d := startDaemon(t, nets[0], append([]string{"--minpoll", "-1"}, addrs(nets)...)...)
	var st ntp.Status
	if !testnet.WaitFor(20*time.Second, func() bool {
		if len(d.steps(t)) == 0 {
			return false
		}
		st = d.status(t)
		return len(st.Sources) == 3 && st.Sources[2].Verdict == ntp.VerdictFalseticker
	}) {
		t.Fatalf("no step, or no falseticker: steps %v, status %+v\n%s", d.steps(t), st, d.Output())
	}
	if s := d.steps(t); !near(s[0], 2*time.Second, time.Millisecond) {
		t.Errorf("stepped %s, want the majority's 2s", s[0])
	}
	for _, s := range st.Sources[:2] {
		if s.Verdict != ntp.VerdictSelected {
			t.Errorf("%s: verdict %q, want selected", s.Name, s.Verdict)
		}
	}
}

// TestLostSource: a server that stops answering becomes unreachable and
// the others carry on.
func TestLostSource(t *testing.T) {
	nets := servers(t, 0, 0, 0)
	d := startDaemon(t, nets[0], append([]string{"--minpoll", "-2"}, addrs(nets)...)...)
	if !testnet.WaitFor(20*time.Second, func() bool { st := d.status(t); return st.Synced && len(st.Sources) == 3 }) {
		t.Fatalf("not synchronised\n%s", d.Output())
	}
	// Stop the third server: its link goes down.
	if out, err := nets[2].Run(t, nets[2].Server, "ip", "link", "set", nets[2].ServerIf, "down"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var st ntp.Status
	if !testnet.WaitFor(30*time.Second, func() bool {
		st = d.status(t)
		return len(st.Sources) == 3 && st.Sources[2].Verdict == ntp.VerdictUnreachable && st.Sources[0].Verdict == ntp.VerdictSelected && st.Sources[1].Verdict == ntp.VerdictSelected
	}) {
		t.Fatalf("status %+v: want the third unreachable and the others selected\n%s", st, d.Output())
	}
}

// TestPanicThreshold: once the clock is set, a server that jumps by more
// than the panic threshold is refused, and the clock is not stepped.
func TestPanicThreshold(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	first := n.StartChrony(t, testnet.ChronyOptions{Shift: 3 * time.Second})
	d := startDaemon(t, n, "--minpoll", "-1", n.ServerAddr.Addr().String())
	if !testnet.WaitFor(20*time.Second, func() bool { return len(d.steps(t)) == 1 }) {
		t.Fatalf("no first step\n%s", d.Output())
	}
	// The same server, now 2000 s ahead.
	first.Stop()
	n.StartChrony(t, testnet.ChronyOptions{Shift: 2000 * time.Second})
	if !testnet.WaitFor(30*time.Second, func() bool {
		last := d.status(t).Last
		return last != nil && last.Kind == ntp.AdjustRefused
	}) {
		t.Fatalf("no refusal: status %+v\n%s", d.status(t), d.Output())
	}
	if s := d.steps(t); len(s) != 1 {
		t.Errorf("steps %v: the jump of 2000 s was applied", s)
	}
}

// TestRateLimitingServer: a server that rate-limits with Kiss-o'-Death
// (ntpsec's ntpd with "restrict default limited kod", as chrony 4.3's
// ratelimit only drops) makes the engine back off. Polled every 1/64 s,
// it kisses RATE; the engine doubles the source's interval at each kiss,
// keeps the longer interval, and goes on taking the server's time.
func TestRateLimitingServer(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	n.StartRateLimitedNtpsec(t)
	d := startDaemon(t, n, "--minpoll", "-6", n.ServerAddr.Addr().String())
	if !d.WaitLog("server asks to be polled less often", 30*time.Second) {
		t.Fatalf("no Kiss-o'-Death RATE within 30 s of polling every 1/64 s\n%s", d.Output())
	}
	// ntpsec allows one packet a second on average: the engine ends
	// polling at 1 s or more, and the server answers it again.
	var src ntp.SourceStatus
	if !testnet.WaitFor(30*time.Second, func() bool {
		st := d.status(t)
		if len(st.Sources) != 1 {
			return false
		}
		src = st.Sources[0]
		return st.Synced && src.Poll >= time.Second && src.Verdict == ntp.VerdictSelected && !strings.Contains(src.Error, "kiss")
	}) {
		t.Fatalf("source %+v: want it polled every second or less often, and answering\n%s", src, d.Output())
	}
	// From now on the server has no cause to kiss again, and at most
	// one query an interval reaches it, where 1/64 s would make 768 in
	// the window.
	const window = 12 * time.Second
	const kissed = "server asks to be polled less often"
	kisses := strings.Count(string(d.Output()), kissed)
	before := n.UDPDatagramsIn(t, n.Server)
	time.Sleep(window)
	got := n.UDPDatagramsIn(t, n.Server) - before
	if limit := uint64(window/src.Poll) + 2; got > limit {
		t.Errorf("%d queries reached the server in %s at a poll of %s: want at most %d", got, window, src.Poll, limit)
	}
	if more := strings.Count(string(d.Output()), kissed) - kisses; more > 0 {
		t.Errorf("%d more kisses in %s after backing off to %s: the engine went back to polling faster\n%s", more, window, src.Poll, d.Output())
	}
	if st := d.status(t); len(st.Sources) != 1 || st.Sources[0].Verdict != ntp.VerdictSelected || st.Sources[0].Reach == "0" {
		t.Errorf("after backing off: status %+v, want the source still selected", st)
	}
	var kissedPolls []string
	for _, m := range regexp.MustCompile(kissed+`.*? poll=(\S+)`).FindAllStringSubmatch(string(d.Output()), -1) {
		kissedPolls = append(kissedPolls, m[1])
	}
	t.Logf("the kisses set the poll to %v; backed off to a poll of %s; %d queries reached the server in %s", kissedPolls, src.Poll, got, window)
}

// TestNamesAndReresolution: servers named in /etc/hosts (a private copy,
// in this test's mount namespace) are resolved by the engine; when the
// server behind a name stops answering, the name is resolved again, and
// the new address is polled.
func TestNamesAndReresolution(t *testing.T) {
	nets := servers(t, 0, 0)
	hosts := filepath.Join(t.TempDir(), "hosts")
	writeHosts := func(addr string) {
		t.Helper()
		// Rewritten in place: the bind mount holds this inode.
		if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"+addr+" time.dyad.test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeHosts(addrs(nets)[0])
	if err := unix.Mount(hosts, "/etc/hosts", "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount("/etc/hosts", unix.MNT_DETACH) })

	d := startDaemon(t, nets[0], "--minpoll", "-2", "time.dyad.test")
	polled := func(addr string) bool {
		st := d.status(t)
		return len(st.Sources) == 1 && st.Sources[0].Name == "time.dyad.test" && strings.HasPrefix(st.Sources[0].Address, addr+":") &&
			st.Sources[0].Verdict == ntp.VerdictSelected
	}
	if !testnet.WaitFor(20*time.Second, func() bool { return polled(addrs(nets)[0]) }) {
		t.Fatalf("the name was not resolved and polled: %+v\n%s", d.status(t), d.Output())
	}
	// The name moves to the second server, and the first goes silent.
	writeHosts(addrs(nets)[1])
	if out, err := nets[0].Run(t, nets[0].Server, "ip", "link", "set", nets[0].ServerIf, "down"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !testnet.WaitFor(40*time.Second, func() bool { return polled(addrs(nets)[1]) }) {
		t.Fatalf("the name was not resolved again when its server was lost: %+v\n%s", d.status(t), d.Output())
	}
}

// TestServersFromDHCP: with no server configured, dyad-ntp polls those
// the DHCP client wrote (dyad-dhcp's list), and follows the list when a
// new lease changes it.
func TestServersFromDHCP(t *testing.T) {
	nets := servers(t, 0, 0)
	// As /run/dyad/dhcp: the engine's user may read it.
	top := t.TempDir()
	list := filepath.Join(top, "dhcp", "ntp.conf")
	if err := os.MkdirAll(filepath.Dir(list), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{top, filepath.Dir(top)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(addr string) {
		t.Helper()
		b, err := backend.RenderNTPServers(privsep.NTPServers{Servers: []netip.Addr{netip.MustParseAddr(addr)}}, "dyad-dhcp")
		if err != nil {
			t.Fatal(err)
		}
		if err := backend.WriteFile(list, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(addrs(nets)[0])
	dir := t.TempDir()
	d := &daemon{run: filepath.Join(dir, "run"), simLog: filepath.Join(dir, "clock.log")}
	d.Proc = nets[0].Start(t, nets[0].Client, binary(t), "-d", "-f", "/dev/null", "--run-dir", d.run, "--dhcp-servers", list, "--simulate-clock", d.simLog, "--minpoll", "-1")
	from := func(addr string) bool {
		st := d.status(t)
		return len(st.Sources) == 1 && st.Sources[0].Origin == ntp.OriginDHCP && st.Sources[0].Address == addr+":123" && st.Sources[0].Verdict == ntp.VerdictSelected
	}
	if !testnet.WaitFor(20*time.Second, func() bool { return from(addrs(nets)[0]) }) {
		t.Fatalf("the DHCP client's server is not polled: %+v\n%s", d.status(t), d.Output())
	}
	write(addrs(nets)[1])
	if !testnet.WaitFor(30*time.Second, func() bool { return from(addrs(nets)[1]) }) {
		t.Fatalf("the new list was not followed: %+v\n%s", d.status(t), d.Output())
	}
}

// TestOnceTimesOut: -1 with no server answering gives up at its timeout,
// and says so.
func TestOnceTimesOut(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	d := startDaemon(t, n, "-1", "-t", "3", n.ServerAddr.Addr().String())
	if err := d.Wait(20 * time.Second); errors.Is(err, testnet.ErrRunning) {
		t.Fatalf("dyad-ntp -1 -t 3 did not stop: %v", err)
	}
	if d.ExitCode() == 0 || !strings.Contains(string(d.Output()), "the clock was not set within 3s") {
		t.Errorf("exit %d, want a failure saying why:\n%s", d.ExitCode(), d.Output())
	}
	if len(d.steps(t)) != 0 {
		t.Error("a step without a server")
	}
}
