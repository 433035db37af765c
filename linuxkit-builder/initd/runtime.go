package initd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/jsonstrict"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// host is the machine that bundles' runtime.json describe: absolute paths
// in them lie under root ("/" in the VM, a temporary directory in tests),
// pids under proc, cgroups under cgroup.
type host struct {
	root    string
	proc    string
	cgroup  string
	mounter mounter
}

// path maps an absolute path of a runtime.json onto the host.
func (h *host) path(p string) string { return filepath.Join(h.root, p) }

// readRuntime reads a bundle's runtime.json; a bundle without one has
// nothing done around it.
func readRuntime(bundleDir string) (imageconfig.Runtime, error) {
	var rt imageconfig.Runtime
	name := filepath.Join(bundleDir, "runtime.json")
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return rt, nil
	}
	if err != nil {
		return rt, err
	}
	if err := jsonstrict.Decode(b, &rt); err != nil {
		return rt, fmt.Errorf("%s: %w", name, err)
	}
	return rt, nil
}

func deref[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}

// prepare does what runtime.json asks before the container is created,
// in LinuxKit's order: the mounts (first those of the bundle's root, then
// the image's own), then the directories, then the cgroups.
func (h *host) prepare(bundleDir string, rt imageconfig.Runtime) error {
	rootfs := filepath.Join(bundleDir, "rootfs")
	for _, m := range deref(rt.Mounts) {
		if err := h.applyMount(rootfs, m); err != nil {
			return err
		}
	}
	for _, d := range deref(rt.Mkdir) {
		if err := os.MkdirAll(h.path(d), 0o755); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	for _, cg := range deref(rt.Cgroups) {
		if cg == "" || strings.Contains(cg, "..") {
			return fmt.Errorf("cgroup %q: not a cgroup name", cg)
		}
		if err := os.MkdirAll(filepath.Join(h.cgroup, cg), 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	return nil
}

// applyMount makes one mount of runtime.json. A destination that is not
// absolute lies in the bundle's rootfs; the source of a bind and the
// directories of an overlay are host paths.
func (h *host) applyMount(rootfs string, m specs.Mount) error {
	dst := m.Destination
	if filepath.IsAbs(dst) {
		dst = h.path(dst)
	} else {
		dst = filepath.Join(rootfs, dst)
	}
	o := parseMountOptions(m.Options)
	fstype, src := m.Type, m.Source
	if fstype == "bind" {
		fstype = ""
		o.flags |= unix.MS_BIND
	}
	bind := o.flags&unix.MS_BIND != 0
	switch {
	case bind:
		src = h.path(src)
	case src == "":
		src = fstype
	}
	if fstype == "overlay" {
		data, err := h.overlayData(o.data)
		if err != nil {
			return fmt.Errorf("mount overlay on %s: %w", dst, err)
		}
		o.data = data
	}
	if !o.propagationOnly(fstype) && o.flags&unix.MS_REMOUNT == 0 {
		if err := makeMountPoint(src, dst, bind); err != nil {
			return err
		}
	}
	return h.mounter.mountWith(src, dst, fstype, o)
}

// overlayData maps the directories of an overlay's options onto the host
// and creates its upper and work directories: they live on the tmpfs
// mounted just before, which starts empty.
func (h *host) overlayData(data []string) ([]string, error) {
	out := make([]string, 0, len(data))
	for _, opt := range data {
		key, val, ok := strings.Cut(opt, "=")
		switch {
		case ok && key == "lowerdir":
			dirs := strings.Split(val, ":")
			for i, d := range dirs {
				dirs[i] = h.path(d)
			}
			opt = key + "=" + strings.Join(dirs, ":")
		case ok && (key == "upperdir" || key == "workdir"):
			d := h.path(val)
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
			opt = key + "=" + d
		}
		out = append(out, opt)
	}
	return out, nil
}

// makeMountPoint creates what a mount needs at dst: a file when a file is
// bound there, a directory otherwise.
func makeMountPoint(src, dst string, bind bool) error {
	if bind {
		if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
			return touch(dst)
		}
	}
	return os.MkdirAll(dst, 0o755)
}

// touch makes an empty file at name, and its parents, unless it exists:
// a mount point for a file.
func touch(name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// bindNamespaces binds the namespaces of process pid at the paths
// runtime.json names, for other containers to join. A path bound before
// (by an earlier run of a restarted service) is unbound first.
func (h *host) bindNamespaces(pid int, ns *imageconfig.Namespaces) error {
	if ns == nil {
		return nil
	}
	for _, b := range []struct {
		kind string
		path *string
	}{
		{"cgroup", ns.Cgroup}, {"ipc", ns.Ipc}, {"mnt", ns.Mnt}, {"net", ns.Net},
		{"pid", ns.Pid}, {"user", ns.User}, {"uts", ns.Uts},
	} {
		if b.path == nil || *b.path == "" {
			continue
		}
		target := h.path(*b.path)
		if err := touch(target); err != nil {
			return fmt.Errorf("bindNS %s: %w", b.kind, err)
		}
		// EINVAL when nothing is bound there; never through a link.
		_ = unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		src := filepath.Join(h.proc, strconv.Itoa(pid), "ns", b.kind)
		if err := h.mounter.mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bindNS %s: %w", b.kind, err)
		}
	}
	return nil
}
