package pkgbuild

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// The build tests build the repository's images as `dyad pkg build` does,
// each twice, and want the same digest; then look inside.

// downloads keeps the Debian packages the tests fetch, so that each is
// downloaded once per run (Options.downloads).
var downloads string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dyad-pkgbuild-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	downloads = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const imagesDir = "../../images"

func TestBaseImagesParse(t *testing.T) {
	read := func(name string) *Package {
		t.Helper()
		p, err := Read(filepath.Join(imagesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := read("kernel"); p.Recipe.Kernel != "linux-image-cloud-amd64" || p.hasConfig {
		t.Errorf("kernel: %+v", p.Recipe)
	}
	if p := read("runc"); p.Recipe.GoModule == nil || p.Recipe.GoModule.Path+"@"+p.Recipe.GoModule.Version != "github.com/opencontainers/runc@v1.4.3" ||
		!slices.Equal(p.Recipe.GoModule.Tags, []string{"seccomp", "netgo", "osusergo"}) || p.Recipe.Binary != "usr/bin/runc" || p.hasConfig {
		t.Errorf("runc: %s", dump(p.Recipe))
	}
	if p := read("init"); p.Recipe.GoPackage != "./linuxkit-builder/cmd/init" || p.Recipe.Binary != "init" || p.hasConfig {
		t.Errorf("init: %s", dump(p.Recipe))
	}
	for _, name := range []string{"poweroff", "check"} {
		c := read(name).Config
		if c.Readonly == nil || !*c.Readonly {
			t.Errorf("%s: the root is not read-only", name)
		}
	}
	if c := read("poweroff").Config; c.Pid != "host" || c.Capabilities == nil || len(*c.Capabilities) != 0 {
		t.Errorf("poweroff: want pid: host and no capabilities: %+v", c)
	}
	c := read("check").Config
	if c.Net != "host" || c.Binds != nil || c.Mounts == nil || len(*c.Mounts) != 1 {
		t.Fatalf("check: want net: host and one mount, no binds: %+v", c)
	}
	if m := (*c.Mounts)[0]; m.Source != "/run/resolvconf" || m.Destination != "/run/resolvconf" || m.Type != "bind" || !slices.Contains(m.Options, "ro") {
		t.Errorf("check: mount %+v, want /run/resolvconf bound read-only", m)
	}
}

func TestBuildKernel(t *testing.T) {
	if _, err := findDepmod(); err != nil {
		testnet.Unavailable(t, err.Error())
	}
	requireDeb(t, "KERNEL", "linux-image-cloud-amd64")
	img := buildTwice(t, "kernel")

	cfg := configFile(t, img)
	if deb := cfg.Config.Labels[DebLabel]; !strings.HasPrefix(deb, "linux-image-6") || !strings.Contains(deb, "-cloud-amd64=") {
		t.Errorf("label %s=%q, want the concrete package the meta-package depends on", DebLabel, deb)
	}
	if l, ok := cfg.Config.Labels[imageconfig.LabelKey]; ok {
		t.Errorf("a kernel image with the label %s", l)
	}
	files := readTar(t, layer(t, img))
	if names := files.names(); !slices.Equal(names, []string{"System.map", "config", "kernel", "kernel.tar"}) {
		t.Fatalf("the image holds %q", names)
	}
	// The Linux boot protocol's signature.
	if k := files.data["kernel"]; len(k) < 0x206 || string(k[0x202:0x206]) != "HdrS" {
		t.Error("/kernel is not a bzImage")
	}
	if !bytes.Contains(files.data["config"], []byte("\nCONFIG_VIRTIO_NET=m\n")) {
		t.Error("/config does not say CONFIG_VIRTIO_NET=m")
	}

	modules := readTar(t, files.data["kernel.tar"])
	var version string
	for _, n := range modules.names() {
		if rest, ok := strings.CutPrefix(n, "lib/modules/"); ok && strings.HasSuffix(rest, "/") && strings.Count(rest, "/") == 1 {
			version = strings.TrimSuffix(rest, "/")
		}
	}
	if version == "" {
		t.Fatalf("no lib/modules/VERSION/ in kernel.tar: %q...", modules.names()[:min(5, len(modules.names()))])
	}
	top := "lib/modules/" + version + "/"
	for _, want := range []string{"modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.order", "kernel/drivers/net/virtio_net.ko"} {
		if modules.data[top+want] == nil {
			t.Errorf("kernel.tar has no %s%s", top, want)
		}
	}
	// depmod found virtio_net's dependencies and its aliases.
	dep := string(modules.data[top+"modules.dep"])
	if line := grepLines(dep, "kernel/drivers/net/virtio_net.ko:"); !strings.HasPrefix(line, "kernel/drivers/net/virtio_net.ko: ") ||
		!strings.Contains(line, " kernel/drivers/net/net_failover.ko") || !strings.Contains(line, " kernel/drivers/virtio/virtio_ring.ko") {
		t.Errorf("modules.dep lacks virtio_net's dependencies:\n%s", grepLines(dep, "virtio_net"))
	}
	if alias := string(modules.data[top+"modules.alias"]); !strings.Contains(alias, "alias virtio:d00000001v* virtio_net\n") {
		t.Errorf("modules.alias lacks virtio_net's:\n%s", grepLines(alias, "virtio_net"))
	}
	var ko int
	for _, n := range modules.names() {
		if strings.HasSuffix(n, ".ko") {
			ko++
		}
	}
	if ko < 1000 {
		t.Errorf("kernel.tar holds %d modules, want every one of the package's (over 1000)", ko)
	}
	logSizes(t, img)
}

func TestBuildRunc(t *testing.T) {
	testnet.RequireTools(t, "gcc", "pkg-config")
	p, err := Read(filepath.Join(imagesDir, "runc"))
	if err != nil {
		t.Fatal(err)
	}
	m := p.Recipe.GoModule
	if _, err := goModDownload(context.Background(), m, t.TempDir(), runtime.GOARCH); err != nil {
		testnet.Unavailable(t, fmt.Sprintf("cannot fetch %s@%s from the Go module proxy: %v", m.Path, m.Version, err))
	}
	// The second build from an empty build cache: the same bytes, not
	// the same cached ones.
	img := buildTwice(t, "runc", func() { t.Setenv("GOCACHE", t.TempDir()) })

	cfg := configFile(t, img)
	if got := cfg.Config.Labels[GoModuleLabel]; got != "github.com/opencontainers/runc@v1.4.3" {
		t.Errorf("label %s=%q", GoModuleLabel, got)
	}
	if l, ok := cfg.Config.Labels[imageconfig.LabelKey]; ok {
		t.Errorf("an init image with the label %s", l)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/bin/runc"}) {
		t.Errorf("entry point %q", cfg.Config.Entrypoint)
	}
	files := readTar(t, layer(t, img))
	if names := files.names(); !slices.Equal(names, []string{"usr/", "usr/bin/", "usr/bin/runc"}) {
		t.Fatalf("the image holds %q", names)
	}
	if h := files.hdr["usr/bin/runc"]; h.Mode != 0o755 {
		t.Errorf("usr/bin/runc: mode %o", h.Mode)
	}
	runc := filepath.Join(t.TempDir(), "runc")
	if err := os.WriteFile(runc, files.data["usr/bin/runc"], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkBinary(runc, runtime.GOARCH); err != nil {
		t.Error(err)
	}
	if f, err := elf.Open(runc); err != nil || f.Type != elf.ET_DYN {
		t.Errorf("runc is not a static PIE (%v)", err)
	} else {
		f.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, runc, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "runc version 1.4.3\n") || !strings.Contains(string(out), "\nlibseccomp: 2.") {
		t.Errorf("runc --version: %v\n%s", err, out)
	}
	logSizes(t, img)
}

func TestBuildInit(t *testing.T) {
	img := buildTwice(t, "init")
	cfg := configFile(t, img)
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/init"}) {
		t.Errorf("entry point %q", cfg.Config.Entrypoint)
	}
	if l, ok := cfg.Config.Labels[imageconfig.LabelKey]; ok {
		t.Errorf("an init image with the label %s", l)
	}
	files := readTar(t, layer(t, img))
	bin := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(bin, files.data["init"], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkBinary(bin, runtime.GOARCH); err != nil {
		t.Error(err)
	}
	logSizes(t, img)
}

// TestBuildBusyboxImages: the poweroff and check images hold busybox from
// busybox-static, and links to it for each applet they need.
func TestBuildBusyboxImages(t *testing.T) {
	requireDeb(t, "DEB", "busybox-static")
	for _, tc := range []struct {
		name    string
		applets []string
		files   []string
	}{
		{"poweroff", []string{"sh", "sleep", "kill"}, []string{"poweroff.sh"}},
		{"check", []string{"sh", "ip", "cat", "grep", "echo", "sleep", "ls", "test", "[", "pidof", "tr", "date", "nslookup"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := buildTwice(t, tc.name)
			cfg := configFile(t, img)
			if deb := cfg.Config.Labels[DebLabel]; !strings.HasPrefix(deb, "busybox-static=1:") {
				t.Errorf("label %s=%q", DebLabel, deb)
			}
			p, err := Read(filepath.Join(imagesDir, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := p.Config.Label(); cfg.Config.Labels[imageconfig.LabelKey] != string(want) {
				t.Errorf("label %s, want %s", cfg.Config.Labels[imageconfig.LabelKey], want)
			}
			files := readTar(t, layer(t, img))
			want := []string{"bin/", "bin/busybox"}
			for _, a := range tc.applets {
				want = append(want, "bin/"+a)
			}
			want = append(want, tc.files...)
			slices.Sort(want)
			if names := files.names(); !slices.Equal(names, want) {
				t.Errorf("the image holds %q, want %q", names, want)
			}
			if h := files.hdr["bin/busybox"]; h == nil || h.Mode != 0o755 || h.Typeflag != tar.TypeReg {
				t.Fatalf("bin/busybox: %+v", h)
			}
			bb := filepath.Join(t.TempDir(), "busybox")
			if err := os.WriteFile(bb, files.data["bin/busybox"], 0o755); err != nil {
				t.Fatal(err)
			}
			if err := checkBinary(bb, runtime.GOARCH); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			list, err := exec.CommandContext(ctx, bb, "--list").Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.applets {
				if h := files.hdr["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/busybox" {
					t.Errorf("bin/%s is not a link to /bin/busybox: %+v", a, h)
				}
				if !slices.Contains(strings.Fields(string(list)), a) {
					t.Errorf("busybox has no applet %s", a)
				}
			}
			logSizes(t, img)
		})
	}
}

// TestFilesKeepTheExecuteBit builds a package whose FILES are one script
// with the execute bit and one file without: the image keeps the bit and
// nothing else of the source's mode.
func TestFilesKeepTheExecuteBit(t *testing.T) {
	requireDeb(t, "DEB", "busybox-static")
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"hook.sh": 0o700, "settings.conf": 0o600} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	const recipe = `image: files
org: test
buildArgs:
  - DEB=busybox-static
  - DEB_FILES=/bin/busybox:/bin/busybox
  - FILES=hook.sh:/hook.sh,settings.conf:/etc/settings.conf
`
	if err := os.WriteFile(filepath.Join(dir, "build.yml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), p, Options{Tag: "test", downloads: downloads})
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, layer(t, r.Image))
	for name, want := range map[string]int64{"hook.sh": 0o755, "etc/settings.conf": 0o644} {
		if h := files.hdr[name]; h == nil || h.Mode != want {
			t.Errorf("%s: %+v, want mode %o", name, h, want)
		}
	}
}

// TestPoweroffScript runs poweroff.sh in the poweroff image, in a PID
// namespace of its own whose PID 1, a shell standing in for init, says
// whether SIGUSR2 came.
func TestPoweroffScript(t *testing.T) {
	testnet.RequireRoot(t)
	requireDeb(t, "DEB", "busybox-static")
	root := unpack(t, buildOnce(t, "poweroff"))
	const init = `trap 'echo init: SIGUSR2; exit 0' USR2; /bin/sh /poweroff.sh "$@" & wait; echo "init: poweroff.sh ended without a signal"; exit 3`
	start := time.Now()
	out, err := runInRoot(t, root, "/bin/sh", "-c", init, "init", "1")
	if err != nil || !strings.Contains(out, "asking init (PID 1) to power off") || !strings.Contains(out, "init: SIGUSR2") {
		t.Errorf("poweroff.sh 1: %v\n%s", err, out)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("poweroff.sh 1 signalled init after %v, before its second", d)
	}
	out, err = runInRoot(t, root, "/bin/sh", "-c", init, "init", "soon")
	if err == nil || strings.Contains(out, "SIGUSR2") || !strings.Contains(out, "'soon' is not a whole number of seconds") {
		t.Errorf("poweroff.sh soon: %v\n%s", err, out)
	}
}

// TestCheckImageRunsAScript runs a script with the check image's applets.
func TestCheckImageRunsAScript(t *testing.T) {
	testnet.RequireRoot(t)
	requireDeb(t, "DEB", "busybox-static")
	root := unpack(t, buildOnce(t, "check"))
	const script = `set -e
echo hello | grep -q hello
test 2 -gt 1
[ -x /bin/busybox ]
ls /bin | grep -q pidof
cat /bin/busybox | grep -q ELF
ip -o link show lo | grep -q LOOPBACK
sleep 0
echo checked`
	out, err := runInRoot(t, root, "/bin/sh", "-c", script)
	if err != nil || !strings.Contains(out, "checked") {
		t.Errorf("the check script: %v\n%s", err, out)
	}
}

// requireDeb fetches a package into downloads, where the builds find it.
func requireDeb(t *testing.T, key, name string) {
	t.Helper()
	testnet.RequireTools(t, "apt-get", "apt-cache", "dpkg-deb")
	if _, err := fetchDeb(context.Background(), key, name, t.TempDir(), downloads); err != nil {
		testnet.Unavailable(t, fmt.Sprintf("cannot fetch %s from Debian's mirrors: %v", name, err))
	}
}

// buildOnce builds images/NAME.
func buildOnce(t *testing.T, name string) v1.Image {
	t.Helper()
	p, err := Read(filepath.Join(imagesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var log strings.Builder
	r, err := Build(context.Background(), p, Options{Tag: "test", downloads: downloads, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("built %s in %v", name, time.Since(start).Round(10*time.Millisecond))
	return r.Image
}

// buildTwice builds images/NAME twice, calling between before the second
// build, and wants the same digest.
func buildTwice(t *testing.T, name string, between ...func()) v1.Image {
	t.Helper()
	first := buildOnce(t, name)
	for _, f := range between {
		f()
	}
	second := buildOnce(t, name)
	d1, err1 := first.Digest()
	d2, err2 := second.Digest()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("two builds of images/%s: %s and %s", name, d1, d2)
	}
	return second
}

func configFile(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// layer is the image's one layer, uncompressed.
func layer(t *testing.T, img v1.Image) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarFiles are a tar archive's entries, in order, and their contents.
type tarFiles struct {
	order []string
	hdr   map[string]*tar.Header
	data  map[string][]byte
}

func (f *tarFiles) names() []string { return f.order }

// readTar reads an archive and checks what every archive the build
// writes must be: entries sorted by name, owned by root, stamped with the
// epoch.
func readTar(t *testing.T, b []byte) *tarFiles {
	t.Helper()
	f := &tarFiles{hdr: map[string]*tar.Header{}, data: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: owner %d:%d, time %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		f.order = append(f.order, h.Name)
		f.hdr[h.Name], f.data[h.Name] = h, data
	}
	if !slices.IsSorted(f.order) {
		t.Error("the archive's entries are not sorted")
	}
	return f
}

// unpack writes the image's files into a new directory.
func unpack(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	files := readTar(t, layer(t, img))
	for _, n := range files.names() {
		h, p := files.hdr[n], filepath.Join(dir, n)
		var err error
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			err = os.WriteFile(p, files.data[n], os.FileMode(h.Mode)&os.ModePerm)
		default:
			t.Fatalf("%s: type %c", n, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runInRoot runs args chrooted in root, as the first process of a PID
// namespace of its own, in a network namespace of its own, with a /dev/null (a shell's background jobs read
// it).
func runInRoot(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	null := filepath.Join(root, "dev", "null")
	if _, err := os.Stat(null); err != nil {
		if err := os.MkdirAll(filepath.Dir(null), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatalf("making %s: %v", null, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Path = args[0] // inside the root, not looked up on the host
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func logSizes(t *testing.T, img v1.Image) {
	t.Helper()
	s, err := Sizes(img)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	t.Logf("%s: %d bytes compressed, %d uncompressed", d, s.Compressed, s.Uncompressed)
}
