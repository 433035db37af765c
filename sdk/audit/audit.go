// Package audit is the record of what a dyad daemon's processes hold and
// what its actuator will do, as the daemon's binary states it. It depends
// on nothing but the standard library (and internal/jsonstrict), so that
// the image tools can read it without linking a daemon.
package audit

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/dyad-project/dyad/internal/jsonstrict"
)

// Audit is what a daemon's binary says each of its processes holds and
// what its actuator will do: printed by the binary's audit command,
// embedded in the image by dyad pkg build (label Label), and shown by
// dyad audit. It is derived from the same grant and capability lists the
// daemon runs with, never written by hand.
type Audit struct {
	Daemon     string      `json:"daemon"`
	Supervisor Process     `json:"supervisor"`
	Actuator   Process     `json:"actuator"`
	Engine     Process     `json:"engine"`
	Operations []Operation `json:"operations"`
}

// Process is one process once it runs: its user, the capabilities it
// keeps, and its confinement.
type Process struct {
	User         string   `json:"user"`
	Capabilities []string `json:"capabilities"`
	NoNewPrivs   bool     `json:"no_new_privs"`
	Seccomp      string   `json:"seccomp"`
	Landlock     string   `json:"landlock"`
	Role         string   `json:"role"`
}

// Operation is one operation of the actuator's grant: what it does,
// the checks it passes, and the setting that grants it when the default
// configuration does not.
type Operation struct {
	Op     string `json:"op"`
	Does   string `json:"does"`
	Checks string `json:"checks"`
	// Only, when set, says which setting grants the operation; empty
	// means it is granted by default.
	Only string `json:"only,omitempty"`
}

// Label is the image label that carries a daemon's Audit as JSON.
const Label = "org.dyad.audit"

// Parse reads an Audit strictly.
func Parse(b []byte) (*Audit, error) {
	var a Audit
	if err := jsonstrict.Decode(b, &a); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if a.Daemon == "" {
		return nil, fmt.Errorf("audit: no daemon named")
	}
	return &a, nil
}

// Marshal writes the Audit as indented JSON.
func (a *Audit) Marshal() []byte {
	b, _ := json.MarshalIndent(a, "", "  ")
	return append(b, '\n')
}

// Command is a daemon's audit command: it prints the Audit that of gives
// for the configuration parse reads from the daemon's arguments. The
// engine launcher is the one of the machine that runs it; an image build,
// which runs it elsewhere, names the image's with -engine-launcher PATH
// before the daemon's own arguments, and of receives it ("" when none is
// named).
func Command[C any](daemon string, args []string, stdout, stderr io.Writer, parse func([]string, io.Writer) (C, error), of func(cfg C, launcher string) *Audit) int {
	launcher := ""
	if len(args) > 1 && args[0] == "-engine-launcher" {
		launcher, args = args[1], args[2:]
	}
	cfg, err := parse(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", daemon, err)
		return 2
	}
	stdout.Write(of(cfg, launcher).Marshal())
	return 0
}

// StartedThrough records that the supervisor starts and signals the
// engine through launcher, engine-exec set-user-ID to the engine's user,
// and what that costs the supervisor's confinement.
func (a *Audit) StartedThrough(launcher string) {
	a.Supervisor.NoNewPrivs = false
	a.Supervisor.Seccomp = "none: a filter needs no_new_privs, under which the kernel would ignore engine-exec's set-user-ID bit; so, root without no_new_privs, an exec would give it back the container's bounding set, and it execs only engine-exec"
	a.Supervisor.Role += "; starts and signals the engine through " + launcher + ", set-user-ID to the engine's user"
	a.Engine.Role += "; started by engine-exec, which sets its user and no_new_privs"
}
