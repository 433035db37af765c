package assemble

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/lkfile"
)

// file is an entry of a test image's layer.
type file struct {
	name, body, link string
	mode             int64
	dir              bool
}

// testImage makes a one-layer image of files, with a label and a
// command.
func testImage(t *testing.T, files []file, label string, cmd ...string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		switch {
		case f.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	tw.Close()
	// LayerFromReader would buffer the tar in a file under the host's /tmp
	// and never remove it.
	body := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Cmd = cmd
	if label != "" {
		cf.Config.Labels = map[string]string{imageconfig.LabelKey: label}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tarOf is a tar of files, for a kernel image's kernel.tar.
func tarOf(t *testing.T, files []file) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		io.WriteString(tw, f.body)
	}
	tw.Close()
	return buf.String()
}

type mapSource map[string]v1.Image

func (m mapSource) Image(_ context.Context, ref string) (v1.Image, error) {
	if img, ok := m[ref]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("%s: no such image", ref)
}

func testSource(t *testing.T) mapSource {
	return mapSource{
		"dyad/kernel:1": testImage(t, []file{
			{name: "kernel", body: "bzImage"},
			{name: "kernel.tar", body: tarOf(t, []file{{name: "lib/modules/6.1.0/modules.dep", body: "kernel/drivers/net/virtio_net.ko: \n"}})},
		}, ""),
		"dyad/init:1": testImage(t, []file{
			{name: "init", body: "#!init", mode: 0o755},
			{name: "etc/resolv.conf", body: "nameserver 8.8.8.8\n"},
		}, ""),
		"dyad/runc:1": testImage(t, []file{{name: "usr/bin/runc", body: "runc", mode: 0o755}}, ""),
		"dyad/dhcp:1": testImage(t, []file{
			{name: "usr/bin/dyad-dhcp", body: "dhcp", mode: 0o755},
			{name: "sbin/dhcpcd", link: "/usr/bin/dyad-dhcp"},
			{name: "usr/libexec/dyad/engine-exec", body: "launcher", mode: 0o6755},
			{name: "etc/passwd", body: "root:x:0:0::/:/bin/false\ndyad-dhcp:x:2101:2101::/:/bin/false\n"},
			{name: "etc/resolv.conf", body: "nameserver 8.8.8.8\n"},
			{name: "etc/hostname", body: "builder\n"},
		}, `{"binds":["/run/resolvconf:/etc"],"capabilities":["CAP_NET_ADMIN","CAP_NET_RAW"],"readonly":true,"runtime":{"mkdir":["/run/resolvconf"]}}`,
			"dhcpcd", "--nobackground", "-f", "/dhcpcd.conf"),
		"dyad/check:1": testImage(t, []file{{name: "bin/sh", body: "sh", mode: 0o755}}, "", "/bin/sh"),
	}
}

const testYAML = `kernel:
  image: dyad/kernel:1
  cmdline: "console=ttyS0"
init:
  - dyad/init:1
  - dyad/runc:1
onboot:
  - name: dhcpcd
    image: dyad/dhcp:1
    command: ["/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"]
  - name: check
    image: dyad/check:1
    binds: ["/check.sh:/check.sh"]
services:
  - name: dhcpcd
    image: dyad/dhcp:1
files:
  - path: check.sh
    contents: "echo ok"
    mode: "0755"
  - path: etc/dyad
    directory: true
`

func build(t *testing.T, src mapSource, yaml string, dryRun bool) *Result {
	t.Helper()
	f, err := lkfile.Parse("t.yml", t.TempDir(), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), f, Options{Source: src, DryRun: dryRun})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBuildLaysOutLinuxKitBundles(t *testing.T) {
	res := build(t, testSource(t), testYAML, false)
	tr := res.Tree
	if string(res.Kernel) != "bzImage" || res.Cmdline != "console=ttyS0" {
		t.Errorf("kernel %q cmdline %q", res.Kernel, res.Cmdline)
	}
	for _, name := range []string{
		"init", "usr/bin/runc", "lib/modules/6.1.0/modules.dep", "dev/console", "check.sh",
		"containers/onboot/000-dhcpcd/config.json", "containers/onboot/000-dhcpcd/runtime.json",
		"containers/onboot/000-dhcpcd/rootfs/usr/bin/dyad-dhcp",
		"containers/onboot/001-check/lower/bin/sh", "containers/onboot/001-check/tmp",
		"containers/onboot/001-check/rootfs", "containers/services/dhcpcd/config.json",
	} {
		if !tr.Has(name) {
			t.Errorf("%s missing", name)
		}
	}
	// The service shares the onboot container's unpacked root.
	if tr.Has("containers/services/dhcpcd/rootfs/usr/bin/dyad-dhcp") {
		t.Error("the same image was unpacked twice")
	}
	if e := tr.entries["init"]; e.mode&typeMask != typeReg {
		t.Error("init is not a file")
	}
	if e := tr.entries["etc/resolv.conf"]; e == nil || e.link != ResolvConfLink {
		t.Errorf("the system's /etc/resolv.conf is %+v, want a link to %s", e, ResolvConfLink)
	}
	if b, _ := tr.Lookup("containers/onboot/000-dhcpcd/rootfs/etc/resolv.conf"); string(b) != noResolvConf {
		t.Errorf("a container's resolv.conf is %q", b)
	}
	if tr.Has("containers/onboot/000-dhcpcd/rootfs/etc/hostname") {
		t.Error("the image's /etc/hostname was kept")
	}
	if e := tr.entries["containers/onboot/000-dhcpcd/rootfs/usr/libexec/dyad/engine-exec"]; e.mode&permMask != 0o6755 {
		t.Errorf("engine-exec mode %o, want the set-ID bits kept", e.mode&permMask)
	}
	if e := tr.entries["check.sh"]; e.mode&permMask != 0o755 {
		t.Errorf("check.sh mode %o", e.mode&permMask)
	}
	if e := tr.entries["etc/dyad"]; !e.isDir() || e.mode&permMask != 0o700 {
		t.Errorf("etc/dyad: %+v, want a 0700 directory", e)
	}

	var spec specs.Spec
	b, _ := tr.Lookup("containers/onboot/000-dhcpcd/config.json")
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(spec.Process.Args, []string{"/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"}) || !spec.Root.Readonly {
		t.Errorf("onboot dhcpcd: args %v root %+v", spec.Process.Args, spec.Root)
	}
	if !slices.Equal(spec.Process.Capabilities.Bounding, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}) {
		t.Errorf("capabilities %v", spec.Process.Capabilities.Bounding)
	}
	var rt imageconfig.Runtime
	b, _ = tr.Lookup("containers/services/dhcpcd/runtime.json")
	if err := json.Unmarshal(b, &rt); err != nil {
		t.Fatal(err)
	}
	if m := (*rt.Mounts)[0]; m.Source != "/containers/onboot/000-dhcpcd/rootfs" || m.Destination != "/containers/services/dhcpcd/rootfs" {
		t.Errorf("the service's root mount %+v", m)
	}
	if !slices.Equal(*rt.Mkdir, []string{"/run/resolvconf"}) {
		t.Errorf("runtime mkdir %v", *rt.Mkdir)
	}
	b, _ = tr.Lookup("containers/onboot/001-check/config.json")
	spec = specs.Spec{}
	json.Unmarshal(b, &spec)
	if spec.Process.User.UID != 0 || spec.Root.Readonly {
		t.Errorf("check: user %+v readonly %v", spec.Process.User, spec.Root.Readonly)
	}
	b, _ = tr.Lookup("containers/onboot/001-check/runtime.json")
	rt = imageconfig.Runtime{}
	json.Unmarshal(b, &rt)
	if ms := *rt.Mounts; len(ms) != 3 || ms[2].Type != "overlay" || !slices.Contains(ms[2].Options, "lowerdir=/containers/onboot/001-check/lower") {
		t.Errorf("check's root mounts %+v", ms)
	}
}

