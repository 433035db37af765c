package pkgbuild

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// kernelVersionRE is a kernel release as /lib/modules names it.
var kernelVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9._+-]*$`)

// kernel puts in the layer what LinuxKit reads from a kernel image: the
// kernel as /kernel, its modules with depmod's indexes as /kernel.tar
// (lib/modules/VERSION/...), /System.map and /config.
func (b *builder) kernel(ctx context.Context, epoch time.Time) error {
	name := b.p.Recipe.Kernel
	pkg, err := fetchDeb(ctx, "KERNEL", name, b.tmp, b.opt.downloads)
	if err != nil {
		return err
	}
	b.labels[DebLabel] = pkg.String()
	fail := func(err error) error { return fmt.Errorf("pkgbuild: KERNEL %s (%s): %w", name, pkg, err) }
	version, err := kernelVersion(pkg.Root)
	if err != nil {
		return fail(err)
	}
	if err := depmod(ctx, pkg.Root, version, b.tmp); err != nil {
		return fail(err)
	}
	modules, err := moduleTree(pkg.Root, version)
	if err != nil {
		return fail(err)
	}
	data, err := modules.tar(epoch)
	if err != nil {
		return fail(err)
	}
	if err := b.files.file("kernel.tar", 0o644, data); err != nil {
		return err
	}
	for _, f := range []struct{ src, dst string }{
		{"vmlinuz-", "kernel"},
		{"System.map-", "System.map"},
		{"config-", "config"},
	} {
		data, err := os.ReadFile(filepath.Join(pkg.Root, "boot", f.src+version))
		if err != nil {
			return fail(err)
		}
		if f.dst == "kernel" {
			b.size = int64(len(data))
		}
		if err := b.files.file(f.dst, 0o644, data); err != nil {
			return err
		}
	}
	return nil
}

// kernelVersion is the release of the one kernel in an unpacked package,
// read from its /boot/vmlinuz-VERSION.
func kernelVersion(root string) (string, error) {
	kernels, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return "", err
	}
	switch len(kernels) {
	case 0:
		return "", errors.New("no /boot/vmlinuz-*: not a kernel package")
	case 1:
	default:
		return "", fmt.Errorf("%d kernels in /boot, want one", len(kernels))
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	if !kernelVersionRE.MatchString(version) {
		return "", fmt.Errorf("/boot/vmlinuz-%s: not a kernel release", version)
	}
	fi, err := os.Stat(filepath.Join(root, "lib", "modules", version))
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("no /lib/modules/%s for /boot/vmlinuz-%s", version, version)
	}
	return version, nil
}

// depmod writes the module indexes (modules.dep, modules.alias, their
// .bin forms, ...) into the unpacked package, with Debian's kmod. An empty
// configuration directory keeps the host's depmod.d out of them.
func depmod(ctx context.Context, root, version, tmp string) error {
	bin, err := findDepmod()
	if err != nil {
		return err
	}
	conf, err := os.MkdirTemp(tmp, "depmod.d-")
	if err != nil {
		return err
	}
	_, err = command(ctx, toolTimeout, "", bin, "-a", "-C", conf, "-b", root, version)
	return err
}

// findDepmod finds depmod, on PATH or in the sbin directories a user's
// PATH often lacks.
func findDepmod() (string, error) {
	if p, err := exec.LookPath("depmod"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/depmod", "/sbin/depmod"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("depmod not found: install Debian's kmod")
}

// moduleTree is lib/modules/VERSION of an unpacked package: directories,
// files and links as they are there, each keeping its mode.
func moduleTree(root, version string) (*tree, error) {
	t := newTree()
	top := filepath.Join(root, "lib", "modules", version)
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return t.dir(name, tarMode(fi.Mode()))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return t.symlink(name, target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return t.file(name, tarMode(fi.Mode()), data)
		default:
			return fmt.Errorf("/%s: not a file, directory or link (%v)", path.Clean(name), fi.Mode())
		}
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
