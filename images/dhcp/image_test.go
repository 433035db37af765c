// Package dhcp_test runs the dhcp image as LinuxKit would: its layer
// unpacked into a root, read-only, with the label's binds and capabilities,
// the dhcpcd entry's command line and LinuxKit's own dhcpcd.conf, against
// dnsmasq in network namespaces.
package dhcp_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/internal/imagetest"
	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// conformanceConf is LinuxKit's dhcpcd.conf, which the swapped image is
// handed in the conformance test.
const conformanceConf = "../../daemons/dhcp/testdata/linuxkit/dhcpcd.conf"

// linuxkitCommand is the dhcpcd entry's command line in LinuxKit's files.
var linuxkitCommand = []string{"/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"}

// TestDhcpcdDropIn: the image, started with LinuxKit's dhcpcd command line
// and dhcpcd.conf, leases an address from dnsmasq and configures the link,
// the routes and the resolv.conf that reaches the other containers.
func TestDhcpcdDropIn(t *testing.T) {
	testnet.RequireIsolated(t)
	testnet.RequireTools(t, "dnsmasq")
	img, label := built.Build(t, ".")

	// The conformance file allows eth* only.
	n := testnet.NewNetConfig(t, testnet.Config{ClientIf: "eth0"})
	o := n.DefaultOptions()
	o.Search = []string{"dyad.test"}
	o.MTU = 1400
	o.RapidCommit = true
	srv := testnet.StartDnsmasq(t, n, o)
	// "hostname" in dhcpcd.conf sends the host's own name; this test has
	// a UTS namespace of its own.
	if err := unix.Sethostname([]byte("dyad-conformance")); err != nil {
		t.Fatal(err)
	}

	c := imagetest.NewContainer(t, img, label)
	c.BindFile(t, conformanceConf, "/dhcpcd.conf")
	out, err := c.Run(t, n.Client, linuxkitCommand, 60*time.Second)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(linuxkitCommand, " "), err, out)
	}

	addrs := n.AddrLifetimes(t, n.Client, "eth0")
	if len(addrs) != 1 || !addrs[0].Prefix.Masked().Contains(o.RangeStart) {
		t.Fatalf("eth0 has %v, want one address from %s\n%s", addrs, n.ServerAddr.Masked(), out)
	}
	var def bool
	for _, r := range n.Routes(t, n.Client) {
		def = def || r.Dst.Bits() == 0 && r.Gateway == n.ServerAddr.Addr()
	}
	if !def {
		t.Errorf("no default route via %s: %v", n.ServerAddr.Addr(), n.Routes(t, n.Client))
	}
	if mtu := n.Link(t, n.Client, "eth0").MTU; mtu != 1400 {
		t.Errorf("MTU %d, want the leased 1400 (option interface_mtu)", mtu)
	}
	// The label binds /run/resolvconf to /etc: the file the image writes
	// as /etc/resolv.conf is the host's /run/resolvconf/resolv.conf.
	rc, err := os.ReadFile(c.HostPath("/run/resolvconf/resolv.conf"))
	if err != nil {
		t.Fatalf("resolv.conf did not reach /run/resolvconf: %v", err)
	}
	for _, want := range []string{"nameserver " + n.ServerAddr.Addr().String(), "search dyad.test"} {
		if !strings.Contains(string(rc), want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, rc)
		}
	}
	// hostname, clientid (the hardware address, type 1) and rapid commit
	// reached the server.
	leases := srv.Leases(t)
	if !strings.Contains(leases, "dyad-conformance") || !strings.Contains(leases, "01:"+n.ClientMAC.String()) {
		t.Errorf("dnsmasq's lease lacks the host name or the hardware client ID:\n%s", leases)
	}
	if log := srv.Log(); !strings.Contains(log, "DHCPACK") || strings.Contains(log, "DHCPREQUEST") {
		t.Errorf("want a rapid-commit exchange (an ACK to the DISCOVER, no REQUEST):\n%s", log)
	}
	// The label grants no capability to change users: the engine got its
	// user from engine-exec.
	if !strings.Contains(string(out), "the engine runs through engine-exec") {
		t.Errorf("the engine was not started through engine-exec:\n%s", out)
	}
	// slaac is the one directive dyad-dhcp does not do: said, with its line.
	if !strings.Contains(string(out), "/dhcpcd.conf:35: slaac: not supported") {
		t.Errorf("no warning for slaac:\n%s", out)
	}
}

