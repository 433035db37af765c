package pkgbuild

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
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

// recipeYAML is a build.yml with the given buildArgs.
func recipeYAML(args ...string) string {
	y := "image: x\nbuildArgs:\n"
	for _, a := range args {
		y += "  - " + strconv.Quote(a) + "\n"
	}
	return y
}

func TestParseRecipeKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want Recipe
	}{
		{"go module", []string{"GO_MODULE=github.com/opencontainers/runc@v1.4.3", "GO_MAIN=.", "GO_TAGS=seccomp netgo osusergo", "BINARY=/usr/bin/runc"},
			Recipe{GoModule: &GoModule{Path: "github.com/opencontainers/runc", Version: "v1.4.3", Main: ".", Tags: []string{"seccomp", "netgo", "osusergo"}}, Binary: "usr/bin/runc"}},
		{"go module, defaults", []string{"BINARY=/x", "GO_MODULE=golang.org/x/tools@v0.30.0"},
			Recipe{GoModule: &GoModule{Path: "golang.org/x/tools", Version: "v0.30.0", Main: "."}, Binary: "x"}},
		{"go module, sub-package, pseudo-version, comma tags", []string{"GO_TAGS=a,b", "GO_MAIN=./cmd/gopls", "GO_MODULE=golang.org/x/tools/gopls@v0.0.0-20250101000000-0123456789ab", "BINARY=/gopls"},
			Recipe{GoModule: &GoModule{Path: "golang.org/x/tools/gopls", Version: "v0.0.0-20250101000000-0123456789ab", Main: "./cmd/gopls", Tags: []string{"a", "b"}}, Binary: "gopls"}},
		{"go module, bare sub-directory", []string{"GO_MODULE=example.com/m@v1.0.0", "GO_MAIN=cmd/m", "BINARY=/m"},
			Recipe{GoModule: &GoModule{Path: "example.com/m", Version: "v1.0.0", Main: "./cmd/m"}, Binary: "m"}},
		{"deb", []string{"DEB=busybox-static", "DEB_FILES=/bin/busybox:/bin/busybox", "DEB_LINKS=/bin/sh,/bin/[", "CMD=/bin/sh", "FILES=poweroff.sh:/poweroff.sh"},
			Recipe{Deb: &Deb{Package: "busybox-static", Files: []File{{"bin/busybox", "bin/busybox"}}, Links: []string{"bin/sh", "bin/["}},
				Cmd: []string{"/bin/sh"}, Files: []File{{"poweroff.sh", "poweroff.sh"}}}},
		{"deb, two files, keys in any order", []string{"DEB_FILES=/usr/bin/a:/a,/usr/lib/b:/lib/b", "DEB=lib+x-1.0"},
			Recipe{Deb: &Deb{Package: "lib+x-1.0", Files: []File{{"usr/bin/a", "a"}, {"usr/lib/b", "lib/b"}}}}},
		{"deb beside a go package", []string{"GO_PACKAGE=./x", "BINARY=/x", "DEB=busybox-static", "DEB_FILES=/bin/busybox:/bin/busybox"},
			Recipe{GoPackage: "./x", Binary: "x", Deb: &Deb{Package: "busybox-static", Files: []File{{"bin/busybox", "bin/busybox"}}}}},
		{"kernel", []string{"KERNEL=linux-image-cloud-amd64"}, Recipe{Kernel: "linux-image-cloud-amd64"}},
		{"a go package without a user", []string{"GO_PACKAGE=./linuxkit-builder/cmd/init", "BINARY=/init"},
			Recipe{GoPackage: "./linuxkit-builder/cmd/init", Binary: "init"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(recipeYAML(tc.args...)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Recipe, tc.want) {
				t.Errorf("parsed %s\nwant   %s", dump(p.Recipe), dump(tc.want))
			}
		})
	}
}

func dump(r Recipe) string {
	s := fmt.Sprintf("%+v", r)
	if r.GoModule != nil {
		s += fmt.Sprintf(" GoModule=%+v", *r.GoModule)
	}
	if r.Deb != nil {
		s += fmt.Sprintf(" Deb=%+v", *r.Deb)
	}
	return s
}

