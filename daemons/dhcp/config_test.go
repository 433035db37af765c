package dhcp

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := file("full.yaml", `interfaces: ["eth*"]
timeout: 12
clientid: hwaddr
hostname: node-1
apply_hostname: true
rapid_commit: true
release: true
route_metric: 50
state_dir: /s
run_dir: /r
resolv_conf: none
ntp_conf: /n/ntp.conf
engine_uid: 1000
engine_gid: 1000
allow_no_landlock: true
debug: true
`)
	c, err := ParseArgs([]string{"-f", full}, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("full file: %v", err)
	}
	if c.Interfaces[0] != "eth*" || c.Timeout != 12*time.Second || c.ClientID != "hwaddr" || !c.ApplyHostname ||
		!c.RapidCommit || !c.Release || c.RouteMetric != 50 || c.StateDir != "/s" || c.ResolvConf != "" ||
		c.NTPConf != "/n/ntp.conf" || c.EngineUID != 1000 || !c.AllowNoLandlock || !c.Debug {
		t.Errorf("full file parsed as %+v", c)
	}
	// The command line wins over the file.
	c, err = ParseArgs([]string{"-f", full, "-t", "5", "--state-dir", "/other", "eth1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 5*time.Second || c.StateDir != "/other" || len(c.Interfaces) != 1 || c.Interfaces[0] != "eth1" {
		t.Errorf("flags did not override the file: %+v", c)
	}
	// Defaults, with no file at all.
	c, err = ParseArgs([]string{"-f", file("empty.yaml", "")}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Interfaces[0] != "*" || c.Timeout != defaultTimeout || c.ClientID != "duid" || c.EngineUID != DefaultEngineID || c.ResolvConf != defaultResolvConf {
		t.Errorf("defaults: %+v", c)
	}

	bad := []struct {
		name, body string
		args       []string
		want       string
	}{
		{"unknown key", "interfaces: [eth0]\nbogus: 1\n", nil, "line 2: field bogus not found"},
		{"wrong type", "timeout: soon\n", nil, "line 1"},
		{"bad clientid", "clientid: mac\n", nil, `clientid "mac"`},
		{"root engine", "engine_uid: 0\n", nil, "must not be 0"},
		{"relative path", "state_dir: var/lib\n", nil, "must be absolute"},
		{"bad hostname", "hostname: 'a;b'\n", nil, "hostname"},
		{"bad pattern", "", []string{"eth/0"}, "interface pattern"},
		{"negative timeout", "", []string{"-t", "0"}, "-t 0"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := file(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.body)
			_, err := ParseArgs(append([]string{"-f", p}, tc.args...), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if tc.body != "" && !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := ParseArgs([]string{"-f", filepath.Join(dir, "missing.yaml")}, &bytes.Buffer{}); err == nil {
		t.Error("a missing file named with -f was accepted")
	}
}
