package fuzz

import (
	"os"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/daemons/dhcp"
)

type dhcpcdDialectSeed struct{ conf, args string }

// dhcpcdDialectSeeds are the dhcp image's dhcpcd.conf with LinuxKit's
// command line, and hand-made files and command lines.
func dhcpcdDialectSeeds() []dhcpcdDialectSeed {
	seeds := []dhcpcdDialectSeed{
		{"interface eth0\nstatic ip_address=10.0.0.2/24\n", "-Bd4 -t5 eth0"},
		{"option 121, domain_search\nnooption ntp_servers\nrequire routers\n", "--waitip=4 --timeout 0"},
		{"clientid 01:02:03\nhostname \"a b\" # c\nduid lt\n", "-k"},
		{"allowinterfaces eth*, en*\ndenyinterfaces eth9\nslaac private\n", "-z wl* -- eth0"},
		{"timeout 10\nreboot 5\nmetric 100\nnoipv6rs\nipv4only\npersistent\nnohook resolv.conf, ntp.conf\nvendorclassid dyad\n", "-4 -L -b --noarp -m 20 eth0 eth1"},
		{"# LinuxKit's test file\nhostname\nclientid\npersistent\noption rapid_commit\noption classless_static_routes, interface_mtu\nrequire dhcp_server_identifier\nslaac private\nnoipv6\n", "-1 -d --nobackground eth0"},
		{"interface eth0\n  static routers=10.0.0.1\n  static domain_name_servers=10.0.0.1 10.0.0.2\ninterface eth1\n  nooption 3\n  ignore 121\n", "--allowinterfaces=eth* --timeout=30 -w"},
	}
	if conf, err := os.ReadFile("../images/dhcp/dhcpcd.conf"); err == nil {
		seeds = append(seeds, dhcpcdDialectSeed{string(conf), "--nobackground -1"})
	}
	return seeds
}

func TestDhcpcdDialectSeeds(t *testing.T) {
	var seeds [][]any
	for _, s := range dhcpcdDialectSeeds() {
		seeds = append(seeds, []any{s.conf, s.args})
	}
	if err := syncSeeds("FuzzDhcpcdDialect", seeds); err != nil {
		t.Fatal(err)
	}
}

// FuzzDhcpcdDialect covers the reader of dhcpcd's command line and
// dhcpcd.conf, which dyad-dhcp takes from whoever wrote the LinuxKit file
// or the image. The invariants: no panic; a configuration it accepts
// passes the checks every configuration must pass, and each warning names
// where it comes from.
//
// Dictionary: dhcpcd.dict
func FuzzDhcpcdDialect(f *testing.F) {
	for _, s := range dhcpcdDialectSeeds() {
		f.Add(s.conf, s.args)
	}
	mem, err := newMemFile("dhcpcd.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	file := mem.Path
	f.Fuzz(func(t *testing.T, conf, args string) {
		if err := mem.Set(conf); err != nil {
			t.Fatal(err)
		}
		// The file is the fuzzer's: a -f (alone or grouped, as -Bf) or
		// --config of its own would read the host's.
		fields := strings.Fields(args)
		for _, a := range fields {
			if strings.Contains(a, "config") || !strings.HasPrefix(a, "--") && strings.HasPrefix(a, "-") && strings.Contains(a, "f") {
				return
			}
		}
		argv := append([]string{dhcp.DhcpcdMode, "-f", file}, fields...)
		c, err := dhcp.ParseArgs(argv, nil)
		if err != nil {
			return
		}
		if c.EngineUID == 0 || c.EngineGID == 0 || len(c.Interfaces) == 0 {
			t.Fatalf("accepted a configuration the checks refuse: %+v", c)
		}
		for _, w := range c.Warnings {
			if !strings.HasPrefix(w, file+":") && !strings.HasPrefix(w, "command line, argument ") {
				t.Fatalf("warning %q does not say where", w)
			}
		}
	})
}
