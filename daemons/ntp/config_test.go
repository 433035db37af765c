package ntp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOpenntpdLinuxKitConf reads LinuxKit's own ntpd.conf, unchanged, as
// the ntp image's /usr/sbin/ntpd -d does.
func TestOpenntpdLinuxKitConf(t *testing.T) {
	c, err := ParseArgs([]string{OpenntpdMode, "-d", "-f", "testdata/openntpd-linuxkit.conf"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Pools, []string{"pool.ntp.org"}) || len(c.Servers) != 0 || c.Mode != ModeService {
		t.Errorf("pools %v servers %v mode %v, want the pool pool.ntp.org in service mode", c.Pools, c.Servers, c.Mode)
	}
	if ec := c.Engine(); len(ec.Sources) != 1 || !ec.Sources[0].Pool {
		t.Errorf("engine sources %+v", ec.Sources)
	}
}

func TestOpenntpdDialect(t *testing.T) {
	tests := []struct {
		name, conf string
		args       []string
		want       string // an error that says this, or "" to pass
		check      func(t *testing.T, c *Config)
	}{
		{name: "servers and a server", conf: "servers pool.ntp.org\nserver 192.0.2.1 weight 5\n", check: func(t *testing.T, c *Config) {
			if !slices.Equal(c.Servers, []string{"192.0.2.1"}) || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], ":2: weight ignored") {
				t.Errorf("servers %v warnings %v", c.Servers, c.Warnings)
			}
		}},
		{name: "listen on", conf: "# comment\nlisten on *\nservers pool.ntp.org\n", want: ":2: listen: dyad-ntp is a client and serves no time"},
		{name: "sensor", conf: "sensor *\n", want: ":1: sensor: dyad-ntp reads no time sensors"},
		{name: "constraints warn", conf: "servers pool.ntp.org\nconstraints from \"https://www.google.com/\"\n", check: func(t *testing.T, c *Config) {
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], ":2: constraints ignored") {
				t.Errorf("warnings %v", c.Warnings)
			}
		}},
		{name: "unknown keyword", conf: "servers pool.ntp.org\nfoo bar\n", want: `:2: unknown keyword "foo"`},
		{name: "bad name", conf: "server a;rm\n", want: `:1: server "a;rm"`},
		{name: "server without a name", conf: "server\n", want: ":1: server needs a name"},
		{name: "no server but DHCP's", conf: "# nothing\n", check: func(t *testing.T, c *Config) {
			if c.DHCPServers != "/run/dyad/dhcp/ntp.conf" {
				t.Errorf("DHCP servers from %q", c.DHCPServers)
			}
		}},
		{name: "-v and -n", conf: "server 192.0.2.1\n", args: []string{"-vn"}, check: func(t *testing.T, c *Config) {
			if !c.Debug || !c.ConfigTest {
				t.Errorf("debug %v config test %v", c.Debug, c.ConfigTest)
			}
		}},
		{name: "unknown flag", conf: "server 192.0.2.1\n", args: []string{"-x"}, want: "-x is not an openntpd option"},
		{name: "operand", conf: "server 192.0.2.1\n", args: []string{"pool.ntp.org"}, want: "takes no operands"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "ntpd.conf", tt.conf)
			c, err := ParseArgs(append([]string{OpenntpdMode, "-f", path}, tt.args...), nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one saying %q", err, tt.want)
				}
				if !strings.Contains(err.Error(), path) && tt.name != "unknown flag" && tt.name != "operand" {
					t.Errorf("error %v does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestConfigFile(t *testing.T) {
	tests := []struct {
		name, yaml string
		args       []string
		want       string
		check      func(t *testing.T, c *Config)
	}{
		{name: "full", yaml: "servers: [192.0.2.1, ntp.example.org]\npools: [pool.ntp.org]\nminpoll: 4\nmaxpoll: 8\nstep_threshold: 100ms\npanic_threshold: 600s\nmax_initial_step: 1h\nmin_sources: 2\n", check: func(t *testing.T, c *Config) {
			ec := c.Engine()
			if len(ec.Sources) != 3 || ec.MinPoll != 4 || ec.MaxPoll != 8 || ec.StepThreshold != 100*time.Millisecond || ec.PanicThreshold != 600*time.Second || ec.MaxInitialStep != time.Hour || ec.MinSources != 2 {
				t.Errorf("engine config %+v", ec)
			}
		}},
		{name: "servers on the command line replace the file's", yaml: "servers: [192.0.2.1]\n", args: []string{"192.0.2.9"}, check: func(t *testing.T, c *Config) {
			if !slices.Equal(c.Servers, []string{"192.0.2.9"}) {
				t.Errorf("servers %v", c.Servers)
			}
		}},
		{name: "no server at all", yaml: "dhcp_servers: none\n", want: "no server"},
		{name: "unknown key", yaml: "servers: [192.0.2.1]\nserver: x\n", want: "line 2: field server not found"},
		{name: "bad duration", yaml: "servers: [192.0.2.1]\nstep_threshold: fast\n", want: `line 2: "fast" is not a duration`},
		{name: "step threshold above the slew bound", yaml: "servers: [192.0.2.1]\nstep_threshold: 2s\n", want: "step threshold 2s"},
		{name: "minpoll out of range", yaml: "servers: [192.0.2.1]\nminpoll: 30\n", want: "minpoll 30"},
		{name: "maxpoll below minpoll", yaml: "servers: [192.0.2.1]\nminpoll: 8\nmaxpoll: 6\n", want: "maxpoll 6 is below minpoll 8"},
		{name: "bad server name", yaml: "servers: [\"a b\"]\n", want: `server "a b"`},
		{name: "-1 and -q", yaml: "servers: [192.0.2.1]\n", args: []string{"-1", "-q"}, want: "choose one"},
		{name: "engine as root", yaml: "servers: [192.0.2.1]\nengine_uid: 0\n", want: "engine_uid and engine_gid must not be 0"},
		{name: "relative run dir", yaml: "servers: [192.0.2.1]\nrun_dir: run\n", want: `path "run" must be absolute`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "ntp.yaml", tt.yaml)
			var flags, operands []string
			for _, a := range tt.args {
				if strings.HasPrefix(a, "-") {
					flags = append(flags, a)
				} else {
					operands = append(operands, a)
				}
			}
			c, err := ParseArgs(slices.Concat([]string{"-f", path}, flags, operands), nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
