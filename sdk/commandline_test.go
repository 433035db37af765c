package sdk

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.yaml")
	if err := os.WriteFile(file, []byte("dir: /from/file\ndebug: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type config struct {
		Dir   string `yaml:"dir"`
		Debug bool   `yaml:"debug"`
	}
	for _, tc := range []struct {
		name      string
		args      []string
		want      config
		wantFile  string
		wantError string
	}{
		{"the file", []string{"-f", file}, config{Dir: "/from/file"}, file, ""},
		{"a flag over the file", []string{"-f", file, "-dir", "/from/flag", "-d"}, config{Dir: "/from/flag", Debug: true}, file, ""},
		{"an empty flag is given", []string{"-f", file, "-dir", ""}, config{}, file, ""},
		{"no default file", []string{"-dir", "/x"}, config{Dir: "/x"}, "", ""},
		{"a named file missing", []string{"-f", filepath.Join(dir, "none.yaml")}, config{}, "", "no such file"},
		{"an unknown flag", []string{"-nope"}, config{}, "", "not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c config
			cl := NewCommandLine("test", filepath.Join(dir, "default.yaml"), io.Discard)
			cl.Override("dir", &c.Dir, "")
			cl.Switch("d", &c.Debug, "")
			got, _, err := cl.Load(tc.args, &c)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("%v: want an error with %q", err, tc.wantError)
				}
				return
			}
			if err != nil || c != tc.want || got != tc.wantFile {
				t.Errorf("%+v, file %q, %v: want %+v, file %q", c, got, err, tc.want, tc.wantFile)
			}
		})
	}
	if err := Blame(errors.New("bad"), file); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Blame: %v: want the file named", err)
	}
	if err := Blame(errors.New("bad"), ""); err.Error() != "bad" {
		t.Errorf("Blame without a file: %v", err)
	}
}

func TestCommands(t *testing.T) {
	var ran string
	var got []string
	record := func(what string) func([]string) int {
		return func(args []string) int { ran, got = what, args; return 7 }
	}
	cmds := Commands{
		Name: "dyad-x", RunDir: t.TempDir(),
		Actuate: record("actuator"), Engine: record("engine"),
		Audit: func(args []string, _, _ io.Writer) int { return record("audit")(args) },
	}
	for _, tc := range []struct {
		argv0    string
		args     []string
		want     string // what ran; "" for none, "status" for the status command
		wantArgs []string
	}{
		{"dyad-x: actuator", []string{"-f", "c"}, "actuator", []string{"-f", "c"}},
		{"dyad-x: engine", []string{"--listeners", "1"}, "engine", []string{"--listeners", "1"}},
		{"/usr/bin/dyad-x", []string{"audit", "-f", "c"}, "audit", []string{"-f", "c"}},
		{"/usr/bin/dyad-x", []string{"status"}, "status", nil},
		{"/usr/bin/dyad-x", []string{"-f", "c"}, "", nil},
		{"dyad-y: engine", nil, "", nil},
	} {
		ran, got = "", nil
		code, did := cmds.Run(tc.argv0, tc.args, io.Discard, io.Discard)
		switch {
		case tc.want == "":
			if did || ran != "" {
				t.Errorf("%s %q: ran %q: want nothing run", tc.argv0, tc.args, ran)
			}
		case tc.want == "status":
			// No daemon runs: the status command fails, but it is run.
			if !did || ran != "" || code == 0 {
				t.Errorf("%s %q: ran %v %q, code %d: want the status command, failing", tc.argv0, tc.args, did, ran, code)
			}
		default:
			if !did || ran != tc.want || code != 7 || strings.Join(got, " ") != strings.Join(tc.wantArgs, " ") {
				t.Errorf("%s %q: ran %q with %q (code %d): want %q with %q", tc.argv0, tc.args, ran, got, code, tc.want, tc.wantArgs)
			}
		}
	}
}
