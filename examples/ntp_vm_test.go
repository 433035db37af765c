package examples

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyad-project/dyad/internal/testnet"
)

// TestNtpExample boots examples/ntp.yml with the guest's clock 16 years
// wrong (-rtc base=2010-01-01) against a chronyd the test runs on the
// host's loopback, which the guest reaches at 10.0.2.2: dyad-ntp steps the
// guest's clock to within half a second of the host's, says so in its log,
// and its container holds CAP_SYS_TIME only. chronyd runs with -x: it
// never touches the host's clock; only the guest's is set.
func TestNtpExample(t *testing.T) {
	testnet.RequireTools(t, "chronyd")
	startHostChrony(t)
	var mu sync.Mutex
	var offsets []time.Duration
	console := bootWith(t, "ntp.yml", []string{"-qemu-arg", "-rtc", "-qemu-arg", "base=2010-01-01"}, func(line string, at time.Time) {
		_, rest, ok := strings.Cut(line, "guest clock ")
		if !ok {
			return
		}
		secs, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		if err != nil {
			return
		}
		// The line is printed as the guest's second secs begins.
		mu.Lock()
		offsets = append(offsets, time.Unix(secs, 0).Sub(at))
		mu.Unlock()
	})
	if !strings.Contains(console, "ntp test suite PASSED") {
		t.Error("the check did not pass (see the console)")
	}
	if !strings.Contains(console, `msg="stepping the clock"`) {
		t.Error("no step in dyad-ntp's log")
	}
	if bnd, eff := containerLine(t, console, "service", "ntpd"); bnd != "CAP_SYS_TIME" || eff != "CAP_SYS_TIME" {
		t.Errorf("the ntpd service held CapBnd %s CapEff %s, want CAP_SYS_TIME only", bnd, eff)
	}
	if len(offsets) < 3 {
		t.Fatalf("%d readings of the guest's clock", len(offsets))
	}
	slices.Sort(offsets)
	median := offsets[len(offsets)/2]
	t.Logf("guest clock minus host clock, as each guest second began: %v (median %s)", offsets, median)
	if median < -500*time.Millisecond || median > 500*time.Millisecond {
		t.Errorf("the guest's clock is %s from the host's, want within 0.5 s", median)
	}
}

// startHostChrony runs chronyd serving the host's clock on 127.0.0.1:123,
// with -x so that it never changes a clock; the test's cleanup stops it.
func startHostChrony(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "chrony.conf")
	body := fmt.Sprintf("local stratum 1\nallow all\nbindaddress 127.0.0.1\ncmdport 0\npidfile %s\n", filepath.Join(dir, "chronyd.pid"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	testnet.StartCommand(t, exec.Command("chronyd", "-d", "-x", "-f", conf))
}
