package sdk

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// CommandLine reads a daemon's command line over its configuration file:
// -f names the file, and the flags that stand for a key of the file
// replace what the file says only when they are given.
type CommandLine struct {
	*flag.FlagSet
	defaultFile string
	file        string
	// over applies the flags to the configuration, after the file.
	over []func(given map[string]bool)
}

// NewCommandLine returns the command line of daemon name, whose
// configuration file is defaultFile unless -f names another.
func NewCommandLine(name, defaultFile string, stderr io.Writer) *CommandLine {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cl := &CommandLine{FlagSet: fs, defaultFile: defaultFile}
	fs.StringVar(&cl.file, "f", "", "configuration file (default "+defaultFile+" when present)")
	return cl
}

// Override adds a flag that replaces the string *dst, when given.
func (cl *CommandLine) Override(name string, dst *string, usage string) {
	v := cl.String(name, "", usage)
	cl.over = append(cl.over, func(given map[string]bool) {
		if given[name] {
			*dst = *v
		}
	})
}

// Switch adds a flag that turns *dst on, whatever the file says.
func (cl *CommandLine) Switch(name string, dst *bool, usage string) {
	v := cl.Bool(name, false, usage)
	cl.over = append(cl.over, func(map[string]bool) { *dst = *dst || *v })
}

// Load parses args, reads the configuration file into cfg (the default
// one only when it exists), and applies the flags of Override and Switch
// over it. It returns the path of the file it read ("" for none), for
// Blame, and the names of the flags given.
func (cl *CommandLine) Load(args []string, cfg any) (file string, given map[string]bool, err error) {
	if err := cl.Parse(args); err != nil {
		return "", nil, err
	}
	path, must := cl.file, true
	if path == "" {
		path, must = cl.defaultFile, false
	}
	loaded, err := LoadConfig(path, must, cfg)
	if err != nil {
		return "", nil, err
	}
	if !loaded {
		path = ""
	}
	given = map[string]bool{}
	cl.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, apply := range cl.over {
		apply(given)
	}
	return path, given, nil
}

// Blame names the configuration file in err, when one was read: the
// value at fault may come from it.
func Blame(err error, file string) error {
	if err == nil || file == "" {
		return err
	}
	return fmt.Errorf("%w (configuration %s)", err, file)
}

// StageConfig parses again, in a privileged stage, the command line the
// supervisor was given, and makes the stage's logger; a refused command
// line is reported on stderr.
func StageConfig[C any](name string, args []string, stage Stage, parse func([]string, io.Writer) (C, error), debug func(C) bool) (C, *slog.Logger, bool) {
	cfg, err := parse(args, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		var zero C
		return zero, nil, false
	}
	return cfg, NewLogger(os.Stderr, name, stage, debug(cfg)), true
}

// Commands are what a daemon's binary does besides supervising: the
// actuator and engine stages, which argv[0] names, and the audit and
// status commands.
type Commands struct {
	Name    string // dyad-dhcp, ...
	RunDir  string // the status socket's default directory
	Actuate func(args []string) int
	Engine  func(args []string) int
	Audit   func(args []string, stdout, stderr io.Writer) int
}

// Run runs the stage argv0 names, or the command args begin with, and
// says whether it did; when it did not, the caller supervises.
func (c Commands) Run(argv0 string, args []string, stdout, stderr io.Writer) (code int, ran bool) {
	switch StageOf(argv0, c.Name) {
	case StageActuator:
		return c.Actuate(args), true
	case StageEngine:
		return c.Engine(args), true
	}
	if len(args) > 0 {
		switch args[0] {
		case "audit":
			return c.Audit(args[1:], stdout, stderr), true
		case "status":
			return StatusCommand(c.Name, c.RunDir, args[1:], stdout, stderr), true
		}
	}
	return 0, false
}
