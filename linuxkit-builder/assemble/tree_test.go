package assemble

import (
	"archive/tar"
	"bytes"
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
