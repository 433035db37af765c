package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/linuxkit-builder/cache"
)

// examples are LinuxKit's own YAML files, kept as test data by lkfile.
const examples = "../../lkfile/testdata/linuxkit"

// TestDryRunEveryLinuxKitExample runs dyad build -dry-run on every
// example LinuxKit ships, with an empty cache: validation and planning
// without the images.
func TestDryRunEveryLinuxKitExample(t *testing.T) {
	t.Setenv(cache.EnvDir, t.TempDir())
	files, err := filepath.Glob(examples + "/examples/*.yml")
	if err != nil || len(files) < 30 {
		t.Fatalf("%d examples found: %v", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			args := []string{"build", "-dry-run", file}
			// The arm64 snippet is to be merged after the file it amends.
			if filepath.Base(file) == "platform-equinixmetal.arm64.yml" {
				args = []string{"build", "-dry-run", filepath.Join(filepath.Dir(file), "platform-equinixmetal.yml"), file}
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if filepath.Base(file) == "static-ip.yml" {
				// Not YAML: see lkfile's notYAML.
				if code != 1 || !strings.Contains(stderr.String(), "static-ip.yml: yaml: line 24") {
					t.Errorf("exit %d: %s", code, stderr.String())
				}
				return
			}
			if code != 0 || !strings.Contains(stdout.String(), ": valid;") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), "not fetched (dry run)") {
				t.Errorf("the plan does not say the images were not fetched:\n%s", stderr.String())
			}
		})
	}
}

// TestBuildRefusesBrokenFiles feeds broken variants of LinuxKit's
// dhcpcd test: each fails with exit 1 and a message naming the file, the
// line and the key.
func TestBuildRefusesBrokenFiles(t *testing.T) {
	t.Setenv(cache.EnvDir, t.TempDir())
	good, err := os.ReadFile(examples + "/test/dhcpcd-test.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown key", "    net: host\n", "    network: host\n", "b.yml:13: onboot[1].network: unknown key"},
		{"wrong type", "    net: host\n", "    net: [host]\n", "b.yml:13: onboot[1].net: want a string, got a list"},
		{"capability", "    net: host\n", "    capabilities: [NET_ADMIN]\n", `b.yml:11: onboot[1]: unknown capability "NET_ADMIN"`},
		{"files entry", "    source: ./check.sh\n", "    source: ./check.sh\n    contents: x\n", "b.yml:21: files[0]: check.sh: give one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.old) {
				t.Fatalf("dhcpcd-test.yml has no %q", tc.old)
			}
			file := filepath.Join(dir, "b.yml")
			if err := os.WriteFile(file, []byte(strings.Replace(string(good), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"build", "-dry-run", file}, &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, %q; want 1 and %q", code, stderr.String(), tc.want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"build", "-format", "iso", filepath.Join(examples, "test/dhcpcd-test.yml")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `unknown format "iso"`) {
		t.Errorf("-format iso: exit %d %q", code, stderr.String())
	}
}
