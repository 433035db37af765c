// Package dhcp_test runs the dhcp image as LinuxKit would: its layer
// unpacked into a root, read-only, with the label's binds and capabilities,
// the dhcpcd entry's command line and LinuxKit's own dhcpcd.conf, against
// dnsmasq in network namespaces.
package dhcp_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
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
	img, label := buildImage(t)

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

	c := newContainer(t, img, label)
	c.bindFile(t, conformanceConf, "/dhcpcd.conf")
	out, err := c.run(t, n.Client, linuxkitCommand, 60*time.Second)
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
	rc, err := os.ReadFile(c.hostPath("/run/resolvconf/resolv.conf"))
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
	img, label := buildImage(t)
	n := testnet.NewNetConfig(t, testnet.Config{ClientIf: "eth0"})
	testnet.StartDnsmasq(t, n, n.DefaultOptions())

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := newContainer(t, img, label)
	svc := c.start(t, n.Client, append(cf.Config.Entrypoint, cf.Config.Cmd...))
	waitFor(t, svc, "an address on eth0", func() bool { return len(n.Addrs(t, n.Client, "eth0")) == 1 })

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
		"supervisor": {"Uid": "0 0 0 0", "CapPrm": hex(0), "CapEff": hex(0), "CapBnd": hex(labelMask)},
		"actuator": {"Uid": "0 0 0 0", "CapPrm": hex(1 << unix.CAP_NET_ADMIN), "CapEff": hex(1 << unix.CAP_NET_ADMIN),
			"CapInh": hex(0), "CapAmb": hex(0), "NoNewPrivs": "1", "Seccomp": "2"},
		"engine": {"Uid": "2101 2101 2101 2101", "Gid": "2101 2101 2101 2101", "Groups": "", "CapPrm": hex(0),
			"CapEff": hex(0), "CapInh": hex(0), "CapAmb": hex(0), "NoNewPrivs": "1", "Seccomp": "2"},
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
	waitFor(t, svc, "lease extended by a new engine", func() bool {
		return strings.Contains(string(svc.Output()), `msg="lease extended"`)
	})
	var again int
	waitFor(t, svc, "a new engine", func() bool {
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

func hex(mask uint64) string { return fmt.Sprintf("%016x", mask) }

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, r *testnet.Proc, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s within 20 s:\n%s", what, r.Output())
}

// buildImage builds the dhcp image from this directory, once for every
// test of the package.
func buildImage(t *testing.T) (v1.Image, *imageconfig.Config) {
	t.Helper()
	built.once.Do(func() {
		p, err := pkgbuild.Read(".")
		if err != nil {
			built.err = err
			return
		}
		var log strings.Builder
		r, err := pkgbuild.Build(context.Background(), p, pkgbuild.Options{Tag: "test", Log: &log})
		if err != nil {
			built.err = fmt.Errorf("%v\n%s", err, log.String())
			return
		}
		built.img, built.label = r.Image, p.Config
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.img, built.label
}

var built struct {
	once  sync.Once
	img   v1.Image
	label *imageconfig.Config
	err   error
}

// container is an image unpacked as LinuxKit's init would run it: the
// root read-only if the label says so, the label's binds from a private
// host tree, a /proc and a /dev.
type container struct {
	root, host string
	label      *imageconfig.Config
}

func newContainer(t *testing.T, img v1.Image, label *imageconfig.Config) *container {
	t.Helper()
	dir := t.TempDir()
	c := &container{root: filepath.Join(dir, "root"), host: filepath.Join(dir, "host"), label: label}
	// The root on a tmpfs of its own, without nosuid (the test's
	// temporary directory has it): engine-exec is set-user-ID.
	if err := os.Mkdir(c.root, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "tmpfs", c.root, "tmpfs", 0)
	unpack(t, img, c.root)
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(c.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount(t, c.root, c.root, "", unix.MS_BIND)
	if label.Readonly != nil && *label.Readonly {
		mount(t, "", c.root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY)
	}
	mount(t, "proc", filepath.Join(c.root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	mount(t, "tmpfs", filepath.Join(c.root, "dev"), "tmpfs", unix.MS_NOSUID)
	null := filepath.Join(c.root, "dev/null")
	if err := os.WriteFile(null, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	mount(t, "/dev/null", null, "", unix.MS_BIND)
	if label.Binds != nil {
		for _, b := range *label.Binds {
			src, dst, _ := strings.Cut(b, ":")
			dst, _, _ = strings.Cut(dst, ":")
			if err := os.MkdirAll(c.hostPath(src), 0o755); err != nil {
				t.Fatal(err)
			}
			mount(t, c.hostPath(src), filepath.Join(c.root, dst), "", unix.MS_BIND)
		}
	}
	return c
}

// hostPath is where a host path of the label's binds is, in this test.
func (c *container) hostPath(p string) string { return filepath.Join(c.host, p) }

// bindFile puts a file of the test over one of the image's.
func (c *container) bindFile(t *testing.T, src, dst string) {
	t.Helper()
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	// A new bind ignores MS_RDONLY: read-only takes a remount.
	mount(t, abs, filepath.Join(c.root, dst), "", unix.MS_BIND)
	mount(t, "", filepath.Join(c.root, dst), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY)
}

func mount(t *testing.T, src, dst, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", src, dst, err)
	}
	if flags&unix.MS_REMOUNT == 0 {
		t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
	}
}

// start starts args in the container, in network namespace netns, as root
// with the label's capabilities and no other, as LinuxKit's runc would.
func (c *container) start(t *testing.T, netns string, args []string) *testnet.Proc {
	t.Helper()
	var keep []uintptr
	if c.label.Capabilities != nil {
		for _, name := range *c.label.Capabilities {
			v, ok := capname.Number(name)
			if !ok {
				t.Fatalf("the label grants %s, which this test does not know", name)
			}
			keep = append(keep, uintptr(v))
		}
	}
	cmd := &exec.Cmd{
		Path: args[0],
		Args: args,
		Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Dir:  "/",
		SysProcAttr: &unix.SysProcAttr{
			Chroot:    c.root,
			Pdeathsig: unix.SIGKILL,
			// No supplementary groups, as runc gives a container
			// whose label names none.
			Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		},
	}
	// The network namespace and the bounding set are the thread's.
	return testnet.StartCommandOn(t, cmd, func() error { return enter(netns, keep) })
}

// run starts args in the container and waits for them.
func (c *container) run(t *testing.T, netns string, args []string, timeout time.Duration) ([]byte, error) {
	t.Helper()
	p := c.start(t, netns, args)
	err := p.Wait(timeout)
	return p.Output(), err
}

// enter moves the calling thread into a network namespace and drops from
// its bounding set every capability but keep.
func enter(netns string, keep []uintptr) error {
	if err := testnet.EnterNamespace(netns); err != nil {
		return err
	}
	for cap := uintptr(0); cap <= unix.CAP_LAST_CAP; cap++ {
		if slices.Contains(keep, cap) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, cap, 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d: %w", cap, err)
		}
	}
	return nil
}

// unpack writes the image's files under dir.
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for range 1 << 16 {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if !strings.HasPrefix(p, dir+"/") && p != dir {
			t.Fatalf("image entry %q leaves the root", hdr.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o600)
			}
		default:
			t.Fatalf("image entry %q of type %c", hdr.Name, hdr.Typeflag)
		}
		if err == nil && hdr.Typeflag != tar.TypeSymlink {
			// Chown before chmod: chown clears set-user-ID bits.
			if err = os.Lchown(p, hdr.Uid, hdr.Gid); err == nil {
				err = unix.Chmod(p, uint32(hdr.Mode&0o7777))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the image has too many entries")
}
