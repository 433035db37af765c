package assemble

import (
	"archive/tar"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

// Unix file types, as cpio and the kernel spell them.
const (
	typeMask   = 0o170000
	typeDir    = 0o040000
	typeReg    = 0o100000
	typeLink   = 0o120000
	typeChar   = 0o020000
	typeBlock  = 0o060000
	typeFifo   = 0o010000
	permMask   = 0o7777
	maxEntries = 1 << 20
	// DefaultMaxSize bounds the file contents of a tree: the initramfs
	// holds it all in the guest's memory, and a layer's header may claim
	// any size (a sparse file of holes costs nothing to send).
	DefaultMaxSize = 4 << 30
)

// entry is one file of the tree.
type entry struct {
	mode         uint32 // type and permission bits, setuid included
	uid, gid     uint32
	data         []byte // a regular file's contents
	link         string // a symlink's target
	major, minor uint32 // a device's numbers
}

func (e *entry) isDir() bool { return e.mode&typeMask == typeDir }

// Tree is the root file system being built, in memory: later additions
// replace earlier ones, as an image's later layer or a later image does.
// It is written out in path order, with every entry's time set to the
// same instant, so that the same inputs make the same bytes.
type Tree struct {
	entries map[string]*entry
	size    int64
	// MaxSize bounds the bytes of file contents AddTar may add
	// (NewTree sets DefaultMaxSize).
	MaxSize int64
}

// NewTree returns an empty tree holding only the root directory.
func NewTree() *Tree {
	return &Tree{entries: map[string]*entry{"": {mode: typeDir | 0o755}}, MaxSize: DefaultMaxSize}
}

// clean checks a path in the tree and returns it relative, without a
// leading or trailing slash.
func clean(name string) (string, error) {
	p := strings.Trim(path.Clean("/"+name), "/")
	if strings.Contains(name, "\x00") {
		return "", fmt.Errorf("path %q holds a NUL", name)
	}
	return p, nil
}

// put adds e at name, making missing parent directories (0755, root's);
// a directory does not replace a directory's owner and mode unless asked.
func (t *Tree) put(name string, e *entry) error {
	p, err := clean(name)
	if err != nil {
		return err
	}
	if p == "" {
		if e.isDir() {
			t.entries[""] = e
			return nil
		}
		return errors.New("the root must be a directory")
	}
	if len(t.entries) >= maxEntries {
		return fmt.Errorf("more than %d files", maxEntries)
	}
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		parent, ok := t.entries[dir]
		switch {
		case !ok:
			t.entries[dir] = &entry{mode: typeDir | 0o755}
		case !parent.isDir():
			// A later image puts a directory where a file was: the
			// directory wins, as unpacking the two in turn would make it.
			t.size -= int64(len(parent.data))
			t.entries[dir] = &entry{mode: typeDir | 0o755}
		}
	}
	if old, ok := t.entries[p]; ok {
		t.size -= int64(len(old.data))
		if !e.isDir() && old.isDir() {
			t.removeUnder(p)
		}
	}
	t.entries[p] = e
	t.size += int64(len(e.data))
	return nil
}

// removeUnder removes what lies below dir.
func (t *Tree) removeUnder(dir string) {
	for name, e := range t.entries {
		if strings.HasPrefix(name, dir+"/") {
			t.size -= int64(len(e.data))
			delete(t.entries, name)
		}
	}
}

// Dir adds a directory.
func (t *Tree) Dir(name string, perm uint32, uid, gid uint32) error {
	return t.put(name, &entry{mode: typeDir | perm&permMask, uid: uid, gid: gid})
}

// File adds a regular file.
func (t *Tree) File(name string, data []byte, perm uint32, uid, gid uint32) error {
	return t.put(name, &entry{mode: typeReg | perm&permMask, uid: uid, gid: gid, data: data})
}

// Symlink adds a symbolic link.
func (t *Tree) Symlink(name, target string) error {
	return t.put(name, &entry{mode: typeLink | 0o777, link: target})
}

// CharDev adds a character device.
func (t *Tree) CharDev(name string, perm uint32, major, minor uint32) error {
	return t.put(name, &entry{mode: typeChar | perm&permMask, major: major, minor: minor})
}

// Lookup returns the contents of the regular file at name.
func (t *Tree) Lookup(name string) ([]byte, bool) {
	p, err := clean(name)
	if err != nil {
		return nil, false
	}
	e, ok := t.entries[p]
	if !ok || e.mode&typeMask != typeReg {
		return nil, false
	}
	return e.data, true
}

// Has says whether name is in the tree.
func (t *Tree) Has(name string) bool {
	p, err := clean(name)
	_, ok := t.entries[p]
	return err == nil && ok
}

// Size is the bytes of file contents the tree holds.
func (t *Tree) Size() int64 { return t.size }

// Len is the number of entries.
func (t *Tree) Len() int { return len(t.entries) }

// A filter sees each entry of a tar stream, its name relative to the
// stream's root, before the tree does: it may drop the entry (keep
// false), change its header, or give a regular file new contents.
type filter func(h *tar.Header) (keep bool, contents []byte)

