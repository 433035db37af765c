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
