package testnet

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dyad-project/dyad/privsep/sandbox"
)

// StageProcs finds a dyad daemon's actuator and engine among the children
// of its supervisor, by their argv[0] ("dyad-ntp: engine"), waiting up to
// five seconds for both; the supervisor is under "supervisor".
func StageProcs(t testing.TB, daemon string, supervisor int) map[string]int {
	t.Helper()
	out := map[string]int{"supervisor": supervisor}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, pid := range Children(supervisor) {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			argv0, _, _ := strings.Cut(string(cmd), "\x00")
			if stage, ok := strings.CutPrefix(argv0, daemon+": "); ok {
				out[stage] = pid
			}
		}
		if out["actuator"] != 0 && out["engine"] != 0 {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("cannot find the actuator and the engine of %s under %d: %v", daemon, supervisor, out)
	return nil
}

// Confinement is what every thread of a daemon's process must show in
// /proc: its user and group, its capabilities (permitted and effective;
// the bounding set no larger, and equal but for the supervisor's), no
// inheritable or ambient one, a seccomp filter, and for an engine
// no_new_privs and no supplementary group.
type Confinement struct {
	UID, GID uint32
	Caps     uint64
	Engine   bool
	// Supervisor allows a bounding set smaller than Caps: a thread that
	// started a child keeps the child's.
	Supervisor bool
}

// CheckConfinement checks every thread of pid against want; what names the
// process in messages.
func CheckConfinement(t testing.TB, what string, pid int, want Confinement) {
	t.Helper()
	tids, err := sandbox.Threads(pid)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, tid := range tids {
		st, err := sandbox.ReadThreadStatus(pid, tid)
		if err != nil {
			continue // the thread exited meanwhile
		}
		thread := fmt.Sprintf("%s thread %d", what, tid)
		for i := range 4 {
			if st.UID[i] != want.UID || st.GID[i] != want.GID {
				t.Errorf("%s: Uid %v Gid %v, want %d/%d", thread, st.UID, st.GID, want.UID, want.GID)
				break
			}
		}
		if want.Engine && len(st.Groups) != 0 {
			t.Errorf("%s: supplementary groups %v", thread, st.Groups)
		}
		if st.CapPrm != want.Caps || st.CapEff != want.Caps || st.CapBnd&^want.Caps != 0 || st.CapInh != 0 || st.CapAmb != 0 ||
			!want.Supervisor && st.CapBnd != want.Caps {
			t.Errorf("%s: CapInh %#x CapPrm %#x CapEff %#x CapBnd %#x CapAmb %#x, want %#x", thread, st.CapInh, st.CapPrm, st.CapEff, st.CapBnd, st.CapAmb, want.Caps)
		}
		if st.Seccomp != 2 {
			t.Errorf("%s: Seccomp %d, want 2 (filter)", thread, st.Seccomp)
		}
		if want.Engine && !st.NoNewPrivs {
			t.Errorf("%s: NoNewPrivs not set", thread)
		}
	}
}