// AddTar adds the entries of a tar stream below prefix, through filter if
// it is not nil.
func (t *Tree) AddTar(prefix string, r io.Reader, filter filter) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n > maxEntries {
			return fmt.Errorf("more than %d entries", maxEntries)
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		h.Name = strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		var contents []byte
		if filter != nil {
			keep, c := filter(h)
			if !keep {
				continue
			}
			contents = c
		}
		name := path.Join(prefix, h.Name)
		perm := uint32(h.Mode) & permMask
		uid, gid := uint32(h.Uid), uint32(h.Gid)
		switch h.Typeflag {
		case tar.TypeDir:
			err = t.Dir(name, perm, uid, gid)
		case tar.TypeReg:
			data := contents
			if data == nil {
				// Checked before reading: the header says how much.
				if h.Size > t.MaxSize-t.size {
					return fmt.Errorf("%s: %d bytes would take the tree past its %d", h.Name, h.Size, t.MaxSize)
				}
				data, err = io.ReadAll(io.LimitReader(tr, h.Size))
			}
			if err == nil {
				err = t.File(name, data, perm, uid, gid)
			}
		case tar.TypeSymlink:
			err = t.Symlink(name, h.Linkname)
		case tar.TypeLink:
			// A hard link becomes a copy: the initramfs and the tree's
			// order need no link table.
			target := path.Join(prefix, strings.TrimPrefix(path.Clean("/"+h.Linkname), "/"))
			data, ok := t.Lookup(target)
			if !ok {
				return fmt.Errorf("%s: hard link to %s, which is not a file before it", h.Name, h.Linkname)
			}
			err = t.File(name, data, perm, uid, gid)
		case tar.TypeChar:
			err = t.put(name, &entry{mode: typeChar | perm, uid: uid, gid: gid, major: uint32(h.Devmajor), minor: uint32(h.Devminor)})
		case tar.TypeBlock:
			err = t.put(name, &entry{mode: typeBlock | perm, uid: uid, gid: gid, major: uint32(h.Devmajor), minor: uint32(h.Devminor)})
		case tar.TypeFifo:
			err = t.put(name, &entry{mode: typeFifo | perm, uid: uid, gid: gid})
		default:
			// PAX and GNU headers are read by archive/tar itself; what is
			// left (sockets, sparse files) has no place in an image.
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// names returns the entries' names in order, parents first.
func (t *Tree) names() []string {
	out := make([]string, 0, len(t.entries))
	for name := range t.entries {
		if name != "" {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, comparePaths)
	return out
}

// comparePaths orders paths by their components, so that "a/b" follows
// "a" directly and not after "a-c", without splitting them (a sort of a
// kernel's modules makes millions of comparisons): '/' sorts below every
// other byte.
func comparePaths(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		switch {
		case a[i] == b[i]:
			continue
		case a[i] == '/':
			return -1
		case b[i] == '/':
			return 1
		}
		return cmp.Compare(a[i], b[i])
	}
	return cmp.Compare(len(a), len(b))
}

// WriteCpio writes the tree as a newc cpio archive, the initramfs format,
// every time set to epoch.
func (t *Tree) WriteCpio(w io.Writer, epoch time.Time) error {
	cw := cpio.Newc.Writer(w)
	for i, name := range t.names() {
		e := t.entries[name]
		info := cpio.Info{
			Ino:   uint64(i + 1),
			Mode:  uint64(e.mode),
			UID:   uint64(e.uid),
			GID:   uint64(e.gid),
			NLink: 1,
			MTime: uint64(epoch.Unix()),
			Name:  name,
		}
		var data []byte
		switch e.mode & typeMask {
		case typeReg:
			data = e.data
		case typeLink:
			data = []byte(e.link)
		case typeChar, typeBlock:
			info.Rmajor, info.Rminor = uint64(e.major), uint64(e.minor)
		case typeDir:
			info.NLink = 2
		}
		info.FileSize = uint64(len(data))
		if err := cw.WriteRecord(cpio.Record{ReaderAt: bytes.NewReader(data), Info: info}); err != nil {
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
	}
	return cpio.WriteTrailer(cw)
}

// WriteTar writes the tree as a tar archive, every time set to epoch.
func (t *Tree) WriteTar(w io.Writer, epoch time.Time) error {
	tw := tar.NewWriter(w)
	for _, name := range t.names() {
		e := t.entries[name]
		h := &tar.Header{
			Name:    name,
			Mode:    int64(e.mode & permMask),
			Uid:     int(e.uid),
			Gid:     int(e.gid),
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		switch e.mode & typeMask {
		case typeDir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case typeReg:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		case typeLink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		case typeChar:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(e.major), int64(e.minor)
		case typeBlock:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(e.major), int64(e.minor)
		case typeFifo:
			h.Typeflag = tar.TypeFifo
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar: %s: %w", name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("tar: %s: %w", name, err)
		}
	}
	return tw.Close()
}
