package backend

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path, real string) // real: where the content must land
	}{
		{"new file", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "resolv.conf")
			return p, p
		}},
		{"existing file", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "resolv.conf")
			mustWrite(t, p, "old\n", 0o600)
			return p, p
		}},
		{"symbolic link", func(t *testing.T, dir string) (string, string) {
			real := filepath.Join(dir, "run", "resolv.conf")
			if err := os.Mkdir(filepath.Dir(real), 0o755); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, real, "old\n", 0o600)
			p := filepath.Join(dir, "resolv.conf")
			if err := os.Symlink("run/resolv.conf", p); err != nil {
				t.Fatal(err)
			}
			return p, real
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, real := tt.setup(t, dir)
			before := dirNames(t, filepath.Dir(real))
			var oldIno uint64
			if st, err := os.Stat(real); err == nil {
				oldIno = inode(st)
			}

			if err := WriteFile(path, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, path); got != "nameserver 192.0.2.53\n" {
				t.Errorf("content %q", got)
			}
			st, err := os.Stat(real)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != 0o644 {
				t.Errorf("mode %v, want 0644", st.Mode())
			}
			if oldIno != 0 && inode(st) == oldIno {
				t.Errorf("same inode: written in place, not replaced")
			}
			if real != path {
				if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("%s is no longer a symbolic link", path)
				}
			}
			after := dirNames(t, filepath.Dir(real))
			if !slices.Equal(after, addName(before, filepath.Base(real))) {
				t.Errorf("directory holds %v, want %v and the file", after, before)
			}
		})
	}
}

func TestWriteFileFailure(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
	}{
		{"missing directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nosuch", "resolv.conf")
		}},
		// The rename fails after the temporary file was written.
		{"target is a directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "resolv.conf")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(p, "keep"), "old\n", 0o644)
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustWrite(t, filepath.Join(dir, "other"), "old\n", 0o644)
			path := tt.setup(t, dir)
			before := dirNames(t, dir)
			err := WriteFile(path, []byte("new\n"), 0o644)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("WriteFile = %v, want an error naming %s", err, path)
			}
			if after := dirNames(t, dir); !slices.Equal(after, before) {
				t.Errorf("directory holds %v after the failure, want %v", after, before)
			}
		})
	}
}

// TestWriteFileReadOnly writes into a directory on a read-only mount,
// which stops root where permission bits would not.
func TestWriteFileReadOnly(t *testing.T) {
	enterNamespaces(t, unix.CLONE_NEWNS)
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "resolv.conf")
	mustWrite(t, path, "old\n", 0o644)
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}

	if err := WriteFile(path, []byte("new\n"), 0o644); err == nil {
		t.Fatal("WriteFile into a read-only directory succeeded")
	}
	if got := mustRead(t, path); got != "old\n" {
		t.Errorf("content %q after the failure, want the old one", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"resolv.conf"}) {
		t.Errorf("directory holds %v, want only resolv.conf", names)
	}
}

// TestWriteFileBindMount writes to a file bind-mounted over another, as a
// container runtime mounts the host's resolv.conf into a container.
func TestWriteFileBindMount(t *testing.T) {
	enterNamespaces(t, unix.CLONE_NEWNS)
	never := func(string) (bool, error) { return false, nil }
	tests := []struct {
		name        string
		write       func(path string, data []byte, perm os.FileMode) error
		readOnlyDir bool // as a container's /etc often is
	}{
		{"mount point detected", WriteFile, false},
		{"mount point detected, read-only directory", WriteFile, true},
		{"rename refused with EBUSY", func(path string, data []byte, perm os.FileMode) error {
			return writeFile(path, data, perm, never)
		}, false},
	}
	for _, tt := range tests {
		// No t.Run: subtests run on other threads, outside this mount
		// namespace.
		dir := t.TempDir()
		host := filepath.Join(dir, "host-resolv.conf")
		mustWrite(t, host, "host\n", 0o644)
		etc := filepath.Join(dir, "etc")
		if err := os.Mkdir(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(etc, "resolv.conf")
		mustWrite(t, path, "image\n", 0o644)
		if tt.readOnlyDir {
			if err := unix.Mount(etc, etc, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(etc, unix.MNT_DETACH) })
			if err := unix.Mount("", etc, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Mount(host, path, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })

		if m, err := isMountPoint(path); err != nil || !m {
			t.Fatalf("isMountPoint(%s) = %v, %v; want true", path, m, err)
		}
		if m, err := isMountPoint(host); err != nil || m {
			t.Fatalf("isMountPoint(%s) = %v, %v; want false", host, m, err)
		}
		id := mountID(t, path)

		if err := tt.write(path, []byte("nameserver 192.0.2.53\n"), 0o640); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, p := range []string{path, host} {
			if got := mustRead(t, p); got != "nameserver 192.0.2.53\n" {
				t.Errorf("%s: %s holds %q", tt.name, p, got)
			}
		}
		if st, err := os.Stat(path); err != nil || st.Mode() != 0o640 {
			t.Errorf("%s: mode %v, %v; want 0640", tt.name, st.Mode(), err)
		}
		if got := mountID(t, path); got != id {
			t.Errorf("%s: mount ID %d, was %d: not the same mount", tt.name, got, id)
		}
		if names := dirNames(t, etc); !slices.Equal(names, []string{"resolv.conf"}) {
			t.Errorf("%s: directory holds %v, want only resolv.conf", tt.name, names)
		}
	}
}

func mountID(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		t.Fatal("the kernel reports no mount ID")
	}
	return st.Mnt_id
}

func mustWrite(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirNames lists a directory, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func addName(names []string, name string) []string {
	if !slices.Contains(names, name) {
		names = append(slices.Clone(names), name)
		slices.Sort(names)
	}
	return names
}

func inode(fi os.FileInfo) uint64 {
	return fi.Sys().(*syscall.Stat_t).Ino
}