func TestParseRecipeRefuses(t *testing.T) {
	runc := []string{"GO_MODULE=github.com/opencontainers/runc@v1.4.3", "BINARY=/usr/bin/runc"}
	busybox := []string{"DEB=busybox-static", "DEB_FILES=/bin/busybox:/bin/busybox"}
	with := func(base []string, more ...string) []string { return append(slices.Clone(base), more...) }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", []string{"CMD=/bin/sh"}, "nothing to build"},
		{"no buildArgs", nil, "nothing to build"},
		{"module without version", []string{"GO_MODULE=github.com/opencontainers/runc", "BINARY=/r"}, "GO_MODULE: \"github.com/opencontainers/runc\" is not MODULE@VERSION"},
		{"module at latest", []string{"GO_MODULE=github.com/opencontainers/runc@latest", "BINARY=/r"}, "GO_MODULE: \"latest\" is not a release or pseudo-version"},
		{"module at a branch", []string{"GO_MODULE=github.com/opencontainers/runc@main", "BINARY=/r"}, "not a release"},
		{"module at a short version", []string{"GO_MODULE=github.com/opencontainers/runc@v1.4", "BINARY=/r"}, "not a release"},
		{"module as a flag", []string{"GO_MODULE=-modfile=x@v1.0.0", "BINARY=/r"}, "GO_MODULE: \"-modfile=x\" is not a module path"},
		{"module path with dots", []string{"GO_MODULE=example.com/../x@v1.0.0", "BINARY=/r"}, "is not a module path"},
		{"module without domain", []string{"GO_MODULE=runc@v1.0.0", "BINARY=/r"}, "is not a module path"},
		{"module without binary", runc[:1], "BINARY missing"},
		{"module and package", with(runc, "GO_PACKAGE=./x"), "GO_PACKAGE and GO_MODULE"},
		{"main outside", with(runc, "GO_MAIN=../x"), "GO_MAIN: \"../x\" is not . or a directory inside the module"},
		{"main absolute", with(runc, "GO_MAIN=/x"), "GO_MAIN"},
		{"main as a flag", with(runc, "GO_MAIN=-x"), "GO_MAIN"},
		{"main without module", []string{"GO_PACKAGE=./x", "BINARY=/x", "GO_MAIN=."}, "GO_MAIN: a package of GO_MODULE"},
		{"tags without module", []string{"GO_PACKAGE=./x", "BINARY=/x", "GO_TAGS=seccomp"}, "GO_TAGS: tags for GO_MODULE"},
		{"empty tags", with(runc, "GO_TAGS= , "), "GO_TAGS: no tags"},
		{"odd tag", with(runc, "GO_TAGS=seccomp -x"), "GO_TAGS: \"-x\" is not a build tag"},
		{"binary without program", []string{"BINARY=/x", "DEB=busybox-static", "DEB_FILES=/bin/busybox:/bin/busybox"}, "GO_PACKAGE missing: BINARY /x needs a program"},
		{"links without program", with(busybox, "LINKS=/bin/sh"), "LINKS: names for BINARY"},
		{"audit without program", with(busybox, "AUDIT=audit", "ENGINE_USER=e:1:1"), "AUDIT: arguments for BINARY"},
		{"audit without user", []string{"GO_PACKAGE=./x", "BINARY=/x", "AUDIT=audit"}, "ENGINE_USER missing: AUDIT"},
		{"launcher without user", []string{"GO_PACKAGE=./x", "BINARY=/x", "LAUNCHER=./l:/l"}, "ENGINE_USER missing: LAUNCHER"},
		{"deb without files", busybox[:1], "DEB_FILES missing: which files of busybox-static"},
		{"deb files without deb", busybox[1:], "DEB missing"},
		{"deb links without deb", []string{"GO_PACKAGE=./x", "BINARY=/x", "DEB_LINKS=/bin/sh"}, "DEB missing"},
		{"deb as a flag", []string{"DEB=-oDir=/", "DEB_FILES=/a:/a"}, "DEB: \"-oDir=/\" is not a Debian package name"},
		{"deb with version", []string{"DEB=busybox=1.0", "DEB_FILES=/a:/a"}, "is not a Debian package name"},
		{"deb upper case", []string{"DEB=BusyBox", "DEB_FILES=/a:/a"}, "is not a Debian package name"},
		{"deb file without destination", []string{"DEB=busybox", "DEB_FILES=/bin/busybox"}, "DEB_FILES: \"/bin/busybox\" is not SOURCE:PATH"},
		{"deb file relative", []string{"DEB=busybox", "DEB_FILES=bin/busybox:/bin/busybox"}, "DEB_FILES: \"bin/busybox:/bin/busybox\": in the package"},
		{"deb file escaping", []string{"DEB=busybox", "DEB_FILES=/bin/../../etc/shadow:/x"}, "in the package"},
		{"deb file to a relative path", []string{"DEB=busybox", "DEB_FILES=/bin/busybox:bin/busybox"}, "in the image"},
		{"deb link relative", with(busybox, "DEB_LINKS=/bin/sh,sleep"), "DEB_LINKS: \"sleep\" is not a clean absolute path"},
		{"kernel bad name", []string{"KERNEL=linux image"}, "KERNEL: \"linux image\" is not a Debian package name"},
		{"kernel with a binary", []string{"KERNEL=linux-image-cloud-amd64", "GO_PACKAGE=./x", "BINARY=/x"}, "KERNEL: a kernel image holds the kernel and its modules only: GO_PACKAGE does not go with it"},
		{"kernel with files", []string{"FILES=a:/a", "KERNEL=linux-image-cloud-amd64"}, "FILES does not go with it"},
		{"kernel with a deb", with(busybox, "KERNEL=linux-image-cloud-amd64"), "DEB does not go with it"},
		{"unknown key names the new ones", []string{"DEBS=x"}, "GO_MODULE, GO_MAIN, GO_TAGS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(recipeYAML(tc.args...)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestParseRefusesBuildLabels(t *testing.T) {
	for _, k := range []string{GoModuleLabel, DebLabel} {
		_, err := Parse([]byte(goodYAML + "annotations:\n  " + k + ": x\n"))
		if err == nil || !strings.Contains(err.Error(), "written by the build") {
			t.Errorf("annotation %s: got %v", k, err)
		}
	}
}
