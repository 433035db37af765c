package dhcp_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/sdk"
)

// TestCompromisedEngineAgainstRealActuator plays a compromised engine
// against the actuator process itself, started from the real binary in a
// network namespace, sandbox and all: the test holds the supervisor's end
// of the control channel and writes straight to the engine's end of the
// pipe. Every hostile request is refused and logged, nothing reaches the
// host, and the actuator stays alive and serves a legitimate request.
func TestCompromisedEngineAgainstRealActuator(t *testing.T) {
	n := testnet.NewNet(t)
	c := newClient(t, n)
	// The launcher makes the state directory; here the test stands in.
	if err := os.MkdirAll(c.state, 0o700); err != nil {
		t.Fatal(err)
	}
	sup, act, err := sdk.ControlPair()
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	cmd := n.Command(t.Context(), n.Client, binary(t), c.args(n.ClientIf)...)
	// ip netns exec runs the binary by path with this argv[0]: that names
	// the stage.
	cmd.Args = append([]string{"ip", "netns", "exec", n.Client, "bash", "-c", `exec -a "dyad-dhcp: actuator" "$0" "$@"`, binary(t)}, c.args(n.ClientIf)...)
	cmd.ExtraFiles = []*os.File{act.File()}
	p := testnet.StartCommand(t, cmd)
	act.Close()

	engAct, eng, err := privsep.Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := sup.SendSession(engAct.File()); err != nil {
		t.Fatal(err)
	}
	engAct.Close()

	var id uint64
	ask := func(m privsep.Message) *privsep.Reply {
		t.Helper()
		id++
		if err := eng.Send(id, m); err != nil {
			t.Fatalf("send %s: %v", m.Kind(), err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			_, got, _, err := eng.Receive()
			if err != nil {
				t.Fatalf("receive: %v\n%s", err, p.Output())
			}
			switch got := got.(type) {
			case *privsep.Reply:
				return got
			case *privsep.Welcome:
				return &privsep.Reply{}
			}
			// link events come in between
		}
		t.Fatal("no reply")
		return nil
	}
	ask(&privsep.Hello{Version: privsep.ProtocolVersion, Daemon: "dhcp"})

	hostile := []privsep.Message{
		&privsep.LinkUp{Interface: "lo"},
		&privsep.AddrReplace{Interface: "veth-other", Address: netip.MustParsePrefix("10.9.9.9/24"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.AddrReplace{Interface: n.ClientIf, Address: netip.MustParsePrefix("127.0.0.9/8"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.AddrReplace{Interface: n.ClientIf, Address: netip.MustParsePrefix("239.1.1.1/24"), ValidLifetime: 60, PreferredLifetime: 60},
		&privsep.RouteReplace{Route: privsep.Route{Interface: n.ClientIf, Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("203.0.113.1")}},
		&privsep.LeaseSave{Lease: privsep.Lease{Interface: "../../etc"}},
		&privsep.Hostname{Name: "pwned"},
	}
	for _, m := range hostile {
		if r := ask(m); r.Error == "" {
			t.Errorf("%s %+v was not refused", m.Kind(), m)
		}
	}
	// Garbage and an oversize datagram, raw.
	for _, raw := range [][]byte{{0xde, 0xad, 0xbe, 0xef}, make([]byte, privsep.MaxMessage+1)} {
		if err := writeRaw(eng, raw); err != nil {
			t.Fatal(err)
		}
		_, got, _, err := eng.Receive()
		for err == nil && got.Kind() == privsep.KindLink {
			_, got, _, err = eng.Receive()
		}
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := got.(*privsep.Reply); !ok || r.Error == "" {
			t.Errorf("raw %d bytes: got %+v, want a refusal", len(raw), got)
		}
	}

	if p.Exited() {
		t.Fatalf("the actuator died:\n%s", p.Output())
	}
	if r := ask(&privsep.LinkMTU{Interface: n.ClientIf, MTU: 1400}); r.Error != "" {
		t.Errorf("a legitimate request was refused: %s", r.Error)
	}
	if mtu := n.Link(t, n.Client, n.ClientIf).MTU; mtu != 1400 {
		t.Errorf("MTU %d after a granted change to 1400", mtu)
	}
	if a := n.Addrs(t, n.Client, n.ClientIf); len(a) != 0 {
		t.Errorf("addresses %v reached the host", a)
	}
	if _, err := os.Stat(filepath.Join(c.state, "..", "..", "etc.lease")); err == nil {
		t.Errorf("a lease file was written outside the state directory")
	}
	if out := string(p.Output()); strings.Count(out, "refused engine request") < len(hostile)+2 {
		t.Errorf("refusals not all logged:\n%s", out)
	}
}

func writeRaw(c *privsep.Conn, b []byte) error {
	raw, err := c.File().SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		_, werr = syscallWrite(int(fd), b)
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

func syscallWrite(fd int, b []byte) (int, error) { return unix.Write(fd, b) }
