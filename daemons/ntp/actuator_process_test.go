package ntp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/daemons/ntp"
	"github.com/dyad-project/dyad/internal/actuatortest"
	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/privsep"
)

// TestSandboxOfRunningDaemon reads /proc of a running dyad-ntp that
// disciplines the real clock: the actuator holds CAP_SYS_TIME and nothing
// else, the engine nothing, as its own user, with no_new_privs; every
// thread of every process is under seccomp. No server answers it, so it
// never asks for more than to read the clock: the host's is not changed.
func TestSandboxOfRunningDaemon(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	n.AddClientAddress(t)
	run := filepath.Join(t.TempDir(), "run")
	d := n.Start(t, n.Client, binary(t), "-d", "-f", "/dev/null", "--run-dir", run, "--dhcp-servers", "none", n.ServerAddr.Addr().String())
	// Each process confines itself, in its own time.
	for _, stage := range []string{"engine", "actuator", "supervisor"} {
		if !d.WaitLog("msg=confined daemon=dyad-ntp proc="+stage, 10*time.Second) {
			t.Fatalf("the %s did not confine itself\n%s", stage, d.Output())
		}
	}
	procs := testnet.StageProcs(t, "dyad-ntp", d.Pid())
	const sysTime = uint64(1) << 25
	supCaps := uint64(1)<<6 | 1<<7 | 1<<8 | 1<<5 // SETGID SETUID SETPCAP KILL
	testnet.CheckConfinement(t, "supervisor", procs["supervisor"], testnet.Confinement{Caps: supCaps, Supervisor: true})
	testnet.CheckConfinement(t, "actuator", procs["actuator"], testnet.Confinement{Caps: sysTime})
	testnet.CheckConfinement(t, "engine", procs["engine"], testnet.Confinement{UID: ntp.DefaultEngineID, GID: ntp.DefaultEngineID, Engine: true})
	if strings.Contains(string(d.Output()), "op=clock.step") || strings.Contains(string(d.Output()), "op=clock.slew") {
		t.Errorf("the daemon touched the clock:\n%s", d.Output())
	}
}

// TestCompromisedEngineAgainstRealActuator plays a compromised engine
// against the actuator process itself, started from the real binary with
// its sandbox, over a simulated clock: after a first step, a step of 10^9
// s, a frequency of 10^6 ppm, a step every millisecond, and operations of
// another grant are all refused; the clock took only the first step.
func TestCompromisedEngineAgainstRealActuator(t *testing.T) {
	testnet.RequireRoot(t)
	n := testnet.NewNet(t)
	dir := t.TempDir()
	simLog := filepath.Join(dir, "clock.log")
	args := []string{"-f", "/dev/null", "--run-dir", filepath.Join(dir, "run"), "--dhcp-servers", "none", "--simulate-clock", simLog, "192.0.2.1"}

	a := actuatortest.Start(t, n, binary(t), "dyad-ntp", "ntp", args...)
	p, ask := a.Proc, a.Ask
	if r := ask(&privsep.ClockStep{Offset: int64(2500 * time.Millisecond)}); r.Error != "" || r.Clock == nil {
		t.Fatalf("the first step: %+v", r)
	}
	hostile := []privsep.Message{
		&privsep.ClockStep{Offset: int64(1e9 * float64(time.Second))},
		&privsep.ClockFrequency{Frequency: 1_000_000 << 16},
		&privsep.ClockSlew{Offset: int64(time.Hour)},
		&privsep.ClockStatus{Leap: 7},
		&privsep.Hostname{Name: "pwned"},
		&privsep.LinkUp{Interface: n.ClientIf},
	}
	for range 20 {
		hostile = append(hostile, &privsep.ClockStep{Offset: int64(time.Millisecond)})
	}
	for i, m := range hostile {
		if r := ask(m); r.Error == "" {
			t.Errorf("request %d, %s %+v, was not refused", i, m.Kind(), m)
		}
		if _, ok := m.(*privsep.ClockStep); ok && i >= 6 {
			time.Sleep(time.Millisecond)
		}
	}
	// Still serving, and the clock took the first step only.
	if r := ask(&privsep.ClockRead{}); r.Error != "" || r.Clock == nil {
		t.Fatalf("a read after the refusals: %+v\n%s", r, p.Output())
	}
	b, _ := os.ReadFile(simLog)
	if got := strings.Count(string(b), `"op":"clock.step"`); got != 1 {
		t.Errorf("the simulated clock took %d steps, want 1:\n%s", got, b)
	}
	if !strings.Contains(string(p.Output()), "beyond the panic threshold") || !strings.Contains(string(p.Output()), "outside ±500 ppm") {
		t.Errorf("the refusals are not logged with their reasons:\n%s", p.Output())
	}
}
