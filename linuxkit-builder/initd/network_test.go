package initd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

func link(index int, name, mac string, flags net.Flags, encap string) netlink.Link {
	la := netlink.NewLinkAttrs()
	la.Index, la.Name, la.Flags, la.EncapType = index, name, flags, encap
	if mac != "" {
		la.HardwareAddr, _ = net.ParseMAC(mac)
	}
	return &netlink.Device{LinkAttrs: la}
}

func TestChooseHostname(t *testing.T) {
	lo := link(1, "lo", "00:00:00:00:00:00", net.FlagLoopback|net.FlagUp, "loopback")
	eth0 := link(2, "eth0", "52:54:00:12:34:56", 0, "ether")
	eth1 := link(3, "eth1", "52:54:00:ab:cd:ef", 0, "ether")
	sit := link(4, "sit0", "", 0, "sit")
	for _, tc := range []struct {
		name    string
		etc     string
		links   []netlink.Link
		want    string
		wantErr bool
	}{
		{"from /etc/hostname", "builder\nsecond line\n", []netlink.Link{lo, eth0}, "builder", false},
		{"trimmed", "  builder  \n", nil, "builder", false},
		{"first Ethernet link", "", []netlink.Link{lo, eth0, eth1}, "linuxkit-525400123456", false},
		{"by index, not list order", "", []netlink.Link{eth1, sit, eth0, lo}, "linuxkit-525400123456", false},
		{"blank /etc/hostname", " \n", []netlink.Link{eth1}, "linuxkit-525400abcdef", false},
		{"no Ethernet", "", []netlink.Link{lo, sit}, "", true},
	} {
		got, err := chooseHostname([]byte(tc.etc), tc.links)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: %q, %v; want %q (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestPrepareResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing func(root string) error
		wantLink string // "" for "not a link"
		wantFile bool   // /run/resolvconf/resolv.conf exists
	}{
		{"none", func(string) error { return nil }, resolvConfTarget, true},
		{"a file of the image's", func(root string) error {
			return os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 10.0.2.3\n"), 0o644)
		}, "", false},
		{"a link elsewhere", func(root string) error {
			return os.Symlink("/run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}, "/run/systemd/resolve/stub-resolv.conf", false},
		{"LinuxKit's link already", func(root string) error {
			return os.Symlink(resolvConfTarget, filepath.Join(root, "etc/resolv.conf"))
		}, resolvConfTarget, true},
	} {
		root := t.TempDir()
		if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := tc.existing(root); err != nil {
			t.Fatal(err)
		}
		if err := prepareResolvConf(root); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got, _ := os.Readlink(filepath.Join(root, "etc/resolv.conf"))
		if got != tc.wantLink {
			t.Errorf("%s: /etc/resolv.conf links to %q, want %q", tc.name, got, tc.wantLink)
		}
		if fi, err := os.Stat(filepath.Join(root, "run/resolvconf")); err != nil || !fi.IsDir() {
			t.Errorf("%s: /run/resolvconf: %v", tc.name, err)
		}
		_, err := os.Stat(filepath.Join(root, resolvConfTarget))
		if (err == nil) != tc.wantFile {
			t.Errorf("%s: %s: %v, want it to exist: %v", tc.name, resolvConfTarget, err, tc.wantFile)
		}
	}
}

// onNewThread runs fn on an OS thread of its own, which dies with it:
// fn may move the thread into other namespaces.
func onNewThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		errc <- fn()
	}()
	return <-errc
}

// linkNames lists the links of the current thread's network namespace.
func linkNames() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names, nil
}

// linksIn lists the links of the network namespace of process pid.
func linksIn(pid int) ([]string, error) {
	var names []string
	err := inNetNS(fmt.Sprintf("/proc/%d/ns/net", pid), func() (err error) {
		names, err = linkNames()
		return err
	})
	return names, err
}

// startInNewNetNS starts a process that stands for a container: sleep, in
// a network namespace of its own. The caller kills and reaps it.
func startInNewNetNS() (int, error) {
	return syscall.ForkExec("/bin/sleep", []string{"sleep", "30"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET},
	})
}

