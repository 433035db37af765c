package fuzz

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
	"github.com/dyad-project/dyad/sdk/audit"
)

// parseLabelSeeds are hand-made labels, and those of dyad's images.
func parseLabelSeeds() [][]byte {
	var seeds [][]byte
	for _, s := range []string{
		`{"capabilities":["CAP_NET_ADMIN"],"binds":["/run/resolvconf:/etc"],"readonly":true}`,
		`{"uid":"dyad","gid":2101,"additionalGids":[1,"wheel"],"runtime":{"mkdir":["/run/x"],"bindNS":{"net":"/run/netns/x"}}}`,
		`{"mounts":[{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid"]}],"sysctl":{"net.ipv4.ip_forward":"1"}}`,
		`{"devices":[{"path":"/dev/tpm0","type":"c","major":10,"minor":224,"mode":"0600"}],"resources":{"memory":{"limit":1048576}}}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	recipes, _ := filepath.Glob("../images/*/build.yml")
	for _, r := range recipes {
		if p, err := pkgbuild.Read(filepath.Dir(r)); err == nil {
			if l, err := p.Config.Label(); err == nil {
				seeds = append(seeds, l)
			}
		}
	}
	return seeds
}

func TestParseLabelSeeds(t *testing.T) {
	if err := syncSeeds("FuzzParseLabel", oneArg(parseLabelSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseLabel covers the reader of an image's org.mobyproject.config
// label, which comes with any image pulled from a registry. The
// invariant: no panic; a label that parses writes back to JSON that
// parses to the same label.
//
// Dictionary: linuxkit.dict
func FuzzParseLabel(f *testing.F) {
	for _, s := range parseLabelSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := imageconfig.ParseLabel(b)
		if err != nil {
			return
		}
		out, err := c.Label()
		if err != nil {
			t.Fatalf("a parsed label does not write back: %v", err)
		}
		c2, err := imageconfig.ParseLabel(out)
		if err != nil {
			t.Fatalf("the label written back (%s) does not parse: %v", out, err)
		}
		out2, err := c2.Label()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("the label changes on a second round trip:\n%s\n%s", out, out2)
		}
	})
}

// parseAuditSeeds are audits as dyad-dhcp prints them, and a bare one.
func parseAuditSeeds() [][]byte {
	return [][]byte{
		[]byte(`{"daemon":"dyad-dhcp","supervisor":{"user":"root","capabilities":["CAP_SETUID"],"no_new_privs":true,"seccomp":"s","landlock":"none","role":"r"},"actuator":{"user":"root","capabilities":["CAP_NET_ADMIN"],"no_new_privs":true,"seccomp":"a","landlock":"l","role":"r"},"engine":{"user":"2101:2101","capabilities":[],"no_new_privs":true,"seccomp":"e","landlock":"none","role":"r"},"operations":[{"op":"link.up","does":"d","checks":"c"},{"op":"hostname.set","does":"d","checks":"c","only":"o"}]}`),
		[]byte(`{"daemon":"x","operations":null}`),
	}
}

func TestParseAuditSeeds(t *testing.T) {
	if err := syncSeeds("FuzzParseAudit", oneArg(parseAuditSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseAudit covers the reader of the org.dyad.audit label, which
// dyad audit reads from any image it is given. The invariant: no panic; an
// audit that parses writes back to JSON that parses to the same audit.
func FuzzParseAudit(f *testing.F) {
	for _, s := range parseAuditSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := audit.Parse(b)
		if err != nil {
			return
		}
		a2, err := audit.Parse(a.Marshal())
		if err != nil {
			t.Fatalf("an audit written back does not parse: %v", err)
		}
		if !bytes.Equal(a.Marshal(), a2.Marshal()) {
			t.Fatalf("the audit changes on a round trip:\n%s\n%s", a.Marshal(), a2.Marshal())
		}
	})
}

// parseBuildYMLSeeds are hand-made recipes, and dyad's images' own.
func parseBuildYMLSeeds() [][]byte {
	seeds := [][]byte{
		[]byte("image: dhcp\norg: dyad\nbuildArgs:\n  - GO_PACKAGE=./x\n  - BINARY=/usr/bin/x\n  - ENGINE_USER=x:2101:2101\nconfig:\n  capabilities: [CAP_NET_ADMIN]\n  readonly: true\n  uid: 2101\n"),
		[]byte("image: dhcp\nbuildArgs: [GO_PACKAGE=./x, BINARY=/x, ENGINE_USER=x:1:1, LAUNCHER=./y:/z, AUDIT=audit -q]\nconfig:\n  binds.add: [/a:/b]\n  runtime: {mkdir: [/run/x]}\n"),
	}
	recipes, _ := filepath.Glob("../images/*/build.yml")
	for _, r := range recipes {
		if b, err := os.ReadFile(r); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func TestParseBuildYMLSeeds(t *testing.T) {
	if err := syncSeeds("FuzzParseBuildYML", oneArg(parseBuildYMLSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseBuildYML covers the reader of a package's build.yml, LinuxKit's
// format, which may come with a package from anywhere. The invariant: no
// panic; the config block of a build.yml that parses makes a label that
// reads back.
//
// Dictionary: linuxkit.dict
func FuzzParseBuildYML(f *testing.F) {
	for _, s := range parseBuildYMLSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := pkgbuild.Parse(b)
		if err != nil {
			return
		}
		label, err := p.Config.Label()
		if err != nil {
			t.Fatalf("a parsed config does not make a label: %v", err)
		}
		if _, err := imageconfig.ParseLabel(label); err != nil {
			t.Fatalf("the label %s does not read back: %v", label, err)
		}
	})
}
