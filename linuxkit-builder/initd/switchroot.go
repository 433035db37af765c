package initd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// newRootDir is where the tmpfs that replaces the initramfs is mounted
// while the root is copied into it.
const newRootDir = "/.dyad-root"

// rootFSType returns the type of the file system at "/" in a mountinfo
// text (proc(5)): the last mount there, which hides those before it.
func rootFSType(r io.Reader) (string, error) {
	fstype := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			return "", fmt.Errorf("mountinfo: no separator in %q", sc.Text())
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			return "", fmt.Errorf("mountinfo: short line %q", sc.Text())
		}
		if f[4] == "/" {
			fstype = g[0]
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if fstype == "" {
		return "", errors.New("mountinfo: nothing mounted at /")
	}
	return fstype, nil
}

// rootIsInitramfs reports whether "/" is the kernel's initial rootfs (a
// ramfs or tmpfs that mountinfo shows as "rootfs"), mounting /proc for
// the question if it is not mounted yet and unmounting it again.
func rootIsInitramfs() (bool, error) {
	const mi = "/proc/self/mountinfo"
	if _, err := os.Stat(mi); err != nil {
		if err := os.MkdirAll("/proc", 0o555); err != nil {
			return false, err
		}
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return false, fmt.Errorf("mount /proc: %w", err)
		}
		defer unix.Unmount("/proc", unix.MNT_DETACH)
	}
	f, err := os.Open(mi)
	if err != nil {
		return false, err
	}
	defer f.Close()
	t, err := rootFSType(f)
	return t == "rootfs", err
}

// leaveInitramfs moves the root out of the initramfs, where pivot_root
// (and so runc) cannot work: it copies the tree into a tmpfs, deletes the
// initramfs's files to give their memory back, moves the tmpfs onto "/",
// changes root into it and executes /init again there. It returns nil at
// once when "/" is not the initramfs (the second run); otherwise it
// returns only on failure, and the caller carries on where it is.
func leaveInitramfs(con *Console) error {
	initramfs, err := rootIsInitramfs()
	if err != nil {
		return err
	}
	if !initramfs {
		return nil
	}
	start := time.Now()
	var root unix.Stat_t
	if err := unix.Lstat("/", &root); err != nil {
		return fmt.Errorf("lstat /: %w", err)
	}
	if err := os.Mkdir(newRootDir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRootDir, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", newRootDir, err)
	}
	stats, err := copyTree("/", newRootDir)
	if err != nil {
		// Nothing is lost yet: drop the copy and stay in the initramfs.
		_ = unix.Unmount(newRootDir, unix.MNT_DETACH)
		_ = os.Remove(newRootDir)
		return fmt.Errorf("copying / into a tmpfs: %w", err)
	}
	con.Logf("root: copied the initramfs into a tmpfs (%d entries, %d MiB) in %v",
		stats.Entries, stats.Bytes>>20, time.Since(start).Round(time.Millisecond))
	// From here on there is no way back; failures are logged and the
	// switch goes on, as switch_root's do.
	if err := removeContents("/", root.Dev); err != nil {
		con.Logf("root: freeing the initramfs: %v", err)
	}
	if err := unix.Chdir(newRootDir); err != nil {
		return fmt.Errorf("chdir %s: %w", newRootDir, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s onto /: %w", newRootDir, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	con.Logf("root: now a tmpfs; executing /init again")
	err = unix.Exec("/init", os.Args, os.Environ())
	return fmt.Errorf("exec /init: %w", err)
}
