package testnet

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ChronyOptions says how a chronyd time server runs.
type ChronyOptions struct {
	// Shift is the error of the server's clock, given by faketime.
	// chronyd's receive timestamps come from the kernel, which faketime
	// does not shift: below a second the two disagree, and the server's
	// answers are not consistent.
	Shift time.Duration
	// Stratum is what the server says of itself; 1 by default.
	Stratum int
	// RateLimit, when set, is the options of chrony's ratelimit
	// directive, such as "interval 4 burst 1".
	RateLimit string
}

// StartChrony runs chronyd as an NTP server on the Net's server address,
// serving its own clock ("local"), with -x so that it never touches a
// clock, and waits until it answers. It is stopped by the test's cleanup.
func (n *Net) StartChrony(t testing.TB, o ChronyOptions) *Proc {
	t.Helper()
	RequireTools(t, "chronyd", "ntpdate")
	if o.Stratum == 0 {
		o.Stratum = 1
	}
	dir := t.TempDir()
	conf := []string{
		fmt.Sprintf("local stratum %d", o.Stratum),
		"allow all",
		"bindaddress " + n.ServerAddr.Addr().String(),
		"cmdport 0",
		"pidfile " + filepath.Join(dir, "chronyd.pid"),
	}
	if o.RateLimit != "" {
		conf = append(conf, "ratelimit "+o.RateLimit)
	}
	path := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"chronyd", "-d", "-x", "-f", path}
	if o.Shift != 0 {
		// libfaketime preloaded, not the faketime wrapper: the wrapper
		// runs chronyd as its child, which outlives a signal to it.
		lib, err := filepath.Glob("/usr/lib/*/faketime/libfaketime.so.1")
		if err != nil || len(lib) == 0 {
			t.Fatalf("testnet: no libfaketime.so.1 (run `make deps`)")
		}
		args = append([]string{"env", "LD_PRELOAD=" + lib[0], fmt.Sprintf("FAKETIME=%+.6fs", o.Shift.Seconds())}, args...)
	}
	p := n.Start(t, n.Server, args[0], args[1:]...)
	deadline := time.Now().Add(readyTimeout)
	for {
		out, err := n.runFor(t, 5*time.Second, n.Server, "ntpdate", "-q", "-t", "1", n.ServerAddr.Addr().String())
		if err == nil {
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("testnet: chronyd does not answer: %v\n%s\nchronyd:\n%s", err, out, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// AddClientAddress gives the Net's client end the address after the
// server's, for a client that needs one to talk to the server.
func (n *Net) AddClientAddress(t testing.TB) netip.Prefix {
	t.Helper()
	p := netip.PrefixFrom(n.ServerAddr.Addr().Next(), n.ServerAddr.Bits())
	if out, err := run(t.Context(), "ip", "-n", n.Client, "addr", "add", p.String(), "dev", n.ClientIf); err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	return p
}
