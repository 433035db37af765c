// Command floor-dhcp is the least any process of dyad-dhcp could weigh: a
// binary that links only the libraries DESIGN.md names for the DHCP client
// and the Go runtime under them, uses each once, says "ready" and waits to
// be killed. The benchmark measures its memory, built as dyad-dhcp is, to
// show what part of dyad-dhcp's memory is the floor of a Go process.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/insomniacslk/dhcp/dhcpv4"
	seccomp "github.com/seccomp/libseccomp-golang"
	"github.com/vishvananda/netlink"
	"gopkg.in/yaml.v3"
)

func main() {
	if err := useEach(); err != nil {
		fmt.Fprintln(os.Stderr, "floor-dhcp:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
}

// useEach calls each library once, so that its code is linked and its
// package initialisation runs, as in dyad-dhcp.
func useEach() error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	b, err := cbor.Marshal(map[string]int{"links": len(links)})
	if err != nil {
		return fmt.Errorf("cbor: %w", err)
	}
	var back map[string]int
	if err := cbor.Unmarshal(b, &back); err != nil {
		return fmt.Errorf("cbor: %w", err)
	}
	m, err := dhcpv4.NewDiscovery([]byte{2, 0, 0, 0, 0, 1})
	if err != nil {
		return fmt.Errorf("dhcpv4: %w", err)
	}
	if _, err := dhcpv4.FromBytes(m.ToBytes()); err != nil {
		return fmt.Errorf("dhcpv4: %w", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte("interfaces: [eth0]"), &cfg); err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	if _, err := seccomp.GetAPI(); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	return nil
}
