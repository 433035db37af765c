package initd

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bringUpLoopback sets lo up; the kernel then gives it 127.0.0.1/8 and ::1.
func bringUpLoopback() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// chooseHostname applies LinuxKit's rule: the first line of /etc/hostname
// (its contents are given, nil if there is none), else "linuxkit-" and
// the MAC address, without colons, of the first Ethernet link that is not
// the loopback.
func chooseHostname(etcHostname []byte, links []netlink.Link) (string, error) {
	first, _, _ := strings.Cut(string(etcHostname), "\n")
	if name := strings.TrimSpace(first); name != "" {
		return name, nil
	}
	links = append([]netlink.Link(nil), links...)
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.EncapType != "ether" || len(a.HardwareAddr) != 6 {
			continue
		}
		return "linuxkit-" + strings.ReplaceAll(a.HardwareAddr.String(), ":", ""), nil
	}
	return "", errors.New("no /etc/hostname and no Ethernet link to name the machine after")
}

// setHostname sets the hostname from root's /etc/hostname or the first
// Ethernet link, and returns it.
func setHostname(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	links, lerr := netlink.LinkList()
	name, err := chooseHostname(b, links)
	if err != nil {
		if lerr != nil {
			err = fmt.Errorf("%w (listing links: %v)", err, lerr)
		}
		return "", err
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return "", fmt.Errorf("sethostname %q: %w", name, err)
	}
	return name, nil
}

// resolvConfTarget is where LinuxKit keeps resolv.conf: /run is writable,
// and a DHCP client's container binds /run/resolvconf to write it.
const resolvConfTarget = "/run/resolvconf/resolv.conf"

// prepareResolvConf makes /run/resolvconf/ and, unless /etc/resolv.conf
// exists (as anything, a dangling link too), the link /etc/resolv.conf ->
// /run/resolvconf/resolv.conf. When /etc/resolv.conf is that link, it
// creates the empty file it points to, so that containers that bind
// /etc/resolv.conf find something to bind.
func prepareResolvConf(root string) error {
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(resolvConfTarget)), 0o755); err != nil {
		return err
	}
	etc := filepath.Join(root, "etc/resolv.conf")
	if _, err := os.Lstat(etc); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(etc), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(resolvConfTarget, etc); err != nil {
			return err
		}
	}
	if to, err := os.Readlink(etc); err == nil && to == resolvConfTarget {
		return touch(filepath.Join(root, resolvConfTarget))
	}
	return nil
}
