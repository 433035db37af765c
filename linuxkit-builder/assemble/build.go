// Package assemble builds a bootable system from a LinuxKit YAML file, as
// LinuxKit's build does: the kernel from the kernel image, a root file
// system made of the init images, one OCI bundle per container (the
// layout LinuxKit's init runs: containers/onboot/NNN-name,
// containers/onshutdown/NNN-name, containers/services/name, each with
// config.json, runtime.json and its root) and the files section; then
// writes it as kernel+initrd or as a tar, the same bytes from the same
// inputs.
package assemble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/lkfile"
)

// Source finds images.
type Source interface {
	// Image returns the image ref names, from a cache or a registry.
	Image(ctx context.Context, ref string) (v1.Image, error)
}

// Options tune a build.
type Options struct {
	Source Source
	// Package resolves an @pkg: directory to the reference of the image
	// its build.yml builds.
	Package func(ctx context.Context, dir string) (string, error)
	// DryRun validates and plans without the images it cannot get: a
	// container whose image is missing is planned from the YAML alone.
	DryRun bool
	// Log receives one line per step.
	Log io.Writer
}

// Result is a built system.
type Result struct {
	Kernel  []byte
	Cmdline string
	// UCode is a microcode cpio to put before the initrd, if any.
	UCode []byte
	Tree  *Tree
	// Plan says what went where, one line each.
	Plan []string
}

// Epoch is the time every file of an output carries, so that the same
// inputs make the same bytes.
var Epoch = time.Unix(0, 0).UTC()

// errNotFetched marks an image a dry run could not get.
var errNotFetched = errors.New("not fetched")

// Build assembles f.
func Build(ctx context.Context, f *lkfile.File, opt Options) (*Result, error) {
	b := &builder{opt: opt, res: &Result{Tree: NewTree(), Cmdline: f.Kernel.Cmdline}, firstRoot: map[string]string{}}
	if err := b.kernel(ctx, f.Kernel); err != nil {
		return nil, err
	}
	for i, ref := range f.Init {
		if err := b.init(ctx, ref, f.InitDirs[i]); err != nil {
			return nil, fmt.Errorf("init[%d] %s: %w", i, ref, err)
		}
	}
	// The kernel opens the console for the init before anything is
	// mounted.
	if err := b.res.Tree.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return nil, err
	}
	for _, v := range f.Volumes {
		if err := b.volume(ctx, v); err != nil {
			return nil, fmt.Errorf("%s: volume %s: %w", v.Pos, v.Name, err)
		}
	}
	for _, sec := range []struct {
		dir      string
		list     []*lkfile.Image
		numbered bool
	}{{"onboot", f.Onboot, true}, {"onshutdown", f.Onshutdown, true}, {"services", f.Services, false}} {
		for i, img := range sec.list {
			name := img.Name
			if sec.numbered {
				name = fmt.Sprintf("%03d-%s", i, img.Name)
			}
			if err := b.container(ctx, path.Join("containers", sec.dir, name), img); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", img.Pos, img.Name, err)
			}
		}
	}
	for _, fe := range f.Files {
		if err := b.file(f, fe); err != nil {
			return nil, fmt.Errorf("%s: %w", fe.Pos, err)
		}
	}
	return b.res, nil
}

type builder struct {
	opt Options
	res *Result
	// firstRoot maps an image digest to where its read-only root was
	// unpacked first: later containers of the same image share it.
	firstRoot map[string]string
}

func (b *builder) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	b.res.Plan = append(b.res.Plan, line)
	if b.opt.Log != nil {
		fmt.Fprintln(b.opt.Log, line)
	}
}

// image resolves ref (an @pkg: directory too) and gets the image.
func (b *builder) image(ctx context.Context, ref, dir string) (string, v1.Image, error) {
	if pkg, ok := strings.CutPrefix(ref, lkfile.PkgPrefix); ok {
		if b.opt.Package == nil {
			return ref, nil, fmt.Errorf("%s: no package resolver", ref)
		}
		if !filepath.IsAbs(pkg) {
			pkg = filepath.Join(dir, pkg)
		}
		r, err := b.opt.Package(ctx, pkg)
		if err != nil {
			return ref, nil, err
		}
		ref = r
	}
	img, err := b.opt.Source.Image(ctx, ref)
	if err != nil {
		if b.opt.DryRun {
			return ref, nil, fmt.Errorf("%w: %v", errNotFetched, err)
		}
		return ref, nil, err
	}
	return ref, img, nil
}

