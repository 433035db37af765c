package pkgbuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"
)

// tree is a tar archive being put together: an image's layer, or a
// kernel's kernel.tar. Entries are owned by root unless said otherwise,
// and the archive lists them sorted by name with one time stamp, so that
// the same files give the same bytes.
type tree struct {
	entries map[string]*treeEntry
}

type treeEntry struct {
	hdr  tar.Header
	data []byte
}

func newTree() *tree { return &tree{entries: map[string]*treeEntry{}} }

// put adds an entry and the directories above it.
func (t *tree) put(hdr tar.Header, data []byte) error {
	if _, ok := t.entries[hdr.Name]; ok {
		return fmt.Errorf("pkgbuild: %s goes into the image twice", hdr.Name)
	}
	for d := path.Dir(hdr.Name); d != "."; d = path.Dir(d) {
		if _, ok := t.entries[d+"/"]; !ok {
			t.entries[d+"/"] = &treeEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}}
		}
	}
	t.entries[hdr.Name] = &treeEntry{hdr: hdr, data: data}
	return nil
}

// file adds a regular file owned by root.
func (t *tree) file(name string, mode int64, data []byte) error {
	return t.put(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data)
}

// symlink adds a symbolic link.
func (t *tree) symlink(name, target string) error {
	return t.put(tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

// dir adds a directory, or sets the mode of one already made for the
// entries below it.
func (t *tree) dir(name string, mode int64) error {
	if e, ok := t.entries[name+"/"]; ok {
		e.hdr.Mode = mode
		return nil
	}
	return t.put(tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}, nil)
}

// size is the sum of the regular files' sizes.
func (t *tree) size() int64 {
	var n int64
	for _, e := range t.entries {
		n += int64(len(e.data))
	}
	return n
}

// tar writes the archive, every entry stamped with epoch.
func (t *tree) tar(epoch time.Time) ([]byte, error) {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	// A path is a directory or something else, never both: a file or link
	// that is also a directory (or the parent of an entry) would be read
	// differently by different runtimes.
	for _, n := range names {
		if e := t.entries[n]; e.hdr.Typeflag != tar.TypeDir {
			if _, ok := t.entries[n+"/"]; ok {
				return nil, fmt.Errorf("pkgbuild: /%s is both a directory and a file or link in the image", n)
			}
		}
	}
	var buf bytes.Buffer
	buf.Grow(int(t.size()) + 1024*len(names))
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := t.entries[n]
		hdr := e.hdr
		hdr.ModTime = epoch
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("pkgbuild: tar: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("pkgbuild: tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pkgbuild: tar: %w", err)
	}
	return buf.Bytes(), nil
}

// tarMode is the mode bits a tar header holds for a file of mode m.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
