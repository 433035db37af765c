package examples

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
)

// TestDnsExample boots examples/dns.yml against an unbound the test runs
// on the host's loopback, port 5353, which the guest reaches at
// 10.0.2.2: the check asks the stub on 127.0.0.53 for a name only that
// unbound knows, the node's resolv.conf points at the stub, and the dns
// container held nothing but the label's CAP_NET_BIND_SERVICE in its
// bounding set.
func TestDnsExample(t *testing.T) {
	testnet.RequireTools(t, "unbound")
	startHostUnbound(t)
	console := boot(t, "dns.yml")
	if !strings.Contains(console, "dns test suite PASSED") {
		t.Error("the check did not pass (see the console)")
	}
	if bnd, _ := containerLine(t, console, "service", "dns"); bnd != "CAP_NET_BIND_SERVICE" {
		t.Errorf("the dns service's bounding set %s, want CAP_NET_BIND_SERVICE only", bnd)
	}
}

// startHostUnbound runs unbound on 127.0.0.1:5353 answering example.test.
// and refusing every other name; the test's cleanup stops it.
func startHostUnbound(t *testing.T) {
	t.Helper()
	conf := testnet.UnboundConf(t, "127.0.0.1", 5353, []string{`module-config: "iterator"`, `local-zone: "test." nodefault`,
		`local-zone: "example.test." static`, `local-data: "example.test. 3600 IN SOA ns.example.test. host.example.test. 1 7200 900 1209600 60"`,
		`local-data: "www.example.test. 300 IN A 192.0.2.80"`, `local-zone: "." refuse`})
	p := testnet.StartCommand(t, exec.Command("unbound", "-d", "-c", conf))
	if !testnet.WaitFor(10*time.Second, func() bool {
		out, err := exec.Command("kdig", "+short", "+time=1", "+retry=0", "-p", "5353", "@127.0.0.1", "www.example.test.", "A").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "192.0.2.80"
	}) {
		t.Fatalf("unbound on 127.0.0.1:5353 does not answer:\n%s", p.Output())
	}
}