func (b *builder) kernel(ctx context.Context, k lkfile.Kernel) error {
	if k.Image == "" {
		return errors.New("the kernel section names no image")
	}
	ref, img, err := b.image(ctx, k.Image, k.Dir)
	if errors.Is(err, errNotFetched) {
		b.logf("kernel %s: not fetched (dry run)", ref)
		return nil
	}
	if err != nil {
		return fmt.Errorf("kernel %s: %w", k.Image, err)
	}
	files := NewTree()
	if err := unpack(files, "", img, true); err != nil {
		return fmt.Errorf("kernel %s: %w", ref, err)
	}
	binary := k.Binary
	if binary == "" {
		binary = "kernel"
	}
	kernel, ok := files.Lookup(binary)
	if !ok {
		return fmt.Errorf("kernel %s: the image has no file %s", ref, binary)
	}
	b.res.Kernel = kernel
	tarName := "kernel.tar"
	if k.Tar != nil {
		tarName = *k.Tar
	}
	if tarName != "none" {
		tb, ok := files.Lookup(tarName)
		if !ok {
			return fmt.Errorf("kernel %s: the image has no %s (set tar: none if it has no modules)", ref, tarName)
		}
		if err := b.res.Tree.AddTar("", bytes.NewReader(tb), nil); err != nil {
			return fmt.Errorf("kernel %s: %s: %w", ref, tarName, err)
		}
	}
	if k.UCode != nil {
		uc, ok := files.Lookup(*k.UCode)
		if !ok {
			return fmt.Errorf("kernel %s: the image has no %s", ref, *k.UCode)
		}
		b.res.UCode = uc
	}
	b.logf("kernel %s: %d bytes, modules from %s", ref, len(kernel), tarName)
	return nil
}

func (b *builder) init(ctx context.Context, ref, dir string) error {
	ref, img, err := b.image(ctx, ref, dir)
	if errors.Is(err, errNotFetched) {
		b.logf("init %s: not fetched (dry run)", ref)
		return nil
	}
	if err != nil {
		return err
	}
	if err := unpack(b.res.Tree, "", img, true); err != nil {
		return err
	}
	b.logf("init %s", ref)
	return nil
}

func (b *builder) volume(ctx context.Context, v *lkfile.Volume) error {
	dir := path.Join("containers", "volumes", v.Name, "lower")
	if err := b.res.Tree.Dir(dir, 0o755, 0, 0); err != nil {
		return err
	}
	if v.Image == "" {
		b.logf("volume %s: empty", v.Name)
		return nil
	}
	ref, img, err := b.image(ctx, v.Image, v.Dir)
	if errors.Is(err, errNotFetched) {
		b.logf("volume %s: %s not fetched (dry run)", v.Name, ref)
		return nil
	}
	if err != nil {
		return err
	}
	if err := unpack(b.res.Tree, dir, img, false); err != nil {
		return err
	}
	b.logf("volume %s: %s", v.Name, ref)
	return nil
}

// container writes the bundle of one container at dir.
func (b *builder) container(ctx context.Context, dir string, img *lkfile.Image) error {
	ref, image, err := b.image(ctx, img.Image, img.Dir)
	fetched := true
	switch {
	case errors.Is(err, errNotFetched):
		fetched = false
	case err != nil:
		return err
	}
	var label imageconfig.Config
	var defaults lkfile.ImageDefaults
	var digest string
	if fetched {
		cf, err := image.ConfigFile()
		if err != nil {
			return fmt.Errorf("%s: config: %w", ref, err)
		}
		if l := cf.Config.Labels[imageconfig.LabelKey]; l != "" {
			if label, err = imageconfig.ParseLabel([]byte(l)); err != nil {
				return fmt.Errorf("%s: %w", ref, err)
			}
		}
		defaults = lkfile.ImageDefaults{
			Args: append(append([]string(nil), cf.Config.Entrypoint...), cf.Config.Cmd...),
			Env:  cf.Config.Env,
			Cwd:  cf.Config.WorkingDir,
		}
		d, err := image.Digest()
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		digest = d.String()
	}
	readonly := img.ReadonlyRoot(label)
	root := path.Join(dir, "rootfs")
	if !readonly {
		root = path.Join(dir, "lower")
	}
	shared, seen := b.firstRoot[digest]
	switch {
	case !fetched:
	case seen:
		root = shared
	default:
		if err := unpack(b.res.Tree, root, image, false); err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		b.firstRoot[digest] = root
	}
	var users, groups map[string]uint32
	if fetched {
		users, groups = ids(b.res.Tree, root)
	}
	spec, rt, err := lkfile.Spec(img, label, defaults, lkfile.IDs{Users: users, Groups: groups})
	if err != nil {
		return err
	}
	volumeBinds(spec)
	*rt.Mounts = append(rootMounts(dir, root, readonly), *rt.Mounts...)

	config, err := json.MarshalIndent(spec, "", "    ")
	if err != nil {
		return err
	}
	runtime, err := json.MarshalIndent(rt, "", "    ")
	if err != nil {
		return err
	}
	t := b.res.Tree
	for _, d := range []string{dir, path.Join(dir, "rootfs")} {
		if !t.Has(d) {
			if err := t.Dir(d, 0o755, 0, 0); err != nil {
				return err
			}
		}
	}
	if !readonly {
		if err := t.Dir(path.Join(dir, "tmp"), 0o755, 0, 0); err != nil {
			return err
		}
	}
	if err := t.File(path.Join(dir, "config.json"), config, 0o644, 0, 0); err != nil {
		return err
	}
	if err := t.File(path.Join(dir, "runtime.json"), runtime, 0o644, 0, 0); err != nil {
		return err
	}
	state := "read-only root"
	if !readonly {
		state = "overlay root"
	}
	if !fetched {
		state = "image not fetched (dry run): planned from the YAML alone"
	}
	b.logf("%s: %s, %s, capabilities %s", dir, ref, state, capList(spec.Process.Capabilities.Bounding))
	return nil
}

