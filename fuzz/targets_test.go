package fuzz

import (
	"testing"

	"github.com/dyad-project/dyad/internal/fuzztargets"
)

// TestEveryTargetBuildsInOSSFuzz holds every target of this package to
// what OSS-Fuzz's compile_native_go_fuzzer needs (see internal/fuzztargets),
// and to a seed corpus it can ship: a new target that breaks either fails
// here, before it fails there.
func TestEveryTargetBuildsInOSSFuzz(t *testing.T) {
	ts, err := fuzztargets.Find(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) == 0 {
		t.Fatal("no fuzz targets found")
	}
	for _, err := range fuzztargets.Check(".", "dict", ts) {
		t.Error(err)
	}
}
