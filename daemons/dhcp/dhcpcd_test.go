package dhcp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// conformanceConf is LinuxKit's own dhcpcd.conf, the one its image ships
// (see testdata/linuxkit/README.md).
const conformanceConf = "testdata/linuxkit/dhcpcd.conf"

// TestDhcpcdConformanceFile reads LinuxKit's dhcpcd.conf with LinuxKit's
// command line, as the dhcp image does when started as /sbin/dhcpcd.
func TestDhcpcdConformanceFile(t *testing.T) {
	if _, err := os.Stat(conformanceConf); err != nil {
		t.Fatalf("the conformance file: %v", err)
	}
	c, err := ParseArgs([]string{DhcpcdMode, "--nobackground", "-f", conformanceConf, "-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if host == "localhost" || host == "(none)" {
		host = ""
	}
	wantRequest := []uint8{1, 3, 28, 51, 54, 58, 59, 6, 15, 119, 12, 121, 42, 26}
	switch {
	case !c.OneShot || c.Timeout != defaultTimeout:
		t.Errorf("-1: OneShot %v, timeout %v; want a one-shot run with dhcpcd's 30 s", c.OneShot, c.Timeout)
	case !slices.Equal(c.Interfaces, []string{"eth*"}) || len(c.DenyInterfaces) != 0:
		t.Errorf("allowinterfaces eth*: interfaces %q, denied %q", c.Interfaces, c.DenyInterfaces)
	case c.Hostname != host:
		t.Errorf("hostname: sends %q, want the host's own %q", c.Hostname, host)
	case c.ClientID != "hwaddr":
		t.Errorf("clientid: %q, want hwaddr", c.ClientID)
	case c.Deconfigure || c.Release:
		t.Errorf("persistent: Deconfigure %v, Release %v; want the configuration kept", c.Deconfigure, c.Release)
	case !c.RapidCommit:
		t.Error("option rapid_commit: not asked for")
	case !slices.Equal(c.Request, wantRequest):
		t.Errorf("request list %v, want %v", c.Request, wantRequest)
	case !slices.Equal(c.Require, []uint8{54}) || len(c.Ignore) != 0:
		t.Errorf("require %v, ignore %v; want [54] and none", c.Require, c.Ignore)
	case c.ResolvConf != defaultResolvConf || c.StateDir != defaultStateDir:
		t.Errorf("paths: resolv.conf %q, state %q", c.ResolvConf, c.StateDir)
	}
	// slaac is IPv6: said, with its line; every other directive is done.
	want := []string{conformanceConf + ":35: slaac: not supported: " + whyIPv6}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", c.Warnings, want)
	}
}

