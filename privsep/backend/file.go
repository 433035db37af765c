package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteFile replaces the content of the file at path with data and gives it
// mode perm.
//
// Normally the replacement is atomic: data goes to a temporary file in the
// same directory, which is written, fsynced, chmod'ed and renamed over
// path, and then the directory is fsynced. A reader sees the old content or
// the new, never a mix, and a crash leaves one of the two.
//
// When path is itself a mount point (a single file bind-mounted into a
// container, as Docker and LinuxKit do with /etc/resolv.conf and
// /etc/hostname), a rename over it fails with EBUSY, and would not reach
// the file outside the container anyway. WriteFile then truncates and
// rewrites the file in place and fsyncs it; a reader may briefly see it
// empty or partly written. It tells the mount point by comparing the mount
// ID of the file with that of its directory (statx STATX_MNT_ID, Linux
// 5.8) before it creates any temporary file: in a container the directory
// (/etc) is often read-only while the mounted file is writable. Where the
// kernel reports no mount ID, the EBUSY from rename is what tells.
//
// When path is a symbolic link, the file it leads to is replaced and the
// link is kept (as when /etc/resolv.conf points into /run).
//
// WriteFile never leaves its temporary file behind.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, isMountPoint)
}

// writeFile is WriteFile with the mount point test given, so that tests
// can exercise the EBUSY fallback.
func writeFile(path string, data []byte, perm os.FileMode, mounted func(string) (bool, error)) error {
	target, err := resolve(path)
	if err != nil {
		return fmt.Errorf("backend: write %s: %w", path, err)
	}
	m, err := mounted(target)
	if err != nil {
		return fmt.Errorf("backend: write %s: %w", path, err)
	}
	if !m {
		err = replace(target, data, perm)
		if !errors.Is(err, unix.EBUSY) {
			if err != nil {
				return fmt.Errorf("backend: write %s: %w", path, err)
			}
			return nil
		}
	}
	if err := overwrite(target, data, perm); err != nil {
		return fmt.Errorf("backend: write %s in place: %w", path, err)
	}
	return nil
}

// resolve follows path if it is a symbolic link, so that the link is not
// replaced by a file.
func resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	return filepath.EvalSymlinks(path)
}

// isMountPoint reports whether path is the root of a mount of its own,
// which for a file means that it is bind-mounted over another. It reports
// false when the kernel gives no mount IDs, or when path does not exist.
func isMountPoint(path string) (bool, error) {
	var f, d unix.Statx_t
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_DONT_SYNC
	if err := unix.Statx(unix.AT_FDCWD, path, flags, unix.STATX_MNT_ID, &f); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("statx: %w", err)
	}
	if err := unix.Statx(unix.AT_FDCWD, filepath.Dir(path), flags, unix.STATX_MNT_ID, &d); err != nil {
		return false, fmt.Errorf("statx: %w", err)
	}
	if f.Mask&d.Mask&unix.STATX_MNT_ID == 0 {
		return false, nil
	}
	return f.Mnt_id != d.Mnt_id, nil
}

// replace writes data to a temporary file beside path and renames it over
// path, then syncs the directory.
func replace(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := rename(path, data, perm); err != nil {
		return err
	}
	return syncDir(dir)
}

// rename writes data to a temporary file beside path and renames it over
// path. On error the temporary file is removed.
func rename(path string, data []byte, perm os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	// CreateTemp made it 0600 whatever the umask; set what was asked.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot sync a directory; the rename is done.
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// overwrite truncates the existing file at path and writes data into it.
func overwrite(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	return f.Close()
}