func TestBuildResolvesUsersOfTheImage(t *testing.T) {
	yaml := strings.Replace(testYAML, "image: dyad/check:1\n", "image: dyad/dhcp:1\n    uid: dyad-dhcp\n", 1)
	res := build(t, testSource(t), yaml, false)
	var spec specs.Spec
	b, _ := res.Tree.Lookup("containers/onboot/001-check/config.json")
	json.Unmarshal(b, &spec)
	if spec.Process.User.UID != 2101 {
		t.Errorf("uid %d, want dyad-dhcp's 2101", spec.Process.User.UID)
	}
}

func TestOutputsAreReproducible(t *testing.T) {
	var outputs [2]map[string][]byte
	for i := range outputs {
		res := build(t, testSource(t), testYAML, false)
		// Not there yet: Write makes it.
		dir := filepath.Join(t.TempDir(), "out", "put")
		outputs[i] = map[string][]byte{}
		for _, format := range Formats {
			files, err := Write(res, format, dir, "x")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				outputs[i][filepath.Base(f)] = b
			}
		}
	}
	for _, name := range []string{"x-kernel", "x-initrd.img", "x-cmdline", "x.tar"} {
		a, b := outputs[0][name], outputs[1][name]
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: %d and %d bytes, not the same", name, len(a), len(b))
		}
	}
	// The initrd reads back: a gzip'd newc cpio holding the tree, with
	// the console device and the set-ID bits.
	zr, err := gzip.NewReader(bytes.NewReader(outputs[0]["x-initrd.img"]))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpio.Info{}
	for _, r := range recs {
		byName[r.Name] = r.Info
	}
	if c := byName["dev/console"]; c.Mode != typeChar|0o600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console %+v", c)
	}
	if e := byName["containers/onboot/000-dhcpcd/rootfs/usr/libexec/dyad/engine-exec"]; e.Mode != typeReg|0o6755 {
		t.Errorf("engine-exec %o", e.Mode)
	}
	if _, ok := byName["containers"]; !ok || len(byName) != res0Len(t) {
		t.Errorf("%d records", len(byName))
	}
	if got := string(outputs[0]["x-cmdline"]); got != "console=ttyS0" {
		t.Errorf("cmdline %q", got)
	}
}

