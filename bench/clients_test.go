package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/dyad-project/dyad/internal/testnet"
)

// A dhcpClient is one of the clients compared: how to run it once (get a
// lease, then exit or be stopped) and as a daemon, and how to forget its
// saved lease so that the next run starts from INIT with a DISCOVER.
type dhcpClient struct {
	name string
	// oneShot and daemon show the flags that matter, for the tables; the
	// paths and hook script added to isolate the client are left out.
	oneShotShown, daemonShown string
	oneShot, daemon           []string
	// exits says whether the one-shot run exits by itself once it has
	// configured the address; otherwise it is stopped once it has.
	exits bool
	// reset removes the saved lease (and pid files) before a run.
	reset func() error
}

// Hook scripts. The stock ones rewrite resolv.conf and the host name; for
// dhclient and udhcpc, configuring the address is the script's job, so
// theirs does just that (and the default route, as the stock ones do).
const (
	noopScript = "#!/bin/sh\nexit 0\n"

	dhclientScript = `#!/bin/sh
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
	ip -4 addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
	if [ -n "$new_routers" ]; then
		set -- $new_routers
		ip -4 route add default via "$1" dev "$interface"
	fi
	;;
esac
exit 0
`

	udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip -4 addr add "$ip/$mask" dev "$interface"
	if [ -n "$router" ]; then
		set -- $router
		ip -4 route add default via "$1" dev "$interface"
	fi
	;;
esac
exit 0
`
)

// dhcpcdDBDir and dhcpcdRunDir are where Debian's dhcpcd keeps its leases,
// DUID and secret, and its pid files and sockets; it has no flags to move
// them. isolateClientState covers the first with a tmpfs in the test's
// private mount namespace; /run is one already (testnet.Isolate).
const (
	dhcpcdDBDir  = "/var/lib/dhcpcd"
	dhcpcdRunDir = "/run/dhcpcd"
	// dhclientDir is dhclient's default lease directory; the runs pass
	// -lf and -pf, so it is covered only in case.
	dhclientDir = "/var/lib/dhcp"
)

// isolateClientState mounts empty tmpfs over the peers' fixed state
// directories, in the test's private mount namespace (nothing reaches the
// host), and masks /dev/log, should it exist, so that the syslog of dhcpcd
// and dhclient goes nowhere.
func isolateClientState(t *testing.T) {
	t.Helper()
	testnet.RequireIsolated(t)
	for _, dir := range []string{dhcpcdDBDir, dhclientDir} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("bench: %s is not a directory (%v): is the client installed?", dir, err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=16m"); err != nil {
			t.Fatalf("bench: mounting a tmpfs on %s: %v", dir, err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	}
	if _, err := os.Lstat("/dev/log"); err == nil {
		if err := syscall.Mount("/dev/null", "/dev/log", "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bench: masking /dev/log: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount("/dev/log", syscall.MNT_DETACH) })
	}
}

// dhcpClients returns the four clients, each with its own directory under
// base, for interface ifname. dyad is the dyad-dhcp binary.
func dhcpClients(t *testing.T, base, dyad, ifname string) []*dhcpClient {
	t.Helper()
	testnet.RequireTools(t, "dhcpcd", "dhclient", "busybox", "ip")
	dir := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	script := func(d, body string) string {
		p := filepath.Join(d, "hook")
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lookPath := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	dy := dir("dyad-dhcp")
	dyState, dyRun := filepath.Join(dy, "state"), filepath.Join(dy, "run")
	dyArgs := []string{"-f", "/dev/null", "--state-dir", dyState, "--run-dir", dyRun,
		"--resolv-conf", filepath.Join(dy, "resolv.conf"), "--ntp-conf", filepath.Join(dy, "ntp.conf")}

	dc := dir("dhcpcd")
	dcHook := script(dc, noopScript)
	dcArgs := []string{"-f", "/dev/null", "-c", dcHook}

	dh := dir("dhclient")
	dhHook := script(dh, dhclientScript)
	dhLease, dhPid := filepath.Join(dh, "dhclient.leases"), filepath.Join(dh, "dhclient.pid")
	dhArgs := []string{"-cf", "/dev/null", "-lf", dhLease, "-pf", dhPid, "-sf", dhHook}

	ud := dir("udhcpc")
	udHook := script(ud, udhcpcScript)

	busybox, dhcpcd, dhclient := lookPath("busybox"), lookPath("dhcpcd"), lookPath("dhclient")
	return []*dhcpClient{
		{
			name:         "dyad-dhcp",
			oneShotShown: "dyad-dhcp -1",
			daemonShown:  "dyad-dhcp",
			oneShot:      slices.Concat([]string{dyad, "-1", "-t", "10"}, dyArgs, []string{ifname}),
			daemon:       slices.Concat([]string{dyad}, dyArgs, []string{ifname}),
			exits:        true,
			// The saved lease, else the next run starts in INIT-REBOOT;
			// the run directory only holds the status socket.
			reset: func() error { return removeAll(dyState, dyRun) },
		},
		{
			name:         "dhcpcd",
			oneShotShown: "dhcpcd -1 -4 --noarp --nodelay",
			daemonShown:  "dhcpcd -B -4 --noarp --nodelay",
			oneShot:      slices.Concat([]string{dhcpcd, "-1", "-4", "--noarp", "--nodelay", "-t", "10"}, dcArgs, []string{ifname}),
			daemon:       slices.Concat([]string{dhcpcd, "-B", "-4", "--noarp", "--nodelay"}, dcArgs, []string{ifname}),
			exits:        true,
			// The leases go; the DUID and secret stay, as on a host
			// that reboots, so the client identifier does not change
			// from run to run.
			reset: func() error {
				leases, _ := filepath.Glob(filepath.Join(dhcpcdDBDir, "*.lease*"))
				return removeAll(append(leases, dhcpcdRunDir)...)
			},
		},
		{
			name:         "dhclient",
			oneShotShown: "dhclient -1 -d",
			daemonShown:  "dhclient -d",
			// -d keeps it in the foreground once bound, rather than
			// forking to the background: it is stopped by its PID.
			oneShot: slices.Concat([]string{dhclient, "-1", "-d"}, dhArgs, []string{ifname}),
			daemon:  slices.Concat([]string{dhclient, "-d"}, dhArgs, []string{ifname}),
			exits:   false,
			reset:   func() error { return removeAll(dhLease, dhPid) },
		},
		{
			name:         "udhcpc",
			oneShotShown: "busybox udhcpc -n -q",
			daemonShown:  "busybox udhcpc -f",
			oneShot:      []string{busybox, "udhcpc", "-n", "-q", "-f", "-i", ifname, "-s", udHook},
			daemon:       []string{busybox, "udhcpc", "-f", "-i", ifname, "-s", udHook},
			exits:        true,
			reset:        func() error { return nil },
		},
	}
}

func removeAll(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// versions returns one line naming the version of each peer.
func versions() string {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return name + " (version unknown)"
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		line, _, _ = strings.Cut(line, "  Copyright")
		return strings.TrimSpace(line)
	}
	bb := first("busybox")
	if i := strings.Index(bb, " multi-call"); i > 0 {
		bb = bb[:i]
	}
	return fmt.Sprintf("%s; %s; %s; %s; kea-dhcp4 %s", first("dhcpcd", "--version"), first("dhclient", "--version"),
		bb, first("dnsmasq", "--version"), first("kea-dhcp4", "-v"))
}
