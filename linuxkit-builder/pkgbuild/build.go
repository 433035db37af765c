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

// GoBuildFlags are handed to go build for every daemon, and with GO_TAGS
// added for GO_MODULE's program: a static PIE with cgo only for libseccomp
// (linked statically from Debian's libseccomp-dev), no paths and no build
// ids, so that the same source gives the same bytes. The Makefile builds
// bin/ with the same flags.
var GoBuildFlags = []string{
	"-buildmode=pie", "-tags", "netgo,osusergo", "-trimpath", "-buildvcs=false",
	"-ldflags", `-s -w -buildid= -linkmode external -extldflags "-static-pie -Wl,--build-id=none"`,
}

// Labels the build writes, beside the org.mobyproject.config label from
// config: and the audit.
const (
	// GoModuleLabel names the module GO_MODULE built, as MODULE@VERSION.
	GoModuleLabel = "org.dyad.go-module"
	// DebLabel names the Debian package DEB or KERNEL took files from,
	// as PACKAGE=VERSION (what apt-get download takes).
	DebLabel = "org.dyad.deb"
)

// Timeouts of the external commands a build runs.
const (
	goBuildTimeout  = 15 * time.Minute
	downloadTimeout = 10 * time.Minute
	toolTimeout     = 5 * time.Minute
	gitTimeout      = 30 * time.Second
	auditTimeout    = 30 * time.Second
)

// Options tune a build.
type Options struct {
	// Tag overrides the tag (default: build.yml's, else the source's git
	// tree hash, else "dev").
	Tag string
	// Org overrides build.yml's org.
	Org string
	// Log receives the go build command line and its output.
	Log io.Writer
	// downloads is a directory that keeps the Debian packages a build
	// downloads, so that later builds reuse them (the tests set it): a
	// package is fetched again only when no file there has its name,
	// version and the archive's SHA256. Empty: every build downloads into
	// a temporary directory.
	downloads string
}

// Result is a built image.
type Result struct {
	Image v1.Image
	// Ref is ORG/IMAGE:TAG.
	Ref string
	// BinarySize is the size in bytes of the image's program: BINARY's,
	// else the first of DEB_FILES, else the kernel.
	BinarySize int64
}

// Build builds p's image.
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
	epoch, err := buildEpoch()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "dyad-pkg-")
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	b := &builder{p: p, opt: opt, arch: arch, tmp: tmp, files: newTree(), labels: map[string]string{}}
	if p.Recipe.Kernel != "" {
		err = b.kernel(ctx, epoch)
	} else {
		err = b.programs(ctx)
	}
	if err != nil {
		return nil, err
	}
	data, err := b.files.tar(epoch)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("pkgbuild: layer: %w", err)
	}
	img, err := assemble(p, layer, arch, epoch, b.labels)
	if err != nil {
		return nil, err
	}
	return &Result{Image: img, Ref: Ref(ctx, p, opt), BinarySize: b.size}, nil
}

// builder is one build under way: what goes into the layer, and the
// labels that say where it came from.
type builder struct {
	p      *Package
	opt    Options
	arch   string
	tmp    string // removed after the build
	files  *tree
	labels map[string]string
	size   int64 // Result.BinarySize
}

