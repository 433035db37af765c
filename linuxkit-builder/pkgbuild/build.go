package pkgbuild

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/sdk/audit"
)

// GoBuildFlags are handed to go build for every daemon: a static PIE with
// cgo only for libseccomp (linked statically from Debian's libseccomp-dev),
// no paths and no build ids, so that the same source gives the same bytes.
// The Makefile builds bin/ with the same flags.
var GoBuildFlags = []string{
	"-buildmode=pie", "-tags", "netgo,osusergo", "-trimpath", "-buildvcs=false",
	"-ldflags", `-s -w -buildid= -linkmode external -extldflags "-static-pie -Wl,--build-id=none"`,
}

// Options tune a build.
type Options struct {
	// Tag overrides the tag (default: build.yml's, else the source's git
	// tree hash, else "dev").
	Tag string
	// Org overrides build.yml's org.
	Org string
	// Log receives the go build command line and its output.
	Log io.Writer
}

// Result is a built image.
type Result struct {
	Image v1.Image
	// Ref is ORG/IMAGE:TAG.
	Ref string
	// BinarySize is the daemon's size in bytes.
	BinarySize int64
}

// Build builds p's daemon and image.
func Build(ctx context.Context, p *Package, opt Options) (*Result, error) {
	// Cross builds would need a C cross compiler for cgo: dyad builds for
	// the machine it runs on.
	arch := runtime.GOARCH
	if len(p.Arches) > 0 && !slices.Contains(p.Arches, arch) {
		return nil, fmt.Errorf("pkgbuild: %s is built for %v only, and this machine is %s", p.Image, p.Arches, arch)
	}
	// go-containerregistry would otherwise make the layer estargz, with
	// other bytes.
	if v := os.Getenv("GGCR_EXPERIMENT_ESTARGZ"); v != "" {
		return nil, fmt.Errorf("pkgbuild: GGCR_EXPERIMENT_ESTARGZ=%s would change the image's layer: unset it", v)
	}
	root, err := moduleRoot(p.Dir)
	if err != nil {
		return nil, err
	}
	epoch, err := buildEpoch()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "dyad-pkg-")
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, path.Base(p.Recipe.Binary))
	if err := goBuild(ctx, root, p.Recipe.GoPackage, bin, arch, opt.Log); err != nil {
		return nil, err
	}
	if err := checkBinary(bin, arch); err != nil {
		return nil, err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	launcher := ""
	if l := p.Recipe.Launcher; l != nil {
		launcher = filepath.Join(tmp, "launcher")
		if err := goBuild(ctx, root, l.GoPackage, launcher, arch, opt.Log); err != nil {
			return nil, err
		}
		if err := checkBinary(launcher, arch); err != nil {
			return nil, err
		}
	}
	auditJSON, err := runAudit(ctx, p, bin)
	if err != nil {
		return nil, err
	}
	layer, err := buildLayer(p, bin, launcher, epoch)
	if err != nil {
		return nil, err
	}
	img, err := assemble(p, layer, arch, epoch, auditJSON)
	if err != nil {
		return nil, err
	}
	tag := opt.Tag
	if tag == "" {
		tag = p.Tag
	}
	if tag == "" {
		tag = sourceTag(ctx, root)
	}
	org := p.Org
	if opt.Org != "" {
		org = opt.Org
	}
	return &Result{Image: img, Ref: org + "/" + p.Image + ":" + tag, BinarySize: fi.Size()}, nil
}

func moduleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("pkgbuild: %w", err)
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "", fmt.Errorf("pkgbuild: no go.mod above %s", dir)
}

// buildEpoch is the time stamped on the image and its files: the Unix epoch,
// or SOURCE_DATE_EPOCH.
func buildEpoch() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("pkgbuild: SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// buildEnvDropped are the variables of the caller's environment that
// would change the binary's bytes: the build pins them instead.
var buildEnvDropped = []string{"GOFLAGS", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOEXPERIMENT", "CGO_ENABLED",
	"CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS", "CGO_FFLAGS", "CC", "CXX", "GCCGO"}

func goBuild(ctx context.Context, root, pkg, out, arch string, log io.Writer) error {
	args := append([]string{"build"}, GoBuildFlags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(buildEnvDropped, k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=1", "GOOS=linux", "GOARCH="+arch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if log != nil {
		fmt.Fprintf(log, "go %s\n", strings.Join(args, " "))
	}
	err := cmd.Run()
	if log != nil {
		log.Write(output.Bytes())
	}
	if err != nil {
		return fmt.Errorf("pkgbuild: go build %s: %w\n%s", pkg, err, output.Bytes())
	}
	return nil
}

// runAudit runs the built binary with the recipe's AUDIT arguments and
// returns what it says as compact JSON, after checking that it reads as an
// audit and names the engine user the image's /etc/passwd does.
func runAudit(ctx context.Context, p *Package, bin string) ([]byte, error) {
	if len(p.Recipe.Audit) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, p.Recipe.Audit...)
	cmd.Env = []string{} // nothing of the builder's environment
	cmd.Dir = p.Dir      // where the arguments may name the package's files
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %s %s: %w\n%s", path.Base(bin), strings.Join(p.Recipe.Audit, " "), err, stderr.Bytes())
	}
	a, err := audit.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: what %s printed: %w", path.Base(bin), err)
	}
	if want := fmt.Sprintf("%d:%d", p.Recipe.User.UID, p.Recipe.User.GID); a.Engine.User != want {
		return nil, fmt.Errorf("pkgbuild: the binary's engine runs as %s, but ENGINE_USER says %s", a.Engine.User, want)
	}
	return json.Marshal(a)
}

