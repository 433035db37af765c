package testnet_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// TestIsolate checks that the tests run where Isolate promised: first
// process of their own PID namespace, with private mounts, their own /run
// and resolv.conf.
func TestIsolate(t *testing.T) {
	testnet.RequireRoot(t)
	if pid := os.Getpid(); pid != 1 {
		t.Errorf("pid %d, want 1 (the first process of a new PID namespace)", pid)
	}
	mounts := readMountInfo(t)
	root, ok := mounts["/"]
	if !ok {
		t.Fatal("no / in /proc/self/mountinfo")
	}
	if strings.Contains(root.optional, "shared:") {
		t.Errorf("/ is a shared mount (%q): mounts would propagate to the host", root.optional)
	}
	if m, ok := mounts["/run"]; !ok || m.fstype != "tmpfs" {
		t.Errorf("/run: %+v, want a tmpfs of its own", m)
	}
	if tmp := os.TempDir(); !strings.HasPrefix(tmp, "/run/") || mounts[tmp].fstype != "tmpfs" {
		t.Errorf("TMPDIR %s (%+v), want a tmpfs of its own under /run", tmp, mounts[tmp])
	}
	if m, ok := mounts["/proc"]; !ok || m.fstype != "proc" {
		t.Errorf("/proc: %+v, want a proc mount", m)
	}
	if fi, err := os.Lstat("/etc/resolv.conf"); err == nil && fi.Mode().IsRegular() {
		if _, ok := mounts["/etc/resolv.conf"]; !ok {
			t.Error("/etc/resolv.conf is the host's, not a private copy")
		}
	}
	// The UTS namespace is ours: setting the host name is harmless.
	if err := syscall.Sethostname([]byte("dyad-testnet")); err != nil {
		t.Errorf("sethostname: %v", err)
	}
}

type mount struct{ fstype, optional string }

// readMountInfo returns the last mount at each mount point (the visible one).
func readMountInfo(t *testing.T) map[string]mount {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := make(map[string]mount)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent major:minor root mountpoint options optional... - fstype source superoptions
		before, after, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f := strings.Fields(before)
		if len(f) < 6 {
			continue
		}
		mounts[f[4]] = mount{fstype: strings.Fields(after)[0], optional: strings.Join(f[6:], " ")}
	}
	return mounts
}

