// Package sdk is what a dyad daemon is written against: the stages of its
// processes (supervisor, actuator, engine), the supervision of the
// engine, the control channel between supervisor and actuator, logging and
// the status socket.
//
// A daemon binary runs as three processes, told apart by argv[0] so that
// ps shows which is which ("dyad-dhcp: engine"):
//
//   - the supervisor (what the operator started, root) reads the
//     configuration, opens the privileged resources, starts the actuator
//     and the engine, then keeps only the capabilities needed to restart
//     the engine; it forwards signals;
//   - the actuator keeps only the capabilities of its grant and serves the
//     engine's requests;
//   - the engine holds no privilege and runs the protocol.
package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Stage is which of a daemon's processes this is.
type Stage string

// The stages.
const (
	StageSupervisor Stage = "supervisor"
	StageActuator   Stage = "actuator"
	StageEngine     Stage = "engine"
)

// StageOf tells the stage from argv[0]: "NAME: STAGE" for the children,
// anything else is the supervisor the operator started.
func StageOf(argv0, name string) Stage {
	s, ok := strings.CutPrefix(argv0, name+": ")
	if ok && (Stage(s) == StageActuator || Stage(s) == StageEngine) {
		return Stage(s)
	}
	return StageSupervisor
}

// Argv0 is the argv[0] of a stage.
func Argv0(name string, s Stage) string { return name + ": " + string(s) }

// NewLogger returns the structured logger every stage writes to stderr,
// tagged with the stage so interleaved lines stay readable.
func NewLogger(w io.Writer, name string, s Stage, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("daemon", name, "proc", string(s))
}

// LoadConfig reads a daemon's YAML configuration file into v strictly: an
// unknown key or a wrong type is an error naming the file and the line. A
// missing file is an error only when must is set; it reports whether a
// file was read.
func LoadConfig(path string, must bool, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !must {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("config: %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return true, nil
}

// Duration is a time.Duration a configuration file writes as Go does:
// 128ms, 30s, 1h.
type Duration time.Duration

// UnmarshalYAML reads a duration, naming the line of one it cannot.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 128ms, 30s or 1h", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// FileStamp tells a watched file's versions apart: its size and
// modification time, "" when it does not exist, or why it cannot be
// looked at. A daemon reads the file again when its stamp changes.
func FileStamp(path string) string {
	if path == "" {
		return ""
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ""
	case err != nil:
		return err.Error()
	}
	return fmt.Sprint(st.Size(), st.ModTime().UnixNano())
}
