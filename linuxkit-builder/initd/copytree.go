package initd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxTreeDepth bounds the recursion of copyTree and removeContents; a root
// file system nested deeper than this is not one the assembler wrote.
const maxTreeDepth = 128

// treeStats counts what copyTree copied.
type treeStats struct {
	Entries int
	Bytes   int64
}

// inode names a file across its hard links.
type inode struct{ dev, ino uint64 }

// treeCopier holds the state of one copyTree.
type treeCopier struct {
	dev   uint64           // the file system being copied; other mounts are skipped
	links map[inode]string // first copy of each file with more than one link
	stats treeStats
}

// copyTree copies everything under src into dst, an existing directory,
// keeping types (regular files, directories, symbolic links, device
// nodes, fifos, sockets), hard links, owners, modes with their setuid,
// setgid and sticky bits, and modification times. It stays on src's file
// system: a mount below src (such as the tmpfs dst itself) is skipped.
// Extended attributes are not copied; an initramfs (cpio newc) has none.
func copyTree(src, dst string) (treeStats, error) {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return treeStats{}, &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	c := &treeCopier{dev: st.Dev, links: map[inode]string{}}
	if err := c.dir(src, dst, 0); err != nil {
		return c.stats, err
	}
	// The top directory's own owner and mode: "/" of the initramfs.
	return c.stats, setMeta(dst, &st)
}

func (c *treeCopier) dir(src, dst string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("%s: deeper than %d directories", src, maxTreeDepth)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(s, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: s, Err: err}
		}
		if st.Dev != c.dev {
			continue // a mount point: not part of this file system
		}
		if err := c.entry(s, d, &st, depth); err != nil {
			return err
		}
		c.stats.Entries++
	}
	return nil
}

// entry copies one entry whose Lstat is st.
func (c *treeCopier) entry(s, d string, st *unix.Stat_t, depth int) error {
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		id := inode{st.Dev, st.Ino}
		if first, ok := c.links[id]; ok {
			if err := os.Link(first, d); err != nil {
				return err
			}
			return nil // a hard link shares its owner, mode and times
		}
		c.links[id] = d
	}
	switch typ {
	case unix.S_IFDIR:
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if err := c.dir(s, d, depth+1); err != nil {
			return err
		}
	case unix.S_IFREG:
		n, err := copyFile(s, d)
		c.stats.Bytes += n
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(s)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, d); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(d, st.Mode&(unix.S_IFMT|0o777), int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: d, Err: err}
		}
	default:
		return fmt.Errorf("%s: unknown file type %#o", s, typ)
	}
	return setMeta(d, st)
}

// copyFile copies the contents of the regular file src into dst, which it
// creates.
func copyFile(src, dst string) (int64, error) {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", src, err)
	}
	return n, nil
}

// setMeta gives p the owner, mode and times of st. The mode comes after
// the owner, because chown clears the setuid and setgid bits.
func setMeta(p string, st *unix.Stat_t) error {
	if err := unix.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

// removeContents deletes everything under dir that lies on the file
// system dev, as switch_root does to give the initramfs's memory back: it
// does not descend into other mounts, and a directory that still holds
// one stays. It goes on past errors and returns them all.
func removeContents(dir string, dev uint64) error {
	return removeBelow(dir, dev, 0)
}

func removeBelow(dir string, dev uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("%s: deeper than %d directories", dir, maxTreeDepth)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			errs = append(errs, &os.PathError{Op: "lstat", Path: p, Err: err})
			continue
		}
		if st.Dev != dev {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := removeBelow(p, dev, depth+1); err != nil {
				errs = append(errs, err)
			}
			if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EBUSY) {
				errs = append(errs, &os.PathError{Op: "rmdir", Path: p, Err: err})
			}
			continue
		}
		if err := unix.Unlink(p); err != nil {
			errs = append(errs, &os.PathError{Op: "unlink", Path: p, Err: err})
		}
	}
	return errors.Join(errs...)
}