// programs puts in the layer what every image but a kernel's holds: the
// Go binary and its launcher, /etc for the engine's user, the package's
// files and directories, and the files of a Debian package.
func (b *builder) programs(ctx context.Context) error {
	r := b.p.Recipe
	if r.Binary != "" {
		bin, err := b.goProgram(ctx)
		if err != nil {
			return err
		}
		if err := checkBinary(bin, b.arch); err != nil {
			return err
		}
		auditJSON, err := runAudit(ctx, b.p, bin)
		if err != nil {
			return err
		}
		if auditJSON != nil {
			b.labels[audit.Label] = string(auditJSON)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return fmt.Errorf("pkgbuild: %w", err)
		}
		b.size = int64(len(data))
		if err := b.files.file(r.Binary, 0o755, data); err != nil {
			return err
		}
		for _, l := range r.Links {
			if err := b.files.symlink(l, "/"+r.Binary); err != nil {
				return err
			}
		}
	}
	if r.Launcher != nil {
		if err := b.launcher(ctx); err != nil {
			return err
		}
	}
	if r.User.Name != "" {
		if err := b.etc(); err != nil {
			return err
		}
	}
	for _, f := range r.Files {
		src := filepath.Join(b.p.Dir, f.Source)
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("pkgbuild: %w", err)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("pkgbuild: %w", err)
		}
		// Only the execute bit is taken from the source, as git keeps
		// it: the image stays the same whatever the umask of a checkout.
		mode := int64(0o644)
		if fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := b.files.file(f.Path, mode, data); err != nil {
			return err
		}
	}
	if r.Deb != nil {
		if err := b.deb(ctx); err != nil {
			return err
		}
	}
	for _, d := range r.Dirs {
		if _, ok := b.files.entries[d+"/"]; !ok {
			if err := b.files.dir(d, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// goProgram builds BINARY's program, of this module or of GO_MODULE, and
// returns where it is.
func (b *builder) goProgram(ctx context.Context) (string, error) {
	r := b.p.Recipe
	bin := filepath.Join(b.tmp, path.Base(r.Binary))
	if m := r.GoModule; m != nil {
		if err := goModuleBuild(ctx, m, b.tmp, bin, b.arch, b.opt.Log); err != nil {
			return "", err
		}
		b.labels[GoModuleLabel] = m.Path + "@" + m.Version
		return bin, nil
	}
	root, err := moduleRoot(b.p.Dir)
	if err != nil {
		return "", err
	}
	return bin, goBuild(ctx, root, r.GoPackage, bin, b.arch, b.opt.Log)
}

// launcher builds LAUNCHER's program into the layer.
func (b *builder) launcher(ctx context.Context) error {
	r := b.p.Recipe
	root, err := moduleRoot(b.p.Dir)
	if err != nil {
		return err
	}
	bin := filepath.Join(b.tmp, "launcher")
	if err := goBuild(ctx, root, r.Launcher.GoPackage, bin, b.arch, b.opt.Log); err != nil {
		return err
	}
	if err := checkBinary(bin, b.arch); err != nil {
		return err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("pkgbuild: %w", err)
	}
	// The one file not root's: set-user-ID and set-group-ID to the
	// engine's user, so that running it gives that user and nothing
	// more.
	hdr := tar.Header{Typeflag: tar.TypeReg, Name: r.Launcher.Path, Mode: 0o6755, Size: int64(len(data)),
		Uid: int(r.User.UID), Gid: int(r.User.GID)}
	return b.files.put(hdr, data)
}

// etc writes a minimal /etc naming root and the engine's user.
func (b *builder) etc() error {
	u := b.p.Recipe.User
	passwd := fmt.Sprintf("root:x:0:0:root:/:/sbin/nologin\n%s:x:%d:%d:%s engine:/nonexistent:/sbin/nologin\n", u.Name, u.UID, u.GID, b.p.Image)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", u.Name, u.GID)
	if err := b.files.file("etc/passwd", 0o644, []byte(passwd)); err != nil {
		return err
	}
	return b.files.file("etc/group", 0o644, []byte(group))
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

// goEnv is the environment of go build: the caller's, with what would
// change the binary's bytes pinned.
func goEnv(arch string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(buildEnvDropped, k) {
			env = append(env, kv)
		}
	}
	return append(env, "CGO_ENABLED=1", "GOOS=linux", "GOARCH="+arch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=")
}

func goBuild(ctx context.Context, root, pkg, out, arch string, log io.Writer) error {
	args := append([]string{"build"}, GoBuildFlags...)
	args = append(args, "-o", out, pkg)
	return runGoBuild(ctx, root, goEnv(arch), args, log)
}

// runGoBuild runs go with args in dir, logging the command and its output.
func runGoBuild(ctx context.Context, dir string, env, args []string, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, goBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
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
		return fmt.Errorf("pkgbuild: go build %s (in %s): %w\n%s", args[len(args)-1], dir, err, output.Bytes())
	}
	return nil
}

// command runs name with args, bounded by timeout, in a C locale (so that
// what it prints does not depend on the caller's), and returns its
// standard output; its error carries what it wrote to standard error.
func command(ctx context.Context, timeout time.Duration, dir, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (gave up after %v)", err, timeout)
		}
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// runAudit runs the built binary with the recipe's AUDIT arguments and
// returns what it says as compact JSON, after checking that it reads as an
// audit and names the engine user the image's /etc/passwd does.
func runAudit(ctx context.Context, p *Package, bin string) ([]byte, error) {
	if len(p.Recipe.Audit) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
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
	return checkELF(f, bin, arch)
}

// checkELF is checkBinary for an ELF file already open.
func checkELF(f *elf.File, name, arch string) error {
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("pkgbuild: %s is for %v, not %s", name, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("pkgbuild: %s is dynamically linked (it has an interpreter)", name)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("pkgbuild: %s: %w", name, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("pkgbuild: %s needs shared libraries %v", name, libs)
	}
	return nil
}

// sourceTag names the source: the git tree hash of the module, marked
// dirty when the work tree has changes, or "dev" outside git.
func sourceTag(ctx context.Context, root string) string {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
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

// assemble makes the OCI image of one layer from scratch, with the
// package's annotations and config: as labels, and the build's (which
// Parse refuses as annotations).
func assemble(p *Package, layer v1.Layer, arch string, epoch time.Time, built map[string]string) (v1.Image, error) {
	labels := map[string]string{}
	for k, v := range p.Annotations {
		labels[k] = v
	}
	for k, v := range built {
		labels[k] = v
	}
	if p.hasConfig {
		label, err := p.Config.Label()
		if err != nil {
			return nil, fmt.Errorf("pkgbuild: label: %w", err)
		}
		labels[imageconfig.LabelKey] = string(label)
	}
	var entrypoint []string
	if p.Recipe.Binary != "" {
		entrypoint = []string{"/" + p.Recipe.Binary}
	}
	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint: entrypoint,
			Cmd:        p.Recipe.Cmd,
			Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, cfg)
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
