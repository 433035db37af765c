package initd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/internal/testnet"
)

// mountTmpfs mounts a tmpfs on a new temporary directory, in the test's
// private mount namespace, and unmounts it at the end.
func mountTmpfs(t *testing.T) string {
	t.Helper()
	testnet.RequireIsolated(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

// TestCopyTree copies a root like the initramfs's into a tmpfs and checks
// that everything an image relies on survived: types, hard links, owners,
// setuid, setgid and sticky bits, device numbers and times; and that a
// mount inside it was left alone.
func TestCopyTree(t *testing.T) {
	src, dst := mountTmpfs(t), mountTmpfs(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

	type entry struct {
		path   string
		mode   uint32 // with the type
		uid    int
		gid    int
		rdev   uint64
		target string // of a symbolic link
		data   string
	}
	entries := []entry{
		{path: "bin", mode: unix.S_IFDIR | 0o755},
		{path: "bin/helper", mode: unix.S_IFREG | 0o4755, data: "#!/bin/sh\n"},         // setuid root
		{path: "bin/group-helper", mode: unix.S_IFREG | 0o2711, gid: 42, data: "sgid"}, // setgid, owner kept
		{path: "etc", mode: unix.S_IFDIR | 0o750, uid: 1000, gid: 1000},
		{path: "etc/hostname", mode: unix.S_IFREG | 0o640, uid: 1000, gid: 1000, data: "vm\n"},
		{path: "tmp", mode: unix.S_IFDIR | 0o1777},
		{path: "usr", mode: unix.S_IFDIR | 0o555},
		{path: "usr/link", mode: unix.S_IFLNK | 0o777, target: "../bin/helper"},
		{path: "usr/dangling", mode: unix.S_IFLNK | 0o777, target: "/nonexistent"},
		{path: "dev", mode: unix.S_IFDIR | 0o755},
		{path: "dev/console", mode: unix.S_IFCHR | 0o600, rdev: unix.Mkdev(5, 1)},
		{path: "dev/vda", mode: unix.S_IFBLK | 0o660, gid: 6, rdev: unix.Mkdev(254, 0)},
		{path: "dev/fifo", mode: unix.S_IFIFO | 0o620},
		{path: "dev/sock", mode: unix.S_IFSOCK | 0o755},
		{path: "empty", mode: unix.S_IFREG | 0o644},
	}
	for _, e := range entries {
		p := filepath.Join(src, e.path)
		var err error
		switch e.mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = os.Mkdir(p, 0o700)
		case unix.S_IFREG:
			err = os.WriteFile(p, []byte(e.data), 0o600)
		case unix.S_IFLNK:
			err = os.Symlink(e.target, p)
		default:
			err = unix.Mknod(p, e.mode, int(e.rdev))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Owners first, then modes (chown clears setuid), then times, the
	// directories' last.
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		p := filepath.Join(src, e.path)
		if err := os.Lchown(p, e.uid, e.gid); err != nil {
			t.Fatal(err)
		}
		if e.mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Chmod(p, e.mode&0o7777); err != nil {
				t.Fatal(err)
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	// A hard link, and a file system mounted inside the tree.
	if err := os.Link(filepath.Join(src, "bin/helper"), filepath.Join(src, "usr/helper-too")); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(src, "proc")
	if err := os.Mkdir(mnt, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	writeFile(t, filepath.Join(mnt, "inner"), "not part of the root", 0o644)

	stats, err := copyTree(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Entries != len(entries)+1 {
		t.Errorf("copied %d entries, want %d", stats.Entries, len(entries)+1)
	}

	for _, e := range entries {
		p := filepath.Join(dst, e.path)
		st := lstat(t, p)
		if st.Mode != e.mode || int(st.Uid) != e.uid || int(st.Gid) != e.gid {
			t.Errorf("%s: mode %#o owner %d:%d, want %#o %d:%d", e.path, st.Mode, st.Uid, st.Gid, e.mode, e.uid, e.gid)
		}
		if e.rdev != 0 && st.Rdev != e.rdev {
			t.Errorf("%s: device %#x, want %#x", e.path, st.Rdev, e.rdev)
		}
		// usr got the hard link after its time was set.
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mtime) && e.path != "usr" {
			t.Errorf("%s: mtime %v, want %v", e.path, got, mtime)
		}
		switch e.mode & unix.S_IFMT {
		case unix.S_IFREG:
			if b, err := os.ReadFile(p); err != nil || string(b) != e.data {
				t.Errorf("%s: contents %q, %v; want %q", e.path, b, err, e.data)
			}
		case unix.S_IFLNK:
			if got, err := os.Readlink(p); err != nil || got != e.target {
				t.Errorf("%s: link to %q, %v; want %q", e.path, got, err, e.target)
			}
		}
	}
	a, b := lstat(t, filepath.Join(dst, "bin/helper")), lstat(t, filepath.Join(dst, "usr/helper-too"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d and %d, %d links; want one inode with 2", a.Ino, b.Ino, a.Nlink)
	}
	if _, err := os.Lstat(filepath.Join(dst, "proc")); !os.IsNotExist(err) {
		t.Errorf("the mount inside the tree was copied: %v", err)
	}
	if top := lstat(t, dst); top.Mode&0o7777 != lstat(t, src).Mode&0o7777 {
		t.Errorf("top directory mode %#o, want %#o", top.Mode, lstat(t, src).Mode)
	}

	// Freeing the old root deletes everything on its file system, and
	// nothing of the mount inside it.
	if err := removeContents(src, lstat(t, src).Dev); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name() != "proc" {
		t.Errorf("left after removeContents: %v, want only the mount point proc", left)
	}
	if _, err := os.Stat(filepath.Join(mnt, "inner")); err != nil {
		t.Errorf("removeContents went into a mount: %v", err)
	}
}
