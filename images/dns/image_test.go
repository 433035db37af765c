// Package dns_test runs the dns image as LinuxKit would: its layer
// unpacked into a root, read-only, with the label's binds and
// capabilities, and its default command, in front of unbound in network
// namespaces.
package dns_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/imagetest"
	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// built is the dns image, built once for every test of the package.
var built imagetest.Once

// TestLabel: the image holds CAP_NET_BIND_SERVICE and nothing else, binds
// /run/resolvconf over /etc as linuxkit/dhcpcd does, and its audit says no
// process keeps a capability.
func TestLabel(t *testing.T) {
	img, label := built.Build(t, ".")
	a := imagetest.CheckLabel(t, img, label, imagetest.Label{
		Capabilities: []string{"CAP_NET_BIND_SERVICE"},
		Bind:         "/run/resolvconf:/etc", // as linuxkit/dhcpcd
		Command:      []string{"/usr/bin/dyad-dns", "-f", "/dns.yaml"},
	})
	if len(a.Actuator.Capabilities) != 0 || len(a.Engine.Capabilities) != 0 || len(a.Supervisor.Capabilities) != 0 || len(a.Operations) != 1 {
		t.Errorf("audit: supervisor %v actuator %v engine %v, operations %v", a.Supervisor.Capabilities, a.Actuator.Capabilities, a.Engine.Capabilities, a.Operations)
	}
}

// TestStubInImage starts the image's default command as LinuxKit would,
// with the upstream dyad-dhcp would have written: it answers on
// 127.0.0.53 through unbound, points the node's resolv.conf at itself,
// and each process holds nothing (the supervisor's bounding set keeps the
// container's CAP_NET_BIND_SERVICE, unusable without it in its permitted
// set).
func TestStubInImage(t *testing.T) {
	testnet.RequireIsolated(t)
	img, label := built.Build(t, ".")
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	n.StartUnbound(t, []string{
		"example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60",
		"www.example.test. 300 IN A 192.0.2.80",
	})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := imagetest.NewContainer(t, img, label)
	upstreams := c.HostPath("/run/dyad/dhcp/resolv.conf")
	if err := os.MkdirAll(filepath.Dir(upstreams), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(upstreams, []byte(fmt.Sprintf("nameserver %s\n", n.ServerAddr.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := c.Start(t, n.Client, append(cf.Config.Entrypoint, cf.Config.Cmd...))
	imagetest.WaitFor(t, svc, "the node's resolv.conf pointed at the stub", func() bool {
		b, _ := os.ReadFile(c.HostPath("/run/resolvconf/resolv.conf"))
		return strings.Contains(string(b), "nameserver 127.0.0.53\n")
	})
	out, err := n.Run(t, n.Client, "kdig", "+short", "+time=2", "+retry=0", "@127.0.0.53", "www.example.test.", "A")
	if err != nil || strings.TrimSpace(string(out)) != "192.0.2.80" {
		t.Errorf("www through the stub: %v\n%s\n%s", err, out, svc.Output())
	}
	imagetest.WaitFor(t, svc, "a confined supervisor", func() bool {
		return testnet.ProcStatus(svc.Pid())["CapPrm"] == imagetest.Hex(0)
	})
	procs := testnet.StageProcs(t, "dyad-dns", svc.Pid())
	bind := imagetest.Hex(1 << unix.CAP_NET_BIND_SERVICE)
	zero := imagetest.Hex(0)
	want := map[string]map[string]string{
		"supervisor": {"Uid": "0 0 0 0", "CapPrm": zero, "CapEff": zero, "CapBnd": bind},
		"actuator":   {"Uid": "0 0 0 0", "CapPrm": zero, "CapEff": zero, "CapInh": zero, "CapAmb": zero, "NoNewPrivs": "1", "Seccomp": "2"},
		"engine": {"Uid": "2103 2103 2103 2103", "Gid": "2103 2103 2103 2103", "Groups": "", "CapPrm": zero,
			"CapEff": zero, "CapInh": zero, "CapAmb": zero, "NoNewPrivs": "1", "Seccomp": "2"},
	}
	for stage, fields := range want {
		got := testnet.ProcStatus(procs[stage])
		for k, v := range fields {
			if got[k] != v {
				t.Errorf("%s: %s is %q, want %q", stage, k, got[k], v)
			}
		}
	}
	if err := svc.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := svc.Wait(20 * time.Second); err != nil {
		t.Fatalf("the service did not stop: %v\n%s", err, svc.Output())
	}
}
