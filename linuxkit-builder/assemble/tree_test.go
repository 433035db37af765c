package assemble

import (
	"archive/tar"
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestAddTarBoundsTheTree: a layer whose headers claim more than the
// tree may hold is refused before its contents are read.
func TestAddTarBoundsTheTree(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"a", "b"} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 600})
		tw.Write(make([]byte, 600))
	}
	tw.Close()
	tree := NewTree()
	tree.MaxSize = 1000
	err := tree.AddTar("x", bytes.NewReader(buf.Bytes()), nil)
	if err == nil || !strings.Contains(err.Error(), "b: 600 bytes would take the tree past its 1000") {
		t.Fatalf("got %v, want the second file refused", err)
	}
	if _, ok := tree.Lookup("x/a"); !ok {
		t.Error("the first file, within the bound, is missing")
	}
}

// TestComparePaths: the order of path components, without splitting.
func TestComparePaths(t *testing.T) {
	paths := []string{"a", "a/b", "a/b/c", "a-c", "a.d/x", "ab", "ab/c", "b", "a/\x01", "a\x01"}
	for _, a := range paths {
		for _, b := range paths {
			want := slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
			if got := comparePaths(a, b); got != want {
				t.Errorf("comparePaths(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestSizeForgetsAFileADirectoryReplaces: a file that becomes a parent
// directory no longer counts.
func TestSizeForgetsAFileADirectoryReplaces(t *testing.T) {
	tree := NewTree()
	if err := tree.File("a", make([]byte, 10), 0o644, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := tree.File("a/b", make([]byte, 3), 0o644, 0, 0); err != nil {
		t.Fatal(err)
	}
	if tree.Size() != 3 {
		t.Errorf("size %d, want 3", tree.Size())
	}
}
