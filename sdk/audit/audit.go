// Package audit is the record of what a dyad daemon's processes hold and
// what its actuator will do, as the daemon's binary states it. It depends
// on nothing but the standard library (and internal/jsonstrict), so that
// the image tools can read it without linking a daemon.
package audit

import (
	"encoding/json"
	"fmt"

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
