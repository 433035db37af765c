package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builds are the binaries Binary built, once each for the whole test
// binary (parallel subtests among its callers).
var builds struct {
	mu   sync.Mutex
	done map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the command to test: $DYAD_BIN/NAME as make builds it,
// or a build of package pkg made once for the whole test binary, in the
// temporary directory (Isolate's own, under the tests' mount namespace).
func Binary(t testing.TB, name, pkg string) string {
	t.Helper()
	if dir := os.Getenv("DYAD_BIN"); dir != "" {
		p, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("DYAD_BIN=%s: %v (run `make build`)", dir, err)
		}
		return p
	}
	builds.mu.Lock()
	if builds.done == nil {
		builds.done = map[string]*build{}
	}
	b := builds.done[pkg]
	if b == nil {
		b = new(build)
		builds.done[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", name+"-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("building %s: %v", name, b.err)
	}
	return b.path
}