func capList(caps []string) string {
	if len(caps) == 0 {
		return "none"
	}
	return strings.Join(caps, ",")
}

// rootMounts are what the init mounts before runc runs the bundle at dir:
// a read-only root bound onto rootfs (runc wants a mount point), or an
// overlay of a tmpfs on the image's root.
func rootMounts(dir, root string, readonly bool) []specs.Mount {
	if readonly {
		return []specs.Mount{{Source: "/" + root, Destination: "/" + path.Join(dir, "rootfs"), Options: []string{"bind"}}}
	}
	tmp := "/" + path.Join(dir, "tmp")
	return []specs.Mount{
		{Source: "tmpfs", Type: "tmpfs", Destination: tmp},
		{Destination: tmp, Options: []string{"remount", "private"}},
		{Source: "overlay", Type: "overlay", Destination: "/" + path.Join(dir, "rootfs"), Options: []string{
			"lowerdir=/" + root, "upperdir=" + tmp + "/upper", "workdir=" + tmp + "/work",
		}},
	}
}

// volumeBinds points binds that name a volume at its directory.
func volumeBinds(s *specs.Spec) {
	for i, m := range s.Mounts {
		if m.Type == "bind" && !path.IsAbs(m.Source) {
			s.Mounts[i].Source = "/" + path.Join("containers", "volumes", m.Source, "lower")
		}
	}
}

// file adds an entry of the files section.
func (b *builder) file(f *lkfile.File, fe lkfile.FileEntry) error {
	t := b.res.Tree
	name := strings.TrimPrefix(fe.Path, "/")
	mode := uint32(0o600)
	if fe.Directory {
		mode = 0o700
	}
	if fe.Mode != "" {
		m, err := strconv.ParseUint(fe.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q: %w", fe.Mode, err)
		}
		mode = uint32(m)
	}
	users, groups := ids(t, "")
	uid, err := lkfile.ResolveID(fe.UID, users, "user")
	if err != nil {
		return err
	}
	gid, err := lkfile.ResolveID(fe.GID, groups, "group")
	if err != nil {
		return err
	}
	switch {
	case fe.Directory:
		err = t.Dir(name, mode, uid, gid)
	case fe.Symlink != "":
		err = t.Symlink(name, fe.Symlink)
	case fe.Contents != nil:
		err = t.File(name, []byte(*fe.Contents), mode, uid, gid)
	case fe.Metadata == "yaml":
		var y []byte
		if y, err = f.Marshal(); err == nil {
			err = t.File(name, y, mode, uid, gid)
		}
	case fe.Source != "":
		err = b.source(name, fe, mode, uid, gid)
	default:
		err = errors.New("no contents: give contents, source, symlink, directory or metadata")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", fe.Path, err)
	}
	b.logf("file %s", name)
	return nil
}

// source copies a file of the builder's, or a directory of them, into
// the tree. A relative source is read from the YAML file's directory.
func (b *builder) source(name string, fe lkfile.FileEntry, mode, uid, gid uint32) error {
	src := fe.Source
	if rest, ok := strings.CutPrefix(src, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		src = filepath.Join(home, rest)
	} else if !filepath.IsAbs(src) {
		src = filepath.Join(fe.Dir, src)
	}
	fi, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) && fe.Optional {
		return nil
	}
	if errors.Is(err, os.ErrNotExist) && b.opt.DryRun {
		// A dry run plans: it says what a build would miss, and goes on.
		b.logf("file %s: source %s is missing: a build would fail", name, src)
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if fe.Mode == "" {
			mode = uint32(fi.Mode().Perm())
		}
		return b.res.Tree.File(name, data, mode, uid, gid)
	}
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		dst := path.Join(name, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return b.res.Tree.Dir(dst, uint32(info.Mode().Perm()), uid, gid)
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return b.res.Tree.Symlink(dst, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return b.res.Tree.File(dst, data, uint32(info.Mode().Perm()), uid, gid)
		}
		return fmt.Errorf("%s: only files, directories and symlinks can be copied", p)
	})
}
