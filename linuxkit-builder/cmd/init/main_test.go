package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runMainEnv makes the test binary run main instead of the tests.
const runMainEnv = "DYAD_INIT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestRefusesWhenNotPID1 runs init as an ordinary process, as anyone might
// on a host by mistake: it must refuse before touching anything.
func TestRefusesWhenNotPID1(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"-q"}} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%q: %v, want exit status 2", args, err)
		}
		if !strings.Contains(string(out), "runs only as PID 1") {
			t.Errorf("%q: output %q, want the refusal", args, out)
		}
	}
}
