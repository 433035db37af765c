package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/internal/testnet"
)

// TestDemo runs what `make run` runs, scripts/demo, and reads the report
// the guest prints: the lease from QEMU's DHCP server, the clock set from
// the host's chronyd, and names answered by the stub, one through the
// host's unbound and one from its local records. Each image's container
// held no more than its label.
func TestDemo(t *testing.T) {
	testnet.RequireTools(t, "chronyd", "unbound")
	dyad, cacheDir := setup(t)
	cmd := exec.Command(filepath.Join("..", "scripts", "demo"))
	cmd.Env = append(os.Environ(), "BIN="+filepath.Dir(dyad), "OUT="+t.TempDir(), "DYAD_CACHE="+cacheDir)
	out, err := cmd.CombinedOutput()
	console := string(out)
	t.Logf("scripts/demo:\n%s", console)
	if err != nil {
		t.Fatalf("scripts/demo: %v", err)
	}
	if !strings.Contains(console, "=== demo: lease yes, clock yes, names yes") {
		t.Error("the report does not find the lease, the clock and the names (see the console)")
	}
	if s := section(console, "=== the lease's name servers"); !strings.Contains(s, "nameserver 10.0.2.3") {
		t.Errorf("dyad-dhcp did not write the lease's name server to /run/dyad/dhcp/resolv.conf:\n%s", s)
	}
	if s := section(console, "=== /etc/resolv.conf"); !strings.Contains(s, "nameserver 127.0.0.53") || strings.Contains(s, "10.0.2.3") {
		t.Errorf("the node's resolv.conf does not name the stub alone:\n%s", s)
	}
	for _, c := range []struct{ name, caps string }{
		{"dns", "CAP_NET_BIND_SERVICE"},
		{"ntpd", "CAP_SYS_TIME"},
		{"dhcpcd", labelCaps(t)},
	} {
		if bnd, _ := containerLine(t, console, "service", c.name); bnd != c.caps {
			t.Errorf("the %s service's bounding set %s, want %s", c.name, bnd, c.caps)
		}
	}
}

// section is the part of the console from header to the next "===" (the
// report's lines come prefixed with init's "[report] ").
func section(console, header string) string {
	_, rest, ok := strings.Cut(console, header)
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "==="); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
