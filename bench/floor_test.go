package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// floor is a process that shows what part of dyad-dhcp's memory any Go
// process of its kind would hold (bench/cmd/floor-*).
type floor struct {
	name, what string
	path       string
}

// floors returns the floor binaries: from $DYAD_BIN/bench, where make
// builds them as it builds dyad-dhcp, or fresh builds.
func floors(t *testing.T) []floor {
	t.Helper()
	fs := []floor{
		{name: "floor-runtime", what: "the Go runtime alone"},
		{name: "floor-dhcp", what: "the libraries DESIGN.md names for the DHCP client (netlink, cbor, insomniacslk/dhcp, yaml.v3, libseccomp), each used once"},
	}
	dir := os.Getenv("DYAD_BIN")
	if dir != "" {
		dir = filepath.Join(dir, "bench")
	} else {
		dir = t.TempDir()
		out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/dyad-project/dyad/bench/cmd/...").CombinedOutput()
		if err != nil {
			t.Fatalf("building the floor binaries: %v\n%s", err, out)
		}
	}
	for i := range fs {
		fs[i].path = filepath.Join(dir, fs[i].name)
		if _, err := os.Stat(fs[i].path); err != nil {
			t.Fatalf("%v (run `make build`)", err)
		}
	}
	return fs
}

// floorOnce runs f until it is ready, plus settle, and reads its memory.
func floorOnce(f floor, settle time.Duration) (memSample, error) {
	cmd := exec.Command(f.path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return memSample{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return memSample{}, fmt.Errorf("%s: %w", f.name, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			return memSample{}, fmt.Errorf("%s: said %q, not ready: %s", f.name, line, stderr.String())
		}
	case <-time.After(10 * time.Second):
		return memSample{}, fmt.Errorf("%s: not ready after 10s", f.name)
	}
	time.Sleep(settle)
	return treeMemory(cmd.Process.Pid)
}

// measureFloors samples each floor binary n times.
func measureFloors(t *testing.T, fs []floor, s settings) map[string][]memSample {
	t.Helper()
	got := map[string][]memSample{}
	for range s.memSamples {
		for _, f := range fs {
			m, err := floorOnce(f, s.settle)
			if err != nil {
				t.Fatal(err)
			}
			got[f.name] = append(got[f.name], m)
		}
	}
	return got
}