func res0Len(t *testing.T) int { return build(t, testSource(t), testYAML, false).Tree.Len() - 1 }

func TestDryRunPlansWithoutImages(t *testing.T) {
	res := build(t, mapSource{}, testYAML, true)
	if res.Kernel != nil {
		t.Error("a dry run without images has a kernel")
	}
	if !res.Tree.Has("containers/onboot/000-dhcpcd/config.json") {
		t.Error("no bundle planned")
	}
	f, err := lkfile.Parse("t.yml", t.TempDir(), []byte(testYAML+"  - path: x\n    source: ./nothere\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err = Build(context.Background(), f, Options{Source: mapSource{}, DryRun: true}); err != nil {
		t.Fatalf("a dry run stopped at a missing source: %v", err)
	}
	plan := strings.Join(res.Plan, "\n")
	if !strings.Contains(plan, "source ") || !strings.Contains(plan, "nothere is missing: a build would fail") {
		t.Errorf("plan:\n%s", plan)
	}
	if !strings.Contains(plan, "containers/onboot/000-dhcpcd: dyad/dhcp:1, image not fetched") {
		t.Errorf("plan:\n%s", plan)
	}
}

func TestBuildFailsClearly(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"missing image", strings.Replace(testYAML, "dyad/check:1", "dyad/nothere:1", 1), "t.yml:11: onboot[1]: check: dyad/nothere:1: no such image"},
		{"kernel without its file", strings.Replace(testYAML, "cmdline:", "binary: vmlinuz\n  cmdline:", 1), "the image has no file vmlinuz"},
		{"unknown user", strings.Replace(testYAML, "image: dyad/dhcp:1\n    command", "image: dyad/dhcp:1\n    uid: nobody\n    command", 1), `no user called "nobody"`},
		{"missing source", testYAML + "  - path: x\n    source: ./nothere\n", "nothere: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := lkfile.Parse("t.yml", t.TempDir(), []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(context.Background(), f, Options{Source: testSource(t)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
