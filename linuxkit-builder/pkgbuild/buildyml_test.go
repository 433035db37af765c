package pkgbuild

import (
	"strings"
	"testing"
)

const goodYAML = `image: dhcp
org: dyad
buildArgs:
  - GO_PACKAGE=./daemons/dhcp/cmd/dyad-dhcp
  - BINARY=/usr/bin/dyad-dhcp
  - ENGINE_USER=dyad-dhcp:2101:2101
  - LINKS=/sbin/dhcpcd
  - FILES=dhcpcd.conf:/dhcpcd.conf
  - DIRS=/run/dyad
config:
  binds:
    - /run/resolvconf:/etc
  capabilities:
    - CAP_NET_ADMIN
  readonly: true
  uid: 0
  runtime:
    mkdir: [/run/resolvconf]
`

func TestParseGood(t *testing.T) {
	p, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Recipe
	if p.Image != "dhcp" || p.Org != "dyad" || r.GoPackage != "./daemons/dhcp/cmd/dyad-dhcp" || r.Binary != "usr/bin/dyad-dhcp" ||
		r.User != (User{"dyad-dhcp", 2101, 2101}) || len(r.Links) != 1 || r.Links[0] != "sbin/dhcpcd" ||
		len(r.Files) != 1 || r.Files[0] != (File{"dhcpcd.conf", "dhcpcd.conf"}) || len(r.Dirs) != 1 {
		t.Errorf("parsed %+v", p)
	}
	if p.Config.Binds == nil || (*p.Config.Binds)[0] != "/run/resolvconf:/etc" || p.Config.Readonly == nil || !*p.Config.Readonly {
		t.Errorf("config %+v", p.Config)
	}
	label, err := p.Config.Label()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"capabilities":["CAP_NET_ADMIN"],"binds":["/run/resolvconf:/etc"],"readonly":true,"uid":0,"runtime":{"mkdir":["/run/resolvconf"]}}`
	if string(label) != want {
		t.Errorf("label %s\nwant  %s", label, want)
	}
}

func TestParseRefuses(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(goodYAML, old, new, 1) }
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top key", goodYAML + "dockerfile2: x\n", "line 19: field dockerfile2 not found"},
		{"unknown config key", replace("  readonly: true", "  readonyl: true"), "line 15: field readonyl not found"},
		{"wrong type", replace("  readonly: true", "  readonly: [x]"), "line 15"},
		{"bad image name", replace("image: dhcp", "image: DHCP!"), "image:"},
		{"bad arch", goodYAML + "arches: [vax]\n", "arches"},
		{"no GO_PACKAGE", replace("  - GO_PACKAGE=./daemons/dhcp/cmd/dyad-dhcp\n", ""), "GO_PACKAGE missing"},
		{"relative BINARY", replace("BINARY=/usr/bin/dyad-dhcp", "BINARY=usr/bin/dyad-dhcp"), "BINARY"},
		{"dotted BINARY", replace("BINARY=/usr/bin/dyad-dhcp", "BINARY=/usr/../bin/x"), "BINARY"},
		{"root user", replace("dyad-dhcp:2101:2101", "dyad-dhcp:0:2101"), "ENGINE_USER"},
		{"bad user", replace("dyad-dhcp:2101:2101", "dyad dhcp:2101:2101"), "ENGINE_USER"},
		{"file outside", replace("FILES=dhcpcd.conf:/dhcpcd.conf", "FILES=../secret:/dhcpcd.conf"), "FILES"},
		{"unknown arg", replace("  - DIRS=/run/dyad", "  - DIRZ=/run/dyad"), "DIRZ"},
		{"twice", replace("  - DIRS=/run/dyad", "  - DIRS=/run/dyad\n  - DIRS=/x"), "twice"},
		{"not k=v", replace("  - DIRS=/run/dyad", "  - DIRS"), "KEY=VALUE"},
		{"bad uid", replace("  uid: 0", "  uid: -1"), "line 16"},
		{"launcher without a path", replace("  - DIRS=/run/dyad", "  - DIRS=/run/dyad\n  - LAUNCHER=./privsep/cmd/engine-exec"), "GO_PACKAGE:PATH"},
		{"launcher as a flag", replace("  - DIRS=/run/dyad", "  - DIRS=/run/dyad\n  - LAUNCHER=-x:/usr/libexec/e"), "GO_PACKAGE:PATH"},
		{"relative launcher", replace("  - DIRS=/run/dyad", "  - DIRS=/run/dyad\n  - LAUNCHER=./privsep/cmd/engine-exec:usr/e"), "LAUNCHER"},
		{"flag as package", replace("GO_PACKAGE=./daemons/dhcp/cmd/dyad-dhcp", "GO_PACKAGE=-toolexec=/tmp/x"), "GO_PACKAGE"},
		{"label as annotation", goodYAML + "annotations:\n  org.mobyproject.config: '{}'\n", "annotations"},
		{"two documents", goodYAML + "---\nimage: x\n", "more than one"},
		{"empty", "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestRepositoryImagesParse(t *testing.T) {
	for _, dir := range []string{"../../images/dhcp"} {
		p, err := Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if p.Config.Capabilities == nil {
			t.Fatalf("%s: no capabilities in the label", dir)
		}
		for _, c := range *p.Config.Capabilities {
			if c == "CAP_SYS_ADMIN" {
				t.Errorf("%s: grants CAP_SYS_ADMIN", dir)
			}
		}
		if p.Config.Readonly == nil || !*p.Config.Readonly {
			t.Errorf("%s: the root is not read-only", dir)
		}
	}
}
