package initd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
)

// mountInfo returns the line of /proc/self/mountinfo for mount point p.
func mountInfo(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	line := ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == p {
			line = l // the last one: the mount on top
		}
	}
	if line == "" {
		t.Fatalf("%s is not a mount point", p)
	}
	return line
}

// TestPrepare applies a runtime.json as the assembler writes them (an
// overlay root: tmpfs, the propagation change, the overlay) plus an
// image's own mounts, under a temporary root.
func TestPrepare(t *testing.T) {
	root := mountTmpfs(t)
	// Shared, as "/" is in the VM: the tmpfs under the overlay must come
	// out private all the same.
	if err := unix.Mount("", root, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	const b = "/containers/onboot/000-dhcpcd"
	bundleDir := filepath.Join(root, b)
	writeFile(t, filepath.Join(bundleDir, "lower/etc/hello"), "from the image\n", 0o644)
	writeFile(t, filepath.Join(root, "etc/dyad/dhcp.yaml"), "iface: eth0\n", 0o644)
	writeFile(t, filepath.Join(root, "var/data/file"), "host data\n", 0o644)
	for _, d := range []string{"rootfs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(bundleDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(bundleDir, "runtime.json"), `{
    "mounts": [
        {"destination": "`+b+`/tmp", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "`+b+`/tmp", "options": ["remount", "private"]},
        {"destination": "`+b+`/rootfs", "type": "overlay", "source": "overlay",
         "options": ["lowerdir=`+b+`/lower", "upperdir=`+b+`/tmp/upper", "workdir=`+b+`/tmp/work"]},
        {"destination": "data", "type": "bind", "source": "/var/data", "options": ["rbind", "ro"]},
        {"destination": "etc/dyad/dhcp.yaml", "source": "/etc/dyad/dhcp.yaml", "options": ["bind"]}
    ],
    "mkdir": ["/var/lib/dyad/dhcp", "/run/resolvconf"],
    "cgroups": ["dyad/dhcp"],
    "namespace": "services.linuxkit"
}`, 0o644)

	h := &host{root: root, proc: "/proc", cgroup: filepath.Join(root, "sys/fs/cgroup")}
	rt, err := readRuntime(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.prepare(bundleDir, rt); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(bundleDir, "rootfs")
	t.Cleanup(func() {
		for _, p := range []string{"etc/dyad/dhcp.yaml", "data", ""} {
			_ = unix.Unmount(filepath.Join(rootfs, p), unix.MNT_DETACH)
		}
		_ = unix.Unmount(filepath.Join(bundleDir, "tmp"), unix.MNT_DETACH)
	})

	// The overlay: the image's files, writes going to the tmpfs.
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/hello")); err != nil || string(b) != "from the image\n" {
		t.Errorf("rootfs/etc/hello: %q, %v", b, err)
	}
	writeFile(t, filepath.Join(rootfs, "written"), "x", 0o644)
	if _, err := os.Stat(filepath.Join(bundleDir, "tmp/upper/written")); err != nil {
		t.Errorf("a write to the overlay is not in the upper directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bundleDir, "lower/written")); err == nil {
		t.Error("a write to the overlay reached the image's lower directory")
	}
	if mi := mountInfo(t, rootfs); !strings.Contains(mi, " - overlay ") {
		t.Errorf("rootfs: %s", mi)
	}
	if mi := mountInfo(t, filepath.Join(bundleDir, "tmp")); !strings.Contains(mi, " - tmpfs ") || strings.Contains(mi, "shared:") {
		t.Errorf("tmp is not a private tmpfs: %s", mi)
	}

	// A relative destination lies in the rootfs; "ro" holds on a bind.
	if b, err := os.ReadFile(filepath.Join(rootfs, "data/file")); err != nil || string(b) != "host data\n" {
		t.Errorf("rootfs/data/file: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data/new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing to a read-only bind: %v, want EROFS", err)
	}
	// A file bound onto a file.
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/dyad/dhcp.yaml")); err != nil || string(b) != "iface: eth0\n" {
		t.Errorf("rootfs/etc/dyad/dhcp.yaml: %q, %v", b, err)
	}
	for _, d := range []string{"var/lib/dyad/dhcp", "run/resolvconf", "sys/fs/cgroup/dyad/dhcp"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want a directory 0755", d, fi, err)
		}
	}
}

func TestPrepareErrors(t *testing.T) {
	root := mountTmpfs(t)
	h := &host{root: root, proc: "/proc", cgroup: filepath.Join(root, "sys/fs/cgroup")}
	for _, tc := range []struct {
		name, json, want string
	}{
		{"unknown field", `{"mount": []}`, "unknown field"},
		{"trailing data", `{} {}`, "trailing"},
		{"unknown file system", `{"mounts": [{"destination": "/x", "type": "nosuchfs", "source": "none"}]}`, "mount nosuchfs on " + root + "/x"},
		{"missing bind source", `{"mounts": [{"destination": "/x", "source": "/nonexistent", "options": ["bind"]}]}`, "/nonexistent"},
		{"cgroup outside", `{"cgroups": ["../../etc"]}`, "not a cgroup name"},
	} {
		dir := filepath.Join(root, "bundles", strings.ReplaceAll(tc.name, " ", "-"))
		writeFile(t, filepath.Join(dir, "runtime.json"), tc.json, 0o644)
		rt, err := readRuntime(dir)
		if err == nil {
			err = h.prepare(dir, rt)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// No runtime.json: nothing to do.
	if rt, err := readRuntime(filepath.Join(root, "none")); err != nil || rt.Mounts != nil {
		t.Errorf("no runtime.json: %+v, %v", rt, err)
	}
}

func TestBindNamespaces(t *testing.T) {
	root := mountTmpfs(t)
	h := &host{root: root, proc: "/proc"}
	net, uts := "/run/netns/dhcp", "/run/uts/dhcp"
	ns := &imageconfig.Namespaces{Net: &net, Uts: &uts}
	// Twice, as for a restarted service: the second replaces the first.
	for range 2 {
		if err := h.bindNamespaces(os.Getpid(), ns); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range []string{net, uts} {
			for range 2 {
				_ = unix.Unmount(filepath.Join(root, p), unix.MNT_DETACH)
			}
		}
	})
	for kind, p := range map[string]string{"net": net, "uts": uts} {
		want, err := os.Readlink(filepath.Join("/proc/self/ns", kind))
		if err != nil {
			t.Fatal(err)
		}
		var a, b unix.Stat_t
		if err := unix.Stat(filepath.Join(root, p), &a); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(filepath.Join("/proc/self/ns", kind), &b); err != nil {
			t.Fatal(err)
		}
		if a.Ino != b.Ino || a.Dev != b.Dev {
			t.Errorf("%s is not %s", p, want)
		}
		if n := strings.Count(mountsAt(t, filepath.Join(root, p)), "\n"); n != 1 {
			t.Errorf("%s: %d mounts, want 1", p, n)
		}
	}
}

// mountsAt returns the lines of /proc/self/mountinfo for mount point p.
func mountsAt(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == p {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}
