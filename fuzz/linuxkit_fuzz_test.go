package fuzz

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/internal/capname"
	"github.com/dyad-project/dyad/linuxkit-builder/assemble"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/lkfile"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
)

type linuxKitYAMLSeed struct{ yml, label []byte }

// linuxKitYAMLSeeds are hand-made files and labels, and LinuxKit's own
// examples each with the label of dyad's dhcp image.
func linuxKitYAMLSeeds() []linuxKitYAMLSeed {
	seeds := []linuxKitYAMLSeed{
		{[]byte("kernel:\n  image: linuxkit/kernel:6.12.59\n  cmdline: console=ttyS0\ninit:\n  - linuxkit/init:1\nonboot:\n  - name: dhcpcd\n    image: dyad/dhcp:1\n    command: [\"/sbin/dhcpcd\", \"-1\"]\n    binds.add: [/a:/b]\n"),
			[]byte(`{"capabilities":["CAP_NET_ADMIN"],"binds":["/run/resolvconf:/etc"],"readonly":true,"runtime":{"mkdir":["/run/x"]}}`)},
		{[]byte("services:\n  - name: s\n    image: nginx:1\n    capabilities: [all]\n    uid: www\n    rlimits: [\"nofile,1,unlimited\"]\n    tmpfs: [\"/tmp:size=1m\"]\nvolumes:\n  - name: v\nfiles:\n  - path: etc/x\n    contents: y\n    mode: \"0644\"\n"),
			[]byte(`{"ambient":["CAP_KILL"],"mounts":[{"type":"proc","destination":"/proc"}],"net":"new"}`)},
		// A list given by an alias (this one once crashed Parse).
		{[]byte("onboot: &a\n  - name: x\n    image: alpine:3\nservices: *a\n"), nil},
	}
	p, err := pkgbuild.Read("../images/dhcp")
	if err != nil {
		return seeds
	}
	label, err := p.Config.Label()
	if err != nil {
		return seeds
	}
	examples, _ := filepath.Glob("../linuxkit-builder/lkfile/testdata/linuxkit/examples/*.yml")
	for _, e := range examples {
		if b, err := os.ReadFile(e); err == nil {
			seeds = append(seeds, linuxKitYAMLSeed{b, label})
		}
	}
	return seeds
}

func TestLinuxKitYAMLSeeds(t *testing.T) {
	var seeds [][]any
	for _, s := range linuxKitYAMLSeeds() {
		seeds = append(seeds, []any{s.yml, s.label})
	}
	if err := syncSeeds("FuzzLinuxKitYAML", seeds); err != nil {
		t.Fatal(err)
	}
}

// FuzzLinuxKitYAML covers dyad build's reader of LinuxKit YAML files,
// which come from anywhere, and the merge of each entry with its image's
// label into an OCI spec. The invariants: no panic; every container of a
// file that parses gets a spec whose capabilities are all known names.
//
// Dictionary: linuxkit.dict
func FuzzLinuxKitYAML(f *testing.F) {
	for _, s := range linuxKitYAMLSeeds() {
		f.Add(s.yml, s.label)
	}
	f.Fuzz(func(t *testing.T, yml, label []byte) {
		file, err := lkfile.Parse("f.yml", ".", yml)
		if err != nil {
			return
		}
		merged, err := lkfile.Merge(file)
		if err != nil {
			return
		}
		cfg, err := imageconfig.ParseLabel(label)
		if err != nil {
			cfg = imageconfig.Config{}
		}
		ids := lkfile.IDs{Users: map[string]uint32{"www": 33}, Groups: map[string]uint32{}}
		for _, sec := range [][]*lkfile.Image{merged.Onboot, merged.Onshutdown, merged.Services} {
			for _, img := range sec {
				spec, _, err := lkfile.Spec(img, cfg, lkfile.ImageDefaults{}, ids)
				if err != nil {
					continue
				}
				for _, c := range spec.Process.Capabilities.Bounding {
					if _, ok := capname.Number(c); !ok {
						t.Fatalf("the spec of %s holds the unknown capability %q", img.Name, c)
					}
				}
			}
		}
	})
}

// imageLayerSeeds are a layer with each kind of entry an image may hold,
// one of them climbing out.
func imageLayerSeeds() [][]byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "usr/bin/x", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
		{Name: "sbin/y", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin/x"},
		{Name: "usr/bin/z", Typeflag: tar.TypeLink, Linkname: "usr/bin/x"},
		{Name: "../../etc/passwd", Typeflag: tar.TypeReg, Size: 1},
		{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
	} {
		tw.WriteHeader(h)
		tw.Write(make([]byte, h.Size))
	}
	tw.Close()
	return [][]byte{buf.Bytes()}
}

func TestImageLayerSeeds(t *testing.T) {
	if err := syncSeeds("FuzzImageLayer", oneArg(imageLayerSeeds())); err != nil {
		t.Fatal(err)
	}
}

// FuzzImageLayer covers the assembler's reader of an image's layers, the
// tar streams of any image pulled from a registry, which it unpacks into
// a container's root. The invariants: no panic; nothing lands outside the
// container's directory but the directories above it; the tree writes out
// as a tar and as a cpio.
func FuzzImageLayer(f *testing.F) {
	for _, s := range imageLayerSeeds() {
		f.Add(s)
	}
	const prefix = "containers/onboot/000-x/rootfs"
	f.Fuzz(func(t *testing.T, b []byte) {
		tree := assemble.NewTree()
		// Enough for any input the fuzzer makes. A header may claim more (a
		// sparse file of holes), and every byte of it is read and written
		// twice: at 1 MiB the fuzzer ran a thousand inputs a second.
		tree.MaxSize = 64 << 10
		if err := tree.AddTar(prefix, bytes.NewReader(b), nil); err != nil {
			return
		}
		var out bytes.Buffer
		if err := tree.WriteTar(&out, assemble.Epoch); err != nil {
			t.Fatalf("the tree does not write as a tar: %v", err)
		}
		if err := tree.WriteCpio(io.Discard, assemble.Epoch); err != nil {
			t.Fatalf("the tree does not write as a cpio: %v", err)
		}
		tr := tar.NewReader(&out)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("the tar written back does not read: %v", err)
			}
			name := strings.TrimSuffix(h.Name, "/")
			if !strings.HasPrefix(name+"/", prefix+"/") && !strings.HasPrefix(prefix+"/", name+"/") {
				t.Fatalf("%q lies outside %s", h.Name, prefix)
			}
		}
	})
}
