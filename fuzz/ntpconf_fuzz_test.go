package fuzz

import (
	"os"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/daemons/ntp"
)

type ntpConfigSeed struct {
	conf, args string
	openntpd   bool
}

// ntpConfigSeeds are the ntp image's ntpd.conf (LinuxKit's openntpd file)
// with the image's command line, and hand-made files of both dialects.
func ntpConfigSeeds() []ntpConfigSeed {
	seeds := []ntpConfigSeed{
		{"servers pool.ntp.org\nserver 192.0.2.1 weight 5\n# constraints from \"https://www.google.com/\"\n", "-d -s", true},
		{"server time.example\nconstraints from \"https://example.com/\"\n", "-v -n", true},
		{"listen on *\n", "-d", true},
		{"sensor *\nquery from 10.0.0.1\n", "-dS", true},
		{"servers: [192.0.2.1, time.example]\npools: [pool.ntp.org]\nminpoll: 4\nmaxpoll: 10\nburst: 4\n", "-1 -t 20", false},
		{"step_threshold: 128ms\npanic_threshold: 1000s\nmax_initial_step: 1h\nmin_sources: 2\ndhcp_servers: /run/dyad/dhcp/ntp.conf\n", "-q 192.0.2.1 192.0.2.2", false},
		{"servers: [\"2001:db8::1\"]\nengine_uid: 2102\nengine_gid: 2102\nrun_dir: /run/dyad/ntp\ntimeout: 30\n", "--minpoll -6 -d", false},
	}
	if conf, err := os.ReadFile("../images/ntp/ntpd.conf"); err == nil {
		seeds = append(seeds, ntpConfigSeed{string(conf), "-d", true})
	}
	return seeds
}

func TestNTPConfigSeeds(t *testing.T) {
	var seeds [][]any
	for _, s := range ntpConfigSeeds() {
		seeds = append(seeds, []any{s.conf, s.args, s.openntpd})
	}
	if err := syncSeeds("FuzzNTPConfig", seeds); err != nil {
		t.Fatal(err)
	}
}

// FuzzNTPConfig covers dyad-ntp's readers of its command line and
// configuration file, in both dialects: its own (flags and strict YAML)
// and openntpd's (ntpd's flags and ntpd.conf), which the ntp image takes
// from whoever wrote the LinuxKit file. The invariants: no panic; a
// configuration it accepts passes the checks the engine makes of its own,
// names no server a resolver would refuse, and each warning says where it
// comes from.
//
// Dictionary: ntp.dict
func FuzzNTPConfig(f *testing.F) {
	for _, s := range ntpConfigSeeds() {
		f.Add(s.conf, s.args, s.openntpd)
	}
	mem, err := newMemFile("ntp.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	file := mem.Path
	f.Fuzz(func(t *testing.T, conf, args string, openntpd bool) {
		if err := mem.Set(conf); err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(args)
		// The file is the fuzzer's: a file option of its own would read
		// the host's. openntpd's -f may come grouped (-df); Go's flag
		// package takes -f, --f, -f=... alone.
		for _, a := range fields {
			if openntpd && strings.HasPrefix(a, "-") && strings.Contains(a, "f") ||
				!openntpd && strings.HasPrefix(strings.TrimLeft(a, "-"), "f") && strings.HasPrefix(a, "-") {
				return
			}
		}
		argv := append([]string{"-f", file}, fields...)
		if openntpd {
			argv = append([]string{ntp.OpenntpdMode}, argv...)
		}
		c, err := ntp.ParseArgs(argv, nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if c.EngineUID == 0 || c.EngineGID == 0 {
			t.Fatalf("accepted an engine running as root: %+v", c)
		}
		ec := c.Engine()
		if err := ec.Check(); err != nil {
			t.Fatalf("accepted a configuration the engine refuses: %v: %+v", err, c)
		}
		if len(ec.Sources) == 0 && c.DHCPServers == "" {
			t.Fatalf("accepted a configuration with no server: %+v", c)
		}
		for _, w := range c.Warnings {
			if !strings.HasPrefix(w, file+":") && !strings.HasPrefix(w, "command line") {
				t.Fatalf("warning %q does not say where", w)
			}
		}
	})
}