// checkBinary refuses a binary for another machine, or one that needs a
// dynamic loader or libraries.
func checkBinary(bin, arch string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("pkgbuild: %s: %w", bin, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("pkgbuild: %s is for %v, not %s", bin, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("pkgbuild: %s is dynamically linked (it has an interpreter)", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("pkgbuild: %s: %w", bin, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("pkgbuild: %s needs shared libraries %v", bin, libs)
	}
	return nil
}

// sourceTag names the source: the git tree hash of the module, marked
// dirty when the work tree has changes, or "dev" outside git.
func sourceTag(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "HEAD^{tree}").Output()
	if err != nil {
		return "dev"
	}
	tag := strings.TrimSpace(string(out))
	if len(tag) > 12 {
		tag = tag[:12]
	}
	status, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain").Output()
	if err != nil || len(bytes.TrimSpace(status)) > 0 {
		tag += "-dirty"
	}
	return tag
}

// buildLayer writes the image's one layer: the binary and its links, a
// minimal /etc naming root and the engine's user, the package's files and
// the mount points, every entry owned by root and stamped with epoch, in
// a fixed order.
func buildLayer(p *Package, bin, launcher string, epoch time.Time) (v1.Layer, error) {
	r := p.Recipe
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	entries := map[string]*entry{}
	// put adds an entry and the directories above it.
	put := func(hdr tar.Header, data []byte) error {
		if _, ok := entries[hdr.Name]; ok {
			return fmt.Errorf("pkgbuild: %s goes into the image twice", hdr.Name)
		}
		for d := path.Dir(hdr.Name); d != "."; d = path.Dir(d) {
			if _, ok := entries[d+"/"]; !ok {
				entries[d+"/"] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}}
			}
		}
		entries[hdr.Name] = &entry{hdr: hdr, data: data}
		return nil
	}
	file := func(name string, mode int64, data []byte) error {
		return put(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data)
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	if err := file(r.Binary, 0o755, binData); err != nil {
		return nil, err
	}
	if launcher != "" {
		data, err := os.ReadFile(launcher)
		if err != nil {
			return nil, fmt.Errorf("pkgbuild: %w", err)
		}
		// The one file not root's: set-user-ID and set-group-ID to the
		// engine's user, so that running it gives that user and nothing
		// more.
		hdr := tar.Header{Typeflag: tar.TypeReg, Name: r.Launcher.Path, Mode: 0o6755, Size: int64(len(data)),
			Uid: int(r.User.UID), Gid: int(r.User.GID)}
		if err := put(hdr, data); err != nil {
			return nil, err
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/:/sbin/nologin\n%s:x:%d:%d:%s engine:/nonexistent:/sbin/nologin\n", r.User.Name, r.User.UID, r.User.GID, p.Image)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", r.User.Name, r.User.GID)
	if err := file("etc/passwd", 0o644, []byte(passwd)); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte(group)); err != nil {
		return nil, err
	}
	for _, f := range r.Files {
		data, err := os.ReadFile(filepath.Join(p.Dir, f.Source))
		if err != nil {
			return nil, fmt.Errorf("pkgbuild: %w", err)
		}
		if err := file(f.Path, 0o644, data); err != nil {
			return nil, err
		}
	}
	for _, l := range r.Links {
		if err := put(tar.Header{Typeflag: tar.TypeSymlink, Name: l, Linkname: "/" + r.Binary, Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	for _, d := range r.Dirs {
		if _, ok := entries[d+"/"]; !ok {
			if err := put(tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}, nil); err != nil {
				return nil, err
			}
		}
	}

	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	// A path is a directory or something else, never both: a file or link
	// that is also a directory (or the parent of an entry) would be read
	// differently by different runtimes.
	for _, n := range names {
		if e := entries[n]; e.hdr.Typeflag != tar.TypeDir {
			if _, ok := entries[n+"/"]; ok {
				return nil, fmt.Errorf("pkgbuild: /%s is both a directory and a file or link in the image", n)
			}
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = epoch
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("pkgbuild: layer: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("pkgbuild: layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pkgbuild: layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// assemble makes the OCI image of one layer from scratch.
func assemble(p *Package, layer v1.Layer, arch string, epoch time.Time, auditJSON []byte) (v1.Image, error) {
	label, err := p.Config.Label()
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: label: %w", err)
	}
	// The package's annotations, and the label LinuxKit reads (parse
	// refuses an annotation of that name).
	labels := map[string]string{imageconfig.LabelKey: string(label)}
	for k, v := range p.Annotations {
		labels[k] = v
	}
	if auditJSON != nil {
		labels[audit.Label] = string(auditJSON)
	}
	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint: []string{"/" + p.Recipe.Binary},
			Cmd:        p.Recipe.Cmd,
			Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "dyad pkg build " + p.Image},
	})
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	if _, err := img.Digest(); err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	return img, nil
}

// ImageSizes are an image's sizes.
type ImageSizes struct {
	// Compressed is what a registry stores and sends: manifest, config
	// and compressed layers.
	Compressed int64
	// Uncompressed is the sum of the layers' tarballs.
	Uncompressed int64
}

// Sizes measures img.
func Sizes(img v1.Image) (ImageSizes, error) {
	var s ImageSizes
	m, err := img.RawManifest()
	if err != nil {
		return s, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return s, err
	}
	s.Compressed = int64(len(m) + len(cfg))
	layers, err := img.Layers()
	if err != nil {
		return s, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return s, err
		}
		s.Compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return s, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return s, err
		}
		s.Uncompressed += u
	}
	return s, nil
}