func TestNewNet(t *testing.T) {
	n := testnet.NewNet(t)
	srv := n.ServerAddr.Addr()

	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	for _, ns := range []string{n.Server, n.Client} {
		if !bytes.Contains(out, []byte(ns)) {
			t.Errorf("ip netns list does not show %s:\n%s", ns, out)
		}
	}
	if got := n.Addrs(t, n.Server, n.ServerIf); !slices.Equal(got, []netip.Prefix{n.ServerAddr}) {
		t.Errorf("server addresses %v, want %v", got, n.ServerAddr)
	}
	if got := n.Addrs(t, n.Client, n.ClientIf); len(got) != 0 {
		t.Errorf("client addresses %v, want none", got)
	}
	link := n.Link(t, n.Client, n.ClientIf)
	if !link.Up || !bytes.Equal(link.MAC, n.ClientMAC) || link.MTU != 1500 {
		t.Errorf("client link %+v, want up, MAC %v, MTU 1500", link, n.ClientMAC)
	}

	// Before the client has an address, the server is unreachable.
	if out, err := n.Run(t, n.Client, "busybox", "ping", "-c", "1", "-W", "1", srv.String()); err == nil {
		t.Errorf("ping without an address succeeded:\n%s", out)
	}

	client := netip.PrefixFrom(srv.Next(), n.ServerAddr.Bits())
	if out, err := n.Run(t, n.Client, "ip", "addr", "add", client.String(), "dev", n.ClientIf,
		"valid_lft", "100", "preferred_lft", "50"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	addrs := n.AddrLifetimes(t, n.Client, n.ClientIf)
	if len(addrs) != 1 {
		t.Fatalf("client addresses %+v, want one", addrs)
	}
	a := addrs[0]
	if a.Prefix != client || !a.Dynamic || a.Valid > 100*time.Second || a.Valid < 90*time.Second ||
		a.Preferred > 50*time.Second || a.Preferred < 40*time.Second {
		t.Errorf("client address %+v, want %v, dynamic, valid ≤100s, preferred ≤50s", a, client)
	}
	if srvAddrs := n.AddrLifetimes(t, n.Server, n.ServerIf); len(srvAddrs) != 1 || srvAddrs[0].Valid != testnet.Forever {
		t.Errorf("server address %+v, want one that never expires", srvAddrs)
	}
	if out, err := n.Run(t, n.Client, "ip", "route", "add", "default", "via", srv.String()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantRoutes := []string{
		fmt.Sprintf("default via %v dev %s", srv, n.ClientIf),
		fmt.Sprintf("%v dev %s proto kernel scope link src %v", n.ServerAddr.Masked(), n.ClientIf, client.Addr()),
	}
	if got := routeStrings(n.Routes(t, n.Client)); !slices.Equal(got, wantRoutes) {
		t.Errorf("client routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRoutes, "\n"))
	}
	if out, err := n.Run(t, n.Client, "busybox", "ping", "-c", "1", "-W", "2", srv.String()); err != nil {
		t.Errorf("ping from the client to the server: %v\n%s", err, out)
	}

	if out, err := n.Run(t, n.Client, "ip", "addr", "del", client.String(), "dev", n.ClientIf); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := n.Addrs(t, n.Client, n.ClientIf); len(got) != 0 {
		t.Errorf("client addresses after removal %v, want none", got)
	}
	if got := n.Routes(t, n.Client); len(got) != 0 {
		t.Errorf("client routes after removal %v, want none", got)
	}
}

func routeStrings(routes []testnet.Route) []string {
	var s []string
	for _, r := range routes {
		s = append(s, r.String())
	}
	return s
}

// TestSharedClient checks that two Nets can share a client namespace, so a
// client under test sees two interfaces, each with its server.
func TestSharedClient(t *testing.T) {
	a := testnet.NewNet(t)
	b := testnet.NewNetConfig(t, testnet.Config{
		Client:   a.Client,
		ClientIf: "veth-c2",
		Subnet:   netip.MustParsePrefix("198.19.7.0/24"),
	})
	if b.Client != a.Client || b.Server == a.Server {
		t.Fatalf("namespaces a=%s/%s b=%s/%s: want the client's shared, the servers' not", a.Server, a.Client, b.Server, b.Client)
	}
	if b.ServerAddr != netip.MustParsePrefix("198.19.7.1/24") {
		t.Errorf("server address %v, want 198.19.7.1/24", b.ServerAddr)
	}
	for _, ifname := range []string{a.ClientIf, b.ClientIf} {
		if l := a.Link(t, a.Client, ifname); !l.Up {
			t.Errorf("%s is not up: %+v", ifname, l)
		}
	}
	sa := testnet.StartDnsmasq(t, a, a.DefaultOptions())
	sb := testnet.StartKea(t, b, b.DefaultOptions())
	for _, c := range []struct {
		n *testnet.Net
		s *testnet.Server
	}{{a, sa}, {b, sb}} {
		env, err := c.n.Udhcpc(t)
		if err != nil {
			t.Fatalf("%s on %s: %v", c.s.Kind, c.n.ClientIf, err)
		}
		if ip := netip.MustParseAddr(env["ip"]); !c.n.ServerAddr.Contains(ip) || env["serverid"] != c.n.ServerAddr.Addr().String() {
			t.Errorf("%s on %s: lease %s from %s, want one in %v from its server", c.s.Kind, c.n.ClientIf, env["ip"], env["serverid"], c.n.ServerAddr)
		}
	}
}

// TestCleanup checks that a test's cleanups leave no namespace and no
// process behind.
func TestCleanup(t *testing.T) {
	testnet.RequireRoot(t)
	var names, dirs []string
	var pids []int
	t.Run("inner", func(t *testing.T) {
		a := testnet.NewNet(t)
		b := testnet.NewNetConfig(t, testnet.Config{Client: a.Client, ClientIf: "veth-c2"})
		if a.ServerAddr.Masked() == b.ServerAddr.Masked() {
			t.Errorf("two links of one client share subnet %v", a.ServerAddr.Masked())
		}
		sa := testnet.StartDnsmasq(t, a, a.DefaultOptions())
		sb := testnet.StartKea(t, b, b.DefaultOptions())
		// A process that ignores SIGTERM, which Stop must kill.
		p := a.Start(t, a.Client, "sh", "-c", `trap "" TERM; echo ready; exec sleep 300`)
		if !p.WaitLog("ready", 10*time.Second) {
			t.Fatalf("sh did not start: %s", p.Output())
		}
		// A restart makes a second run, which must be cleaned up too.
		sa.Restart(t)
		names = []string{a.Server, a.Client, b.Server}
		pids = []int{sa.Pid(), sb.Pid(), p.Pid()}
		dirs = []string{sa.Dir, sb.Dir}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("process %d is not running: %v", pid, err)
			}
		}
	})
	if len(names) == 0 {
		t.Fatal("the inner test did not get as far as starting everything")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	for _, ns := range names {
		if bytes.Contains(out, []byte(ns)) {
			t.Errorf("namespace %s is left:\n%s", ns, out)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d is left (kill 0: %v)", pid, err)
		}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("server directory %s is left (stat: %v)", dir, err)
		}
	}
}

// TestServe checks, for each server, that a real client gets a lease in
// the range with every option the harness can set.
func TestServe(t *testing.T) {
	tests := []struct {
		name string
		kind testnet.Kind
		// opts returns the server's options; want, the variables udhcpc
		// must see ("" means absent).
		opts func(n *testnet.Net) testnet.ServerOptions
		want func(n *testnet.Net) map[string]string
	}{
		{"dnsmasq/all options", testnet.Dnsmasq, allOptions, allWant},
		{"kea/all options", testnet.Kea, allOptions, allWant},
		{"dnsmasq/no options", testnet.Dnsmasq, noOptions, noWant},
		{"kea/no options", testnet.Kea, noOptions, noWant},
		{"kea/short lease", testnet.Kea, func(n *testnet.Net) testnet.ServerOptions {
			o := n.DefaultOptions()
			o.LeaseTime, o.RenewTime, o.RebindTime = 6*time.Second, 2*time.Second, 4*time.Second
			return o
		}, func(n *testnet.Net) map[string]string {
			return map[string]string{"lease": "6", "opt58": "00000002", "opt59": "00000004"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testnet.NewNet(t)
			o := tt.opts(n)
			s := testnet.StartServer(t, tt.kind, n, o)
			env, err := n.Udhcpc(t)
			if err != nil {
				t.Fatal(err)
			}
			ip, err := netip.ParseAddr(env["ip"])
			if err != nil {
				t.Fatalf("udhcpc's ip %q: %v", env["ip"], err)
			}
			if ip.Less(s.Options.RangeStart) || s.Options.RangeEnd.Less(ip) {
				t.Errorf("leased %v, want one in %v-%v", ip, s.Options.RangeStart, s.Options.RangeEnd)
			}
			for k, want := range tt.want(n) {
				if got := env[k]; got != want {
					t.Errorf("udhcpc's %s = %q, want %q", k, got, want)
				}
			}
			ack := map[testnet.Kind]string{testnet.Dnsmasq: "DHCPACK(" + n.ServerIf + ") " + ip.String(), testnet.Kea: "DHCPACK (type 5)"}[tt.kind]
			if !strings.Contains(s.Log(), ack) {
				t.Errorf("%s's log has no %q", tt.kind, ack)
			}
			if !eventually(5*time.Second, func() bool { return strings.Contains(s.Leases(t), ip.String()) }) {
				t.Errorf("%s's lease file has no %v:\n%s", tt.kind, ip, s.Leases(t))
			}

			// A second lease is logged after a mark: how a test sees a
			// renewal rather than the first ACK.
			mark := s.Mark()
			if s.WaitLogAfter(mark, "DHCPACK", 100*time.Millisecond) {
				t.Error("WaitLogAfter found an ACK logged before the mark")
			}
			if _, err := n.Udhcpc(t, "-r", ip.String()); err != nil {
				t.Fatal(err)
			}
			if !s.WaitLogAfter(mark, "DHCPACK", 5*time.Second) {
				t.Errorf("%s logged no second ACK", tt.kind)
			}
		})
	}
}

func allOptions(n *testnet.Net) testnet.ServerOptions {
	srv := n.ServerAddr.Addr()
	o := n.DefaultOptions()
	o.RangeStart, o.RangeEnd = addrOffset(n, 50), addrOffset(n, 60)
	o.LeaseTime, o.RenewTime, o.RebindTime = 10*time.Minute, 4*time.Minute, 8*time.Minute
	o.DNS = []netip.Addr{srv, addrOffset(n, 2)}
	o.Search = []string{"a.dyad.test", "dyad.test"}
	o.NTP = []netip.Addr{srv, addrOffset(n, 3)}
	o.MTU = 1400
	o.Routes = []testnet.StaticRoute{
		{Dst: netip.MustParsePrefix("10.99.0.0/16"), Gateway: srv},
		{Dst: netip.MustParsePrefix("192.0.2.128/25"), Gateway: addrOffset(n, 4)},
	}
	o.Hostname = "client-1"
	return o
}

func allWant(n *testnet.Net) map[string]string {
	srv := n.ServerAddr.Addr().String()
	return map[string]string{
		"mask":         "24",
		"subnet":       "255.255.255.0",
		"router":       srv,
		"serverid":     srv,
		"dns":          srv + " " + addrOffset(n, 2).String(),
		"domain":       "dyad.test",
		"search":       "a.dyad.test dyad.test",
		"ntpsrv":       srv + " " + addrOffset(n, 3).String(),
		"mtu":          "1400",
		"staticroutes": "10.99.0.0/16 " + srv + " 192.0.2.128/25 " + addrOffset(n, 4).String(),
		"hostname":     "client-1",
		"lease":        "600",
		"opt58":        "000000f0",
		"opt59":        "000001e0",
	}
}

func noOptions(*testnet.Net) testnet.ServerOptions { return testnet.ServerOptions{} }

func noWant(n *testnet.Net) map[string]string {
	return map[string]string{
		"mask": "24", "lease": "3600", "router": "", "dns": "", "domain": "", "ntpsrv": "", "mtu": "", "hostname": "",
	}
}

// addrOffset returns the address off hosts into n's subnet.
func addrOffset(n *testnet.Net, off int) netip.Addr {
	a := n.ServerAddr.Masked().Addr()
	for range off {
		a = a.Next()
	}
	return a
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReconfigure checks that Reconfigure restarts a server with new
// options and its leases kept, which is how a test makes it NAK a client: a
// client in INIT-REBOOT (ISC dhclient with its lease file) asks for its old
// address, gets a NAK, and then a new lease with the new options.
func TestReconfigure(t *testing.T) {
	tests := []struct {
		name string
		kind testnet.Kind
		// change turns the first options into the second, given the
		// first lease's address.
		change func(n *testnet.Net, o testnet.ServerOptions, old netip.Addr) testnet.ServerOptions
		nak    string // what the server logs for the NAK
	}{
		{"dnsmasq/new range", testnet.Dnsmasq, newRange, "DHCPNAK("},
		{"dnsmasq/reserved for another", testnet.Dnsmasq, reserveForAnother, "DHCPNAK("},
		{"kea/reserved for another", testnet.Kea, reserveForAnother, "DHCPNAK (type 6)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testnet.RequireTools(t, "dhclient")
			n := testnet.NewNet(t)
			o := n.DefaultOptions()
			o.RangeStart, o.RangeEnd = addrOffset(n, 50), addrOffset(n, 60)
			o.LeaseTime = 10 * time.Minute
			s := testnet.StartServer(t, tt.kind, n, o)
			dir := t.TempDir()

			first := dhclient(t, n, dir)
			old := netip.MustParseAddr(first["new_ip_address"])
			if first["new_domain_name_servers"] != n.ServerAddr.Addr().String() {
				t.Errorf("first lease's DNS %q, want %v", first["new_domain_name_servers"], n.ServerAddr.Addr())
			}

			o2 := tt.change(n, o, old)
			o2.DNS = []netip.Addr{addrOffset(n, 9)}
			prev := s.Proc
			s.Reconfigure(t, o2)
			if s.Proc == prev || !prev.Exited() || s.Options.DNS[0] != addrOffset(n, 9) {
				t.Errorf("Reconfigure did not replace the run with one with the new options")
			}

			second := dhclient(t, n, dir)
			if !s.WaitLog(tt.nak, 5*time.Second) {
				t.Errorf("%s logged no NAK (%q) after Reconfigure", tt.kind, tt.nak)
			}
			ip := netip.MustParseAddr(second["new_ip_address"])
			if ip == old || ip.Less(s.Options.RangeStart) || s.Options.RangeEnd.Less(ip) {
				t.Errorf("second lease %v (first %v), want a new one in %v-%v", ip, old, s.Options.RangeStart, s.Options.RangeEnd)
			}
			if got, want := second["new_domain_name_servers"], addrOffset(n, 9).String(); got != want {
				t.Errorf("second lease's DNS %q, want %q", got, want)
			}
			if !strings.Contains(s.Log(), "DHCPACK") {
				t.Errorf("%s's log across runs has no ACK", tt.kind)
			}
		})
	}
}

func newRange(n *testnet.Net, o testnet.ServerOptions, _ netip.Addr) testnet.ServerOptions {
	o.RangeStart, o.RangeEnd = addrOffset(n, 70), addrOffset(n, 80)
	return o
}

func reserveForAnother(_ *testnet.Net, o testnet.ServerOptions, old netip.Addr) testnet.ServerOptions {
	o.Hosts = append(o.Hosts, testnet.Host{MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}, Addr: old})
	return o
}

// dhclientScript prints what dhclient hands its script, and changes nothing.
const dhclientScript = `#!/bin/sh
echo "testnet-event=$reason"
env | while IFS= read -r line; do echo "testnet-env:$line"; done
`

// dhclient runs ISC dhclient on n's client interface until it is bound,
// keeping its lease file in dir so that a second run starts in INIT-REBOOT,
// and returns its script's environment for the bound lease.
func dhclient(t *testing.T, n *testnet.Net, dir string) map[string]string {
	t.Helper()
	script := filepath.Join(dir, "script")
	conf := filepath.Join(dir, "dhclient.conf")
	for path, content := range map[string]string{
		script: dhclientScript,
		conf:   "timeout 20;\nretry 1;\ninitial-interval 1;\nbackoff-cutoff 2;\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := n.Start(t, n.Client, "dhclient", "-1", "-d", "-v", "-cf", conf,
		"-lf", filepath.Join(dir, "dhclient.leases"), "-pf", filepath.Join(dir, "dhclient.pid"),
		"-sf", script, n.ClientIf)
	if !p.WaitLog("bound to ", 30*time.Second) {
		t.Fatalf("dhclient got no lease:\n%s", p.Output())
	}
	_ = p.Stop()
	for _, reason := range []string{"BOUND", "REBOOT"} {
		if env, ok := lastScriptEnv(p.Output(), reason); ok {
			return env
		}
	}
	t.Fatalf("dhclient's script saw no BOUND or REBOOT:\n%s", p.Output())
	return nil
}

// lastScriptEnv returns the environment the last script call for reason
// printed.
func lastScriptEnv(out []byte, reason string) (map[string]string, bool) {
	var env map[string]string
	var in bool
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSuffix(line, "\n")
		if r, ok := strings.CutPrefix(line, "testnet-event="); ok {
			if in = r == reason; in {
				env = make(map[string]string)
			}
			continue
		}
		if kv, ok := strings.CutPrefix(line, "testnet-env:"); ok && in {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env, env != nil
}

// TestProc checks the process handle on plain commands.
func TestProc(t *testing.T) {
	t.Run("log", func(t *testing.T) {
		p := testnet.StartCommand(t, exec.Command("sh", "-c", "echo one; sleep 0.2; echo two >&2; exec sleep 30"))
		if !p.WaitLog("two", 5*time.Second) {
			t.Fatalf("no %q in %q", "two", p.Output())
		}
		if got := string(p.Output()); got != "one\ntwo\n" {
			t.Errorf("output %q, want stdout and stderr interleaved", got)
		}
		if p.WaitLog("three", 100*time.Millisecond) {
			t.Error("WaitLog found what was never logged")
		}
		if p.WaitLogAfter(p.Mark(), "one", 100*time.Millisecond) {
			t.Error("WaitLogAfter found what was logged before the mark")
		}
		if err := p.Wait(100 * time.Millisecond); !errors.Is(err, testnet.ErrRunning) {
			t.Errorf("Wait on a running process: %v, want ErrRunning", err)
		}
		if err := p.Stop(); err == nil || p.ExitCode() != -1 {
			t.Errorf("Stop: %v, exit code %d: want killed by SIGTERM", err, p.ExitCode())
		}
	})
	t.Run("exit", func(t *testing.T) {
		p := testnet.StartCommand(t, exec.Command("sh", "-c", "echo bye; exit 3"))
		var exit *exec.ExitError
		if err := p.Wait(10 * time.Second); !errors.As(err, &exit) || p.ExitCode() != 3 {
			t.Errorf("Wait: %v, exit code %d, want exit status 3", err, p.ExitCode())
		}
		// WaitLog returns at once once the process has gone.
		if p.WaitLog("never", time.Hour) {
			t.Error("WaitLog found what was never logged")
		}
	})
	t.Run("stop ignores SIGTERM", func(t *testing.T) {
		p := testnet.StartCommand(t, exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 300`))
		if !p.WaitLog("ready", 10*time.Second) {
			t.Fatalf("sh did not start: %q", p.Output())
		}
		err := p.Stop()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("Stop: %v, want killed by SIGKILL", err)
		}
		if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop: %v", p.Pid(), err)
		}
	})
}
