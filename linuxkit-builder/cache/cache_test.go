package cache

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/dyad-project/dyad/internal/testnet"
)

// TestMain runs the tests in private namespaces: podman writes under /run
// and its temporary directory, never the host's.
func TestMain(m *testing.M) { os.Exit(testnet.Isolate(m)) }

func newImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPutListImage(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := newImage(t), newImage(t)
	full, err := c.Put("dyad/dhcp:1", a)
	if err != nil {
		t.Fatal(err)
	}
	if full != "docker.io/dyad/dhcp:1" {
		t.Errorf("stored as %q", full)
	}
	if _, err := c.Put("example.org:5000/x/y:2", b); err != nil {
		t.Fatal(err)
	}
	// Replacing a reference keeps one entry for it.
	if _, err := c.Put("docker.io/dyad/dhcp:1", b); err != nil {
		t.Fatal(err)
	}
	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Ref != "docker.io/dyad/dhcp:1" || entries[0].Digest != digest(t, b) ||
		entries[1].Ref != "example.org:5000/x/y:2" || entries[0].Size == 0 {
		t.Errorf("entries %+v", entries)
	}

	// index.json is LinuxKit's: each entry annotated with its reference.
	raw, err := os.ReadFile(filepath.Join(c.Dir(), "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Annotations[RefAnnotation] == "" {
		t.Errorf("index.json: %s", raw)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), "oci-layout")); err != nil {
		t.Error(err)
	}

	got, _, err := c.Image("dyad/dhcp:1")
	if err != nil || digest(t, got) != digest(t, b) {
		t.Errorf("by tag: %v", err)
	}
	got, stored, err := c.Image("dyad/dhcp@" + digest(t, b).String())
	if err != nil || digest(t, got) != digest(t, b) || stored != "docker.io/dyad/dhcp:1" {
		t.Errorf("by digest: %v (%s)", err, stored)
	}
	if _, _, err := c.Image("dyad/dhcp:2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: got %v", err)
	}
	if _, _, err := c.Image("other/dhcp@" + digest(t, b).String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("digest under another repository: got %v", err)
	}

	// Reopening finds the same entries.
	c2, err := Open(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if e2, err := c2.List(); err != nil || len(e2) != 2 {
		t.Errorf("reopened: %v %+v", err, e2)
	}
}

func TestOpenRefusesACorruptIndex(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("opened a cache with a corrupt index.json")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "index.json")); string(b) != "{not json" {
		t.Error("the corrupt index.json was overwritten")
	}
}

func TestExportImport(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img := newImage(t)
	if _, err := c.Put("dyad/dhcp:1", img); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dhcp.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Export("dyad/dhcp:1", f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// docker load reads manifest.json: one entry, its tag, its config.
	m := tarManifest(t, file)
	cfg, _ := img.ConfigName()
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "docker.io/dyad/dhcp:1" || m[0].Config != cfg.String() {
		t.Errorf("manifest.json %+v (config %s)", m, cfg)
	}

	c2, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	refs, err := c2.Import(file)
	if err != nil || len(refs) != 1 || refs[0] != "docker.io/dyad/dhcp:1" {
		t.Fatalf("import: %v %v", refs, err)
	}
	back, _, err := c2.Image("dyad/dhcp:1")
	if err != nil {
		t.Fatal(err)
	}
	// The tarball carries the config and the layers, not the manifest:
	// the image's ID (its config's digest) and layers survive.
	cfg2, _ := back.ConfigName()
	if cfg2 != cfg {
		t.Errorf("config digest %s after the round trip, want %s", cfg2, cfg)
	}
	l1, _ := img.Layers()
	l2, _ := back.Layers()
	for i := range l1 {
		d1, _ := l1[i].DiffID()
		d2, _ := l2[i].DiffID()
		if d1 != d2 {
			t.Errorf("layer %d: %s, want %s", i, d2, d1)
		}
	}

	if _, err := c2.Import(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Error("imported a missing file")
	}
}

// TestExportLoadsInPodman loads an exported tarball with podman, which
// must report the image under its tag with the config's digest as its ID.
func TestExportLoadsInPodman(t *testing.T) {
	testnet.RequireIsolated(t)
	testnet.RequireTools(t, "podman")
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img := newImage(t)
	if _, err := c.Put("dyad/dhcp:podman", img); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dhcp.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Export("dyad/dhcp:podman", f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// podman wants a short runroot: under the private /run.
	store, err := os.MkdirTemp("/run", "podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(store) })
	podman := func(args ...string) string {
		t.Helper()
		base := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
			"--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"}
		cmd := exec.Command("podman", append(base, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := podman("load", "-i", file)
	if !strings.Contains(out, "docker.io/dyad/dhcp:podman") {
		t.Errorf("podman load said:\n%s", out)
	}
	cfg, _ := img.ConfigName()
	id := strings.TrimSpace(podman("image", "inspect", "--format", "{{.Id}}", "docker.io/dyad/dhcp:podman"))
	if id != cfg.Hex {
		t.Errorf("podman's image ID %q, want the config digest %s", id, cfg.Hex)
	}
}

func tarManifest(t *testing.T, file string) []struct {
	Config   string
	RepoTags []string
	Layers   []string
} {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for range 1000 {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json in %s: %v", file, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		var m []struct {
			Config   string
			RepoTags []string
			Layers   []string
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatal("too many entries")
	return nil
}

// TestPushPull pushes a cached image to an in-process registry on
// loopback and pulls it into another cache.
func TestPushPull(t *testing.T) {
	// The default keychain reads Docker's configuration: not the host's.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/dyad/dhcp:1"

	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img := newImage(t)
	if _, err := c.Put(ref, img); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Push(ctx, ref); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	full, d, err := c2.Pull(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if full != ref || d != digest(t, img) {
		t.Errorf("pulled %s@%s, want %s@%s", full, d, ref, digest(t, img))
	}
	if _, _, err := c2.Pull(ctx, host+"/dyad/dhcp:missing"); err == nil {
		t.Error("pulled a tag the registry does not have")
	}
	if err := c.Push(ctx, host+"/dyad/other:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("pushed an image not in the cache: %v", err)
	}
}