func stop(pid int) {
	_ = unix.Kill(pid, unix.SIGKILL)
	_, _ = unix.Wait4(pid, nil, 0, nil)
}

// veth makes a veth pair in the current namespace; the kernel registers
// the peer first, so the peer has the lower index.
func veth(name, peer, peerMAC string) error {
	la := netlink.NewLinkAttrs()
	la.Name = name
	v := &netlink.Veth{LinkAttrs: la, PeerName: peer}
	if peerMAC != "" {
		v.PeerHardwareAddr, _ = net.ParseMAC(peerMAC)
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s: %w", name, err)
	}
	return nil
}

// TestNetwork brings up lo, names the machine after its first Ethernet
// link and applies a runtime.json's interfaces, in a network namespace
// the test makes (standing for the VM's, with its own eth0), for
// "container" processes in others.
func TestNetwork(t *testing.T) {
	testnet.RequireIsolated(t)
	root := mountTmpfs(t)
	err := onNewThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		if err := bringUpLoopback(); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			return errors.New("lo is not up")
		}
		// eth0 is the VM's NIC, whose MAC names the machine; eth1 is a
		// second one, for a container.
		if err := veth("eth0peer", "eth0", "52:54:00:12:34:56"); err != nil {
			return err
		}
		if err := veth("eth1peer", "eth1", ""); err != nil {
			return err
		}
		name, err := setHostname(t.TempDir())
		if err != nil {
			return err
		}
		if got, _ := os.Hostname(); name != "linuxkit-525400123456" || got != name {
			return fmt.Errorf("hostname %q (set %q), want linuxkit-525400123456", got, name)
		}

		a, err := startInNewNetNS()
		if err != nil {
			return err
		}
		defer stop(a)
		h := &host{root: root, proc: "/proc"}
		err = h.applyInterfaces(a, []imageconfig.Interface{
			{Name: "eth1"},
			{Add: "veth", Name: "eth0", Peer: "veth0"}, // eth0: taken in the root namespace
			{Name: "eth2", Peer: "veth2", CreateInRoot: true},
		})
		if err != nil {
			return err
		}
		inRoot, err := linkNames()
		if err != nil {
			return err
		}
		if want := []string{"eth0", "eth0peer", "eth1peer", "lo", "veth0", "veth2"}; !slices.Equal(inRoot, want) {
			return fmt.Errorf("links in the root namespace: %q, want %q", inRoot, want)
		}
		inside, err := linksIn(a)
		if err != nil {
			return err
		}
		if want := []string{"eth0", "eth1", "eth2", "lo"}; !slices.Equal(inside, want) {
			return fmt.Errorf("links in the container: %q, want %q", inside, want)
		}
		for _, bad := range []imageconfig.Interface{{Name: "nonesuch"}, {Add: "veth"}, {Add: "veth", Name: "x"}} {
			if err := h.applyInterfaces(a, []imageconfig.Interface{bad}); err == nil {
				return fmt.Errorf("%+v: no error", bad)
			}
		}

		// A restarted service: its old namespace lives on, bound for
		// other containers, with the old pair; the new one gets a
		// pair of the same names.
		netPath := "/run/netns/svc"
		if err := h.bindNamespaces(a, &imageconfig.Namespaces{Net: &netPath}); err != nil {
			return err
		}
		defer unix.Unmount(filepath.Join(root, netPath), unix.MNT_DETACH)
		stop(a)
		b, err := startInNewNetNS()
		if err != nil {
			return err
		}
		defer stop(b)
		if err := h.applyInterfaces(b, []imageconfig.Interface{{Add: "veth", Name: "eth0", Peer: "veth0"}}); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		inside, err = linksIn(b)
		if err != nil {
			return err
		}
		if want := []string{"eth0", "lo"}; !slices.Equal(inside, want) {
			return fmt.Errorf("links in the restarted container: %q, want %q", inside, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
