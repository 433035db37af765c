package lkfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notYAML are LinuxKit examples that are not YAML, which LinuxKit's own
// parser (gopkg.in/yaml.v3, as here) refuses too: static-ip.yml has a
// comment at column 0 inside a block scalar, which ends the scalar, and
// the scalar's next line is then out of place.
var notYAML = map[string]string{
	"static-ip.yml": "static-ip.yml: yaml: line 24: did not find expected key",
}

// TestLinuxKitExamplesParse reads every example LinuxKit ships.
func TestLinuxKitExamplesParse(t *testing.T) {
	files, err := filepath.Glob("testdata/linuxkit/*/*.yml")
	if err != nil || len(files) < 30 {
		t.Fatalf("want LinuxKit's examples in testdata, found %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(file, filepath.Dir(file), b)
			if want, ok := notYAML[filepath.Base(file)]; ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Parse: %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f.Kernel.Image == "" {
				t.Errorf("no kernel read: %+v", f.Kernel)
			}
			if _, err := Merge(f); err != nil {
				t.Errorf("Merge: %v", err)
			}
		})
	}
}

func TestParseReadsEveryKind(t *testing.T) {
	src := `
kernel:
  image: linuxkit/kernel:6.12.59
  cmdline: "console=ttyS0"
  tar: none
init:
  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a
onboot:
  - name: dhcpcd
    image: linuxkit/dhcpcd:b87e9ececac55a65eaa592f4dd8b4e0c3009afdb
    command: ["/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"]
    uid: 100
    gid: wheel
    readonly: true
    binds.add:
      - /var:/var
    runtime:
      mkdir: ["/var/x"]
      bindNS:
        net: /run/netns/x
files:
  - path: etc/motd
    contents: "hi"
    mode: "0644"
    uid: 0
volumes:
  - name: data
`
	f, err := Parse("x.yml", ".", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Onboot[0]
	if d.Name != "dhcpcd" || len(*d.Command) != 5 || d.UID.Number != 100 || d.GID.Name != "wheel" || !*d.Readonly {
		t.Errorf("onboot entry read wrong: %+v", d)
	}
	if *d.Runtime.BindNS.Net != "/run/netns/x" || (*d.BindsAdd)[0] != "/var:/var" {
		t.Errorf("runtime read wrong: %+v", d.Runtime)
	}
	if d.Pos.Line != 9 || d.Pos.Path != "onboot[0]" {
		t.Errorf("position %v, want line 9 onboot[0]", d.Pos)
	}
	if *f.Kernel.Tar != "none" || *f.Files[0].Contents != "hi" || f.Volumes[0].Name != "data" {
		t.Errorf("kernel, files or volumes read wrong: %+v %+v", f.Kernel, f.Files)
	}
}

// TestParseRefuses feeds broken variants of LinuxKit's minimal example:
// each must fail with the line and the path of what is wrong.
// TestParseFollowsAliases: a list given by an alias is the anchored list,
// and its entries' positions are where the anchor wrote them.
func TestParseFollowsAliases(t *testing.T) {
	src := "onboot: &a\n  - name: x\n    image: alpine:3\nservices: *a\nfiles: &f\n  - path: etc/x\n    contents: y\nvolumes: &v\n  - name: v\n"
	f, err := Parse("a.yml", ".", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != 1 || f.Services[0].Name != "x" || f.Services[0].Pos.Line != 2 {
		t.Errorf("services: %+v", f.Services)
	}
}

func TestParseRefuses(t *testing.T) {
	base, err := os.ReadFile("testdata/linuxkit/examples/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	good := string(base)
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("minimal.yml has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	tests := []struct {
		name, src, want string
	}{
		{"unknown top-level key", good + "extra: 1\n", "m.yml:17: extra: unknown key"},
		{"unknown key in an entry", replace("    env:\n", "    envs:\n"), "m.yml:15: services[0].envs: unknown key"},
		{"misspelt key in kernel", replace("  cmdline:", "  cmdlin:"), "m.yml:3: kernel.cmdlin: unknown key"},
		{"string for a list", replace(`command: ["/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"]`, `command: "/sbin/dhcpcd -1"`),
			`m.yml:11: onboot[0].command: want a list, got the string "/sbin/dhcpcd -1"`},
		{"integer in a string list", replace("- INSECURE=true", "- 1"), "m.yml:16: services[0].env[0]: want a string, got the integer 1"},
		{"boolean of the wrong type", replace("    env:\n", "    readonly: yes please\n    env:\n"), `m.yml:15: services[0].readonly: want true or false, got the string "yes please"`},
		{"mode not a string", good + "files:\n  - path: etc/x\n    contents: x\n    mode: 0644\n", "m.yml:20: files[0].mode: want a string, got the integer 0644"},
		{"missing name", replace("  - name: getty\n", "  - \n"), "m.yml:14: services[0]: name is missing"},
		{"no image", replace("    image: linuxkit/getty:a86d74c8f89be8956330c3b115b0b1f2e09ef6e0\n", ""), "m.yml:13: services[0]: image is missing"},
		{"unknown capability", replace("    env:\n", "    capabilities: [CAP_NET_ADMN]\n    env:\n"), `m.yml:13: services[0]: unknown capability "CAP_NET_ADMN"`},
		{"bad bind", replace("    env:\n", "    binds: [/a]\n    env:\n"), `m.yml:13: services[0]: bind "/a": want SOURCE:DESTINATION[:OPTIONS]`},
		{"bind of no volume", replace("    env:\n", "    binds: [data:/data]\n    env:\n"), `m.yml:13: services[0]: bind "data:/data": no volume is called "data"`},
		{"bad name", replace("name: getty", "name: Getty/x"), `m.yml:13: services[0]: name "Getty/x"`},
		{"bad reference", replace("image: linuxkit/getty:a86d74c8f89be8956330c3b115b0b1f2e09ef6e0", "image: linuxkit/getty:a:b"), `m.yml:13: services[0]: image "linuxkit/getty:a:b"`},
		{"two services of one name", good + "  - name: getty\n    image: linuxkit/getty:1\n", `m.yml:17: services[1]: service name "getty" is taken by m.yml:13: services[0]`},
		{"file with two kinds", good + "files:\n  - path: etc/x\n    contents: x\n    symlink: /y\n", "m.yml:18: files[0]: etc/x: give one of"},
		{"file outside the image", good + "files:\n  - path: ../etc/x\n    contents: x\n", `m.yml:18: files[0]: path "../etc/x"`},
		{"bad rlimit", replace("    env:\n", "    rlimits: [\"nofile,10\"]\n    env:\n"), `rlimit "nofile,10"`},
		{"bad namespace", replace("    env:\n", "    net: sideways\n    env:\n"), `net: "sideways"`},
		{"two documents", good + "---\nkernel: {}\n", "a second YAML document"},
		{"not YAML", "kernel: [\n", "m.yml: yaml:"},
		{"duplicate key", replace("    env:\n", "    net: host\n    net: host\n    env:\n"), "m.yml:16: services[0].net: given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("m.yml", ".", []byte(tt.src))
			if err == nil {
				_, err = Merge(f)
			}
			if err == nil {
				t.Fatalf("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMergeInOrder(t *testing.T) {
	a, err := Parse("a.yml", "/a", []byte("kernel:\n  image: linuxkit/kernel:1\n  cmdline: one\ninit: [linuxkit/init:1]\nservices:\n  - name: s\n    image: dyad/s:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yml", "/b", []byte("kernel:\n  cmdline: two\ninit: [dyad/init:2]\nonboot:\n  - name: o\n    image: dyad/o:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kernel.Image != "linuxkit/kernel:1" || m.Kernel.Cmdline != "two" || strings.Join(m.Init, ",") != "linuxkit/init:1,dyad/init:2" {
		t.Errorf("merged kernel %+v init %v", m.Kernel, m.Init)
	}
	if m.InitDirs[1] != "/b" || len(m.Services) != 1 || len(m.Onboot) != 1 || strings.Join(m.Sources, ",") != "a.yml,b.yml" {
		t.Errorf("merged %+v", m)
	}
	c, _ := Parse("c.yml", "/c", []byte("services:\n  - name: s\n    image: dyad/s:2\n"))
	var ps Problems
	if _, err := Merge(a, c); !errors.As(err, &ps) || ps[0].File != "c.yml" {
		t.Errorf("a service named twice across files: %v", err)
	}
}