func TestDhcpcdDialect(t *testing.T) {
	dir := t.TempDir()
	n := 0
	file := func(body string) string {
		n++
		p := filepath.Join(dir, "dhcpcd"+string(rune('a'+n))+".conf")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		conf  string
		args  []string
		check func(*Config) bool
		// warn is a substring each warning must hold, in order.
		warn []string
	}{
		{
			name: "grouped short flags and a timeout attached",
			args: []string{"-Bd4", "-t5", "eth1"},
			check: func(c *Config) bool {
				return c.Debug && c.Timeout == 5*time.Second && slices.Equal(c.Interfaces, []string{"eth1"})
			},
		},
		{
			name:  "long flags with = and apart",
			args:  []string{"--timeout", "7", "--waitip=4", "--oneshot", "--debug"},
			check: func(c *Config) bool { return c.Timeout == 7*time.Second && c.OneShot && c.Debug },
		},
		{
			name:  "timeout 0 waits for ever",
			conf:  "timeout 0\n",
			check: func(c *Config) bool { return c.NoTimeout && c.Timeout == 0 },
		},
		{
			name:  "without persistent the configuration goes on stop",
			conf:  "# nothing\n",
			check: func(c *Config) bool { return c.Deconfigure && !c.Release && c.ClientID == "duid" },
		},
		{
			name:  "release in the file",
			conf:  "release\npersistent\n",
			check: func(c *Config) bool { return c.Release && !c.Deconfigure },
		},
		{
			name: "allow and deny lists, comma or space separated",
			conf: "allowinterfaces eth*, en* wl*\ndenyinterfaces eth9\n",
			check: func(c *Config) bool {
				return slices.Equal(c.Interfaces, []string{"eth*", "en*", "wl*"}) && slices.Equal(c.DenyInterfaces, []string{"eth9"})
			},
		},
		{
			name:  "named interfaces win over allowinterfaces",
			conf:  "allowinterfaces eth*\n",
			args:  []string{"veth0"},
			check: func(c *Config) bool { return slices.Equal(c.Interfaces, []string{"veth0"}) },
		},
		{
			name: "nooption leaves the request list and strips the option",
			conf: "option domain_name_servers, ntp_servers\nnooption domain_name_servers\nnooption rapid_commit\n",
			check: func(c *Config) bool {
				return slices.Equal(c.Ignore, []uint8{6}) && !slices.Contains(c.Request, 6) && slices.Contains(c.Request, 42)
			},
		},
		{
			name: "options by number, one of no use, and one asked for anyway",
			conf: "option 121 time_servers subnet_mask\n",
			check: func(c *Config) bool {
				masks := 0
				for _, o := range c.Request {
					if o == 1 {
						masks++
					}
				}
				return slices.Contains(c.Request, 121) && slices.Contains(c.Request, 4) && masks == 1
			},
			warn: []string{":1: option time_servers: dyad-dhcp makes no use of it"},
		},
		{
			name: "a required option is asked for, an ignored one neither asked for nor required",
			conf: "require ntp_servers, domain_name\nnooption domain_name\n",
			check: func(c *Config) bool {
				return slices.Contains(c.Request, 42) && !slices.Contains(c.Request, 15) && slices.Equal(c.Require, []uint8{42})
			},
		},
		{
			name: "nohook resolv.conf leaves /etc/resolv.conf to a local stub",
			conf: "nohook resolv.conf\n",
			check: func(c *Config) bool {
				return c.ResolvConf == "/run/dyad/dhcp/resolv.conf" && c.NTPConf == defaultNTPConf
			},
		},
		{
			name:  "nohook matches hook names as dhcpcd does: a part is enough",
			args:  []string{"-C", "ntp", "--nohook", "resolv"},
			check: func(c *Config) bool { return c.ResolvConf == NoHookResolvConf && c.NTPConf == "" },
		},
		{
			name:  "nohook of a hook whose work dyad-dhcp does not do",
			conf:  "nohook hostname, 10-wpa_supplicant\n",
			check: func(c *Config) bool { return c.ResolvConf == defaultResolvConf && c.NTPConf == defaultNTPConf },
		},
		{
			name:  "clientid of hexadecimal bytes",
			conf:  "clientid 01:52:54:00:aa:bb:cc\n",
			check: func(c *Config) bool { return c.ClientID == "raw:01525400aabbcc" },
		},
		{
			name:  "clientid of text",
			conf:  "clientid node\n",
			check: func(c *Config) bool { return c.ClientID == "raw:006e6f6465" },
		},
		{
			name:  "the last of clientid and duid wins",
			conf:  "clientid\nduid\n",
			check: func(c *Config) bool { return c.ClientID == "duid" },
		},
		{
			name:  "a hostname given, quoted, after a comment",
			conf:  "# hostname ignored\nhostname \"node-7\" # trailing\n",
			check: func(c *Config) bool { return c.Hostname == "node-7" },
		},
		{
			name:  "unknown directive and flag: warnings with line and argument",
			conf:  "noarp\nfrobnicate 3\n",
			args:  []string{"-9", "--frob"},
			check: func(c *Config) bool { return true },
			warn: []string{
				":2: frobnicate: unknown directive, ignored",
				"command line, argument 3 (-9): -9: unknown option, ignored",
				"command line, argument 4 (--frob): frob: unknown directive, ignored",
			},
		},
		{
			name:  "IPv6 directives and an unsupported one",
			conf:  "noipv6rs\nslaac private\nscript /bin/x\n",
			check: func(c *Config) bool { return true },
			warn:  []string{":1: noipv6rs: not supported", ":2: slaac: not supported", ":3: script: not supported, ignored: " + whyHooks},
		},
		{
			name:  "an interface block is skipped",
			conf:  "timeout 9\ninterface eth1\ntimeout 3\n",
			check: func(c *Config) bool { return c.TimeoutSeconds == 9 },
			warn:  []string{":2: interface eth1: blocks", ":3: timeout: ignored: it belongs to interface eth1 (line 2)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := file(tc.conf)
			c, err := ParseArgs(append([]string{DhcpcdMode, "-f", p}, tc.args...), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("parsed as %+v", c)
			}
			if len(c.Warnings) != len(tc.warn) {
				t.Fatalf("warnings %q, want %d", c.Warnings, len(tc.warn))
			}
			for i, w := range tc.warn {
				if !strings.Contains(c.Warnings[i], w) {
					t.Errorf("warning %q does not say %q", c.Warnings[i], w)
				}
			}
		})
	}
}

func TestDhcpcdDialectRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, conf string
		args       []string
		want       string
	}{
		{"a timeout that is no number", "timeout soon\n", nil, ":1: timeout: \"soon\" is not a number"},
		{"a flag without its value", "", []string{"-t"}, "-t needs a value"},
		{"a control command", "", []string{"-k", "eth0"}, "release: " + whyCommand},
		{"exit", "", []string{"--exit"}, "exit: " + whyCommand},
		{"a whitelist dyad cannot honour", "whitelist 10.0.0.1\n", nil, ":1: whitelist: servers are not filtered"},
		{"a value to a flag without one", "persistent yes\n", nil, ":1: persistent takes no value"},
		{"an option unknown by name", "option frobs\n", nil, `"frobs" is not a DHCP option`},
		{"ignoring the message type", "nooption dhcp_message_type\n", nil, "cannot be ignored"},
		{"a bad clientid", "clientid 01:zz\n", nil, "not hexadecimal"},
		{"a one-byte clientid", "clientid 01:\n", nil, "not hexadecimal bytes"},
		{"a bad interface pattern", "denyinterfaces eth[\n", nil, `interface pattern "eth["`},
		{"a bad host name", "hostname a;b\n", nil, "hostname"},
		{"a bad quote", "hostname \"a\n", nil, ":1: hostname: the value"},
		{"a control byte", "noarp\x01\n", nil, ":1: control characters"},
		{"a missing file", "", []string{"-f", filepath.Join(dir, "missing")}, "missing"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, string(rune('a'+i))+".conf")
			if err := os.WriteFile(p, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := ParseArgs(append([]string{DhcpcdMode, "-f", p}, tc.args...), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want an error saying %q", c, err, tc.want)
			}
		})
	}
}
