package initd

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// applyInterfaces does runtime.json's interfaces for the container whose
// first process is pid, LinuxKit's way:
//
//   - {"name": "eth1"} moves the existing link eth1 into the container's
//     network namespace;
//   - {"add": "veth", "name": "eth0", "peer": "veth0"} makes a veth pair
//     whose end eth0 is in the container and veth0 stays in the root
//     namespace (a peer alone implies "veth");
//   - another "add" makes a link of that kind in the container;
//   - "createInRoot" makes the link in the root namespace and then moves
//     it, which some kinds (wireguard) need.
func (h *host) applyInterfaces(pid int, ifaces []imageconfig.Interface) error {
	for i, iface := range ifaces {
		if err := h.applyInterface(pid, i, iface); err != nil {
			return fmt.Errorf("interface %s: %w", iface.Name, err)
		}
	}
	return nil
}

func (h *host) applyInterface(pid, i int, iface imageconfig.Interface) error {
	if iface.Name == "" {
		return errors.New("no name")
	}
	kind := iface.Add
	if kind == "" && iface.Peer != "" {
		kind = "veth"
	}
	if kind == "" {
		link, err := netlink.LinkByName(iface.Name)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsPid(link, pid); err != nil {
			return fmt.Errorf("move into the namespace of pid %d: %w", pid, err)
		}
		return nil
	}
	// The kernel asks modprobe for the module of a link kind it does not
	// know; init is that modprobe, but loading it here first does not
	// depend on it. A kind that is built in has no module: fine.
	if h.mounter.kmod != nil {
		_, _ = h.mounter.kmod.LoadAlias("rtnl-link-" + kind)
	}
	// The kernel refuses a new link whose name is taken in the namespace
	// that asks, even when the link is made in another one: "eth0" in a
	// container's while the VM has its own eth0. So the link is made
	// under a name of init's own and renamed inside the container.
	la := netlink.NewLinkAttrs()
	la.Name = "dyad" + strconv.Itoa(pid) + "." + strconv.Itoa(i)
	if !iface.CreateInRoot {
		la.Namespace = netlink.NsPid(pid)
	}
	var link netlink.Link
	switch kind {
	case "veth":
		if iface.Peer == "" {
			return errors.New("a veth pair needs a peer")
		}
		// A peer left from an earlier run of a restarted service (its
		// namespace kept alive by a bindNS) holds the name: the pair
		// is this container's, delete it. Only a veth: a bundle that
		// names eth0 as its peer must not delete the machine's NIC.
		if old, err := netlink.LinkByName(iface.Peer); err == nil && old.Type() == "veth" {
			if err := netlink.LinkDel(old); err != nil {
				return fmt.Errorf("delete the old peer %s: %w", iface.Peer, err)
			}
		}
		link = &netlink.Veth{LinkAttrs: la, PeerName: iface.Peer}
	default:
		link = &netlink.GenericLink{LinkAttrs: la, LinkType: kind}
	}
	if err := netlink.LinkAdd(link); err != nil {
		return fmt.Errorf("add %s: %w", kind, err)
	}
	if iface.CreateInRoot {
		if err := netlink.LinkSetNsPid(link, pid); err != nil {
			_ = netlink.LinkDel(link)
			return fmt.Errorf("move into the namespace of pid %d: %w", pid, err)
		}
	}
	return inNetNS(filepath.Join(h.proc, strconv.Itoa(pid), "ns/net"), func() error {
		l, err := netlink.LinkByName(la.Name)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetName(l, iface.Name); err != nil {
			return fmt.Errorf("rename %s to %s in the container: %w", la.Name, iface.Name, err)
		}
		return nil
	})
}

// inNetNS runs fn on an OS thread moved into the network namespace at
// nsPath (a /proc/PID/ns/net), where netlink's functions then work. The
// thread goes back to its own namespace after, or, if it cannot, ends
// with its goroutine rather than serve other goroutines from the wrong
// namespace.
func inNetNS(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer unix.Close(back)
		target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", nsPath, err)
			return
		}
		err = fn()
		if unix.Setns(back, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