// TestServiceHoldsOnlyWhatTheLabelGrants runs the image's default command,
// the long-lived service, with the label's three capabilities, and reads
// what each process holds; then kills the engine, which the supervisor
// restarts through engine-exec, and stops the service, whose SIGTERM
// reaches the engine the same way.
func TestServiceHoldsOnlyWhatTheLabelGrants(t *testing.T) {
	testnet.RequireIsolated(t)
	testnet.RequireTools(t, "dnsmasq")
	img, label := built.Build(t, ".")
	n := testnet.NewNetConfig(t, testnet.Config{ClientIf: "eth0"})
	testnet.StartDnsmasq(t, n, n.DefaultOptions())

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := imagetest.NewContainer(t, img, label)
	svc := c.Start(t, n.Client, append(cf.Config.Entrypoint, cf.Config.Cmd...))
	imagetest.WaitFor(t, svc, "an address on eth0", func() bool { return len(n.Addrs(t, n.Client, "eth0")) == 1 })

	var labelMask uint64
	for _, name := range *label.Capabilities {
		n, ok := capname.Number(name)
		if !ok {
			t.Fatalf("the label grants %s, which has no number", name)
		}
		labelMask |= 1 << n
	}
	procs := testnet.Children(svc.Pid())
	if len(procs) != 2 {
		t.Fatalf("the supervisor has %d children, want the actuator and the engine: %v\n%s", len(procs), procs, svc.Output())
	}
	want := map[string]map[string]string{
		"supervisor": {"Uid": "0 0 0 0", "CapPrm": imagetest.Hex(0), "CapEff": imagetest.Hex(0), "CapBnd": imagetest.Hex(labelMask)},
		"actuator": {"Uid": "0 0 0 0", "CapPrm": imagetest.Hex(1 << unix.CAP_NET_ADMIN), "CapEff": imagetest.Hex(1 << unix.CAP_NET_ADMIN),
			"CapInh": imagetest.Hex(0), "CapAmb": imagetest.Hex(0), "NoNewPrivs": "1", "Seccomp": "2"},
		"engine": {"Uid": "2101 2101 2101 2101", "Gid": "2101 2101 2101 2101", "Groups": "", "CapPrm": imagetest.Hex(0),
			"CapEff": imagetest.Hex(0), "CapInh": imagetest.Hex(0), "CapAmb": imagetest.Hex(0), "NoNewPrivs": "1", "Seccomp": "2"},
	}
	got := map[string]map[string]string{"supervisor": testnet.ProcStatus(svc.Pid())}
	engine := 0
	for _, pid := range procs {
		st := testnet.ProcStatus(pid)
		role := "actuator"
		if st["Uid"] != "0 0 0 0" {
			role, engine = "engine", pid
		}
		got[role] = st
	}
	for role, fields := range want {
		for k, v := range fields {
			if got[role][k] != v {
				t.Errorf("%s: %s is %q, want %q", role, k, got[role][k], v)
			}
		}
	}
	if engine == 0 {
		t.Fatal("no engine found")
	}

	// A dead engine is started again, as the engine's user.
	if err := syscall.Kill(engine, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Ready once it has asked for its lease again and the host holds it.
	imagetest.WaitFor(t, svc, "lease extended by a new engine", func() bool {
		return strings.Contains(string(svc.Output()), `msg="lease extended"`)
	})
	var again int
	imagetest.WaitFor(t, svc, "a new engine", func() bool {
		for _, pid := range testnet.Children(svc.Pid()) {
			if pid != engine && testnet.ProcStatus(pid)["Uid"] == "2101 2101 2101 2101" {
				again = pid
				return true
			}
		}
		return false
	})
	// Stopping the service stops the engine (through engine-exec) and
	// the actuator; persistent keeps the address.
	if err := svc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := svc.Wait(30 * time.Second); err != nil {
		t.Fatalf("the service did not stop cleanly: %v\n%s", err, svc.Output())
	}
	if out := string(svc.Output()); strings.Contains(out, "could not signal") || strings.Contains(out, "cannot signal") || !strings.Contains(out, "proc=engine signal=terminated") {
		t.Errorf("the engine (pid %d) was not stopped by its SIGTERM:\n%s", again, out)
	}
	if len(n.Addrs(t, n.Client, "eth0")) != 1 {
		t.Error("persistent, yet the address went with the service")
	}
}

// built is the dhcp image, built once for every test of the package.
var built imagetest.Once
