// Package actuatortest lets a test play an engine against a daemon's
// actuator: the actuator stage of the real binary, started alone, with its
// sandbox, in a test's network namespace, handed a session as its
// supervisor would hand it one.
package actuatortest

import (
	"os"
	"testing"

	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/privsep"
	"github.com/dyad-project/dyad/sdk"
)

// Session is a test's engine session with an actuator process.
type Session struct {
	t testing.TB
	// Proc is the actuator.
	Proc *testnet.Proc
	// Engine is the engine's end of the pipe.
	Engine *privsep.Conn
	id     uint64
}

// Start starts binary's actuator stage in n's client namespace with args,
// under the argv[0] "command: actuator" that names the stage, hands it a
// session and says hello as daemon ("dhcp", "ntp"). Both are stopped by
// the test's cleanup.
func Start(t testing.TB, n *testnet.Net, binary, command, daemon string, args ...string) *Session {
	t.Helper()
	sup, act, err := sdk.ControlPair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Close() })
	cmd := n.Command(t.Context(), n.Client, binary)
	// ip netns exec runs the binary by path with this argv[0], which
	// names the stage.
	cmd.Args = append([]string{"ip", "netns", "exec", n.Client, "bash", "-c", `exec -a "` + command + `: actuator" "$0" "$@"`, binary}, args...)
	cmd.ExtraFiles = []*os.File{act.File()}
	p := testnet.StartCommand(t, cmd)
	act.Close()

	engAct, eng, err := privsep.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	if _, err := sup.SendSession(engAct.File()); err != nil {
		t.Fatal(err)
	}
	engAct.Close()
	s := &Session{t: t, Proc: p, Engine: eng}
	s.Ask(&privsep.Hello{Version: privsep.ProtocolVersion, Daemon: daemon})
	return s
}

// Ask sends m and returns the actuator's reply to it; a welcome stands for
// an empty reply. What else the actuator sends in between (link events)
// is skipped, a hundred messages at most.
func (s *Session) Ask(m privsep.Message) *privsep.Reply {
	t := s.t
	t.Helper()
	s.id++
	if err := s.Engine.Send(s.id, m); err != nil {
		t.Fatalf("send %s: %v", m.Kind(), err)
	}
	for range 100 {
		_, got, _, err := s.Engine.Receive()
		if err != nil {
			t.Fatalf("receive: %v\n%s", err, s.Proc.Output())
		}
		switch got := got.(type) {
		case *privsep.Reply:
			return got
		case *privsep.Welcome:
			return &privsep.Reply{}
		}
	}
	t.Fatalf("no reply to %s", m.Kind())
	return nil
}
