// Package ntp_test runs the ntp image as LinuxKit would: its layer
// unpacked into a root, read-only, with the label's binds and
// capabilities, and the command linuxkit/openntpd runs by default, with
// LinuxKit's own ntpd.conf.
package ntp_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/imagetest"
	"github.com/dyad-project/dyad/internal/testnet"
)

func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

// built is the ntp image, built once for every test of the package.
var built imagetest.Once

// TestLabel: the image holds CAP_SYS_TIME and nothing else (openntpd's
// holds five), runs as openntpd does by default, with LinuxKit's ntpd.conf
// at openntpd's path, and its audit says the actuator keeps CAP_SYS_TIME.
func TestLabel(t *testing.T) {
	img, label := built.Build(t, ".")
	a := imagetest.CheckLabel(t, img, label, imagetest.Label{
		Capabilities: []string{"CAP_SYS_TIME"},
		Bind:         "/etc/resolv.conf:/etc/resolv.conf",         // the resolver's configuration, as linuxkit/openntpd
		Command:      []string{"/usr/bin/dyad-ntp", "ntpd", "-d"}, // openntpd's
	})
	if !slices.Equal(a.Actuator.Capabilities, []string{"CAP_SYS_TIME"}) || len(a.Engine.Capabilities) != 0 || len(a.Supervisor.Capabilities) != 0 {
		t.Errorf("audit: supervisor %v actuator %v engine %v", a.Supervisor.Capabilities, a.Actuator.Capabilities, a.Engine.Capabilities)
	}
	conf, err := os.ReadFile("../../daemons/ntp/testdata/openntpd-linuxkit.conf")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for range 1 << 12 {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
		if h.Typeflag == tar.TypeSymlink {
			files[h.Name] = []byte("-> " + h.Linkname)
		}
	}
	if string(files["etc/ntpd.conf"]) != string(conf) {
		t.Errorf("/etc/ntpd.conf is not LinuxKit's:\n%s", files["etc/ntpd.conf"])
	}
	if _, ok := files["usr/sbin/ntpd"]; !ok {
		t.Error("no /usr/sbin/ntpd")
	}
}

// TestOpenntpdDropIn starts the image's default command as LinuxKit
// would. No name resolves and no server answers in its namespace, so it
// reads the clock and changes nothing; the test reads what each process
// holds: the actuator CAP_SYS_TIME, the engine nothing, as dyad-ntp (its
// bounding set is the container's: engine-exec, without CAP_SETPCAP,
// cannot drop it; no_new_privs and a user of its own keep it unusable).
func TestOpenntpdDropIn(t *testing.T) {
	testnet.RequireIsolated(t)
	img, label := built.Build(t, ".")
	n := testnet.NewNet(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := imagetest.NewContainer(t, img, label)
	svc := c.Start(t, n.Client, append(cf.Config.Entrypoint, cf.Config.Cmd...))
	// The engine at work: it looks up the pool, with no name server to ask.
	imagetest.WaitFor(t, svc, "the engine", func() bool {
		return strings.Contains(string(svc.Output()), `msg="cannot resolve a server's name" daemon=dyad-ntp proc=engine name=pool.ntp.org`)
	})
	imagetest.WaitFor(t, svc, "a confined supervisor", func() bool {
		return testnet.ProcStatus(svc.Pid())["CapPrm"] == imagetest.Hex(0)
	})
	procs := testnet.StageProcs(t, "dyad-ntp", svc.Pid())
	sysTime := imagetest.Hex(1 << unix.CAP_SYS_TIME)
	want := map[string]map[string]string{
		"supervisor": {"Uid": "0 0 0 0", "CapPrm": imagetest.Hex(0), "CapEff": imagetest.Hex(0), "CapBnd": sysTime},
		"actuator":   {"Uid": "0 0 0 0", "CapPrm": sysTime, "CapEff": sysTime, "CapBnd": sysTime, "CapInh": imagetest.Hex(0), "CapAmb": imagetest.Hex(0), "NoNewPrivs": "1", "Seccomp": "2"},
		"engine": {"Uid": "2102 2102 2102 2102", "Gid": "2102 2102 2102 2102", "Groups": "", "CapPrm": imagetest.Hex(0),
			"CapEff": imagetest.Hex(0), "CapInh": imagetest.Hex(0), "CapAmb": imagetest.Hex(0), "NoNewPrivs": "1", "Seccomp": "2"},
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
	if out := string(svc.Output()); strings.Contains(out, "op=clock.step") || strings.Contains(out, "op=clock.slew") {
		t.Errorf("the clock was changed:\n%s", out)
	}
}
