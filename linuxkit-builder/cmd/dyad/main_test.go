package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyad-project/dyad/linuxkit-builder/cache"
	"github.com/dyad-project/dyad/linuxkit-builder/imageconfig"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
)

// moduleRoot is the repository this test runs in.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return root
}

// copySource copies the files git tracks (and new files it does not
// ignore) into dst: a clean tree, whatever bin/ or caches the checkout
// holds.
func copySource(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the work tree
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// build runs `dyad pkg build` with its own cache and returns what it
// printed: REF@DIGEST.
func build(t *testing.T, cacheDir string, args ...string) string {
	t.Helper()
	t.Setenv(cache.EnvDir, cacheDir)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"pkg", "build"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("dyad pkg build %v: exit %d\n%s", args, code, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// TestPkgBuildReproducible builds the dhcp image from two clean copies of
// the source at different paths, the second with an empty Go build cache,
// and wants the same digest; then checks what the image holds.
func TestPkgBuildReproducible(t *testing.T) {
	root := moduleRoot(t)
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "somewhere", "else", "b")
	copySource(t, root, a)
	copySource(t, root, b)

	first := build(t, filepath.Join(t.TempDir(), "cache"), "-tag", "repro", filepath.Join(a, "images/dhcp"))
	t.Setenv("GOCACHE", t.TempDir())
	cacheDir := filepath.Join(t.TempDir(), "cache")
	second := build(t, cacheDir, "-tag", "repro", filepath.Join(b, "images/dhcp"))
	if first != second || !strings.HasPrefix(first, "docker.io/dyad/dhcp:repro@sha256:") {
		t.Fatalf("two builds of the same source:\n%s\n%s", first, second)
	}

	c, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	// By digest, as examples and tests name images.
	img, _, err := c.Image(second)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/usr/bin/dyad-dhcp" {
		t.Errorf("entry point %v", cfg.Config.Entrypoint)
	}
	label, err := imageconfig.ParseLabel([]byte(cfg.Config.Labels[imageconfig.LabelKey]))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pkgbuild.Read(filepath.Join(root, "images/dhcp"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := p.Config.Label()
	got, _ := label.Label()
	if !bytes.Equal(got, want) {
		t.Errorf("label %s\nwant  %s", got, want)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	files := map[string]*tar.Header{}
	contents := map[string]string{}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for range 1000 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Name == "etc/passwd" || h.Name == "etc/group" {
			b, _ := io.ReadAll(tr)
			contents[h.Name] = string(b)
		}
		// Every file is root's but engine-exec, the engine's user's.
		owner := 0
		if h.Name == "usr/libexec/dyad/engine-exec" {
			owner = 2101
		}
		if h.Uid != owner || h.Gid != owner || h.ModTime.Unix() != 0 {
			t.Errorf("%s: owner %d:%d, time %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
	}
	if h := files["usr/bin/dyad-dhcp"]; h == nil || h.Mode != 0o755 {
		t.Errorf("no executable usr/bin/dyad-dhcp: %+v", h)
	}
	if h := files["usr/libexec/dyad/engine-exec"]; h == nil || h.Mode != 0o6755 {
		t.Errorf("no set-user-ID and set-group-ID usr/libexec/dyad/engine-exec: %+v", h)
	}
	if h := files["sbin/dhcpcd"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/usr/bin/dyad-dhcp" {
		t.Errorf("no /sbin/dhcpcd linked to dyad-dhcp: %+v", h)
	}
	if !strings.Contains(contents["etc/passwd"], "dyad-dhcp:x:2101:2101:") || !strings.Contains(contents["etc/group"], "dyad-dhcp:x:2101:") {
		t.Errorf("/etc names no engine user:\n%s%s", contents["etc/passwd"], contents["etc/group"])
	}
	sizes, err := pkgbuild.Sizes(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dhcp image: %d bytes compressed, %d uncompressed", sizes.Compressed, sizes.Uncompressed)
}

func TestCommandLineErrors(t *testing.T) {
	t.Setenv(cache.EnvDir, t.TempDir())
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"frobnicate"}, 1, `unknown command "frobnicate"`},
		{[]string{"pkg", "build"}, 1, "no package directory"},
		{[]string{"pkg", "build", "/nonexistent"}, 1, "build.yml"},
		{[]string{"cache", "export", "dyad/dhcp:1"}, 1, "REF -o FILE"},
		{[]string{"cache", "export", "dyad/dhcp:1", "-o", filepath.Join(t.TempDir(), "x.tar")}, 1, "not in the cache"},
		{[]string{"cache", "import"}, 1, "want FILE"},
		{[]string{"cache", "ls", "-x"}, 1, "flag provided but not defined"},
		{[]string{"push", "Not A Ref"}, 1, "could not parse reference"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("dyad %v: exit %d, %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

func TestParseInterleavedFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  string
		o    string
		v    bool
	}{
		{[]string{"ref", "-o", "f"}, "ref", "f", false},
		{[]string{"-o", "f", "ref", "-v"}, "ref", "f", true},
		{[]string{"-o", "f", "--", "-v", "x"}, "-v x", "f", false},
		{[]string{"a", "--", "-v"}, "a -v", "", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o := fs.String("o", "", "")
		v := fs.Bool("v", false, "")
		pos, err := parse(fs, tc.args)
		if err != nil || strings.Join(pos, " ") != tc.pos || *o != tc.o || *v != tc.v {
			t.Errorf("%v: positional %q, -o %q, -v %v, %v", tc.args, pos, *o, *v, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := parse(fs, []string{"-h"}); err != errUsage {
		t.Errorf("-h: %v, want the usage", err)
	}
}

func TestCacheCommands(t *testing.T) {
	t.Setenv(cache.EnvDir, t.TempDir())
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"cache", "ls"}, &stdout, &stderr); code != 0 {
		t.Fatalf("cache ls: %d %s", code, stderr.String())
	}
	if strings.TrimSpace(stdout.String()) != "REFERENCE  DIGEST  SIZE" {
		t.Errorf("empty cache ls: %q", stdout.String())
	}
	// The cache is an OCI layout.
	b, err := os.ReadFile(filepath.Join(os.Getenv(cache.EnvDir), "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Version == "" {
		t.Errorf("oci-layout %s: %v", b, err)
	}
}
