package testnet

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// udhcpcTimeout bounds one run of Udhcpc.
const udhcpcTimeout = 20 * time.Second

// udhcpcScript prints what udhcpc hands its script, and changes nothing: the
// stock script would configure the interface and rewrite resolv.conf.
const udhcpcScript = `#!/bin/sh
echo "testnet-event=$1"
env | while IFS= read -r line; do echo "testnet-env:$line"; done
`

// Udhcpc is a reference client: it runs busybox's udhcpc once on the client
// interface (up to five DISCOVERs a second apart, asking also for the MTU,
// NTP servers, search list, static routes and host name) and returns the
// variables udhcpc gave its script for the lease: ip, mask, subnet, router,
// dns, domain, search, mtu, ntpsrv, staticroutes, hostname, lease, serverid,
// opt58 and opt59 (T1 and T2 in hex), and so on. The script configures
// nothing. args are added to udhcpc's command line: "-r", addr asks for an
// address.
func (n *Net) Udhcpc(t testing.TB, args ...string) (map[string]string, error) {
	t.Helper()
	RequireTools(t, "busybox")
	script := filepath.Join(t.TempDir(), "udhcpc-script")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatalf("testnet: writing udhcpc's script: %v", err)
	}
	argv := append([]string{
		"udhcpc", "-i", n.ClientIf, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script,
		"-O", "mtu", "-O", "ntpsrv", "-O", "search", "-O", "staticroutes", "-O", "hostname", "-O", "domain",
	}, args...)
	// Five tries a second apart take five seconds; with the link down,
	// udhcpc waits regardless of -n, so bound it.
	out, err := n.runFor(t, udhcpcTimeout, n.Client, "busybox", argv...)
	if err != nil {
		return nil, fmt.Errorf("udhcpc: %w\n%s", err, out)
	}
	env, ok := parseScriptEnv(out, "bound")
	if !ok {
		return nil, fmt.Errorf("udhcpc called its script for no bound event:\n%s", out)
	}
	return env, nil
}

// parseScriptEnv returns the environment that the last call of udhcpcScript
// for event printed.
func parseScriptEnv(out []byte, event string) (map[string]string, bool) {
	var env map[string]string
	var in bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "testnet-event="); ok {
			in = e == event
			if in {
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
