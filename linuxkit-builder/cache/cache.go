// Package cache is dyad's local image store: an OCI image layout laid out
// as LinuxKit's cache is, each entry of index.json annotated with the
// reference it was stored under (org.opencontainers.image.ref.name). It
// lives at ~/.cache/dyad unless DYAD_CACHE says otherwise.
package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/dyad-project/dyad/privsep/backend"
)

// RefAnnotation names the reference an index entry was stored under.
const RefAnnotation = "org.opencontainers.image.ref.name"

// EnvDir overrides the cache's place.
const EnvDir = "DYAD_CACHE"

// Cache is an OCI image layout on disk.
type Cache struct {
	dir  string
	path layout.Path
}

// DefaultDir is $DYAD_CACHE, or ~/.cache/dyad.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache: no home directory and no %s: %w", EnvDir, err)
	}
	return filepath.Join(home, ".cache", "dyad"), nil
}

// Open opens the cache in dir, making an empty one if there is none.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{dir: dir, path: layout.Path(dir)}
	err := c.locked(func() error {
		_, err := os.Stat(filepath.Join(dir, "index.json"))
		switch {
		case err == nil:
			_, err = c.index() // a damaged index is an error, never replaced
			return err
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("cache: %w", err)
		}
		if err := backend.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return fmt.Errorf("cache: making %s: %w", dir, err)
		}
		return c.writeIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Dir is where the cache is.
func (c *Cache) Dir() string { return c.dir }

// canonical is the full form of a reference, as the cache stores it and
// as LinuxKit writes it: registry, repository, and tag or digest, with
// Docker Hub as docker.io.
func canonical(r name.Reference) string {
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		return repo + "@" + d.DigestStr()
	}
	return repo + ":" + r.Identifier()
}

// Entry is an image in the cache.
type Entry struct {
	Ref    string
	Digest v1.Hash
	// Size is the sum of the image's config and compressed layers as
	// stored (the manifest left out).
	Size int64
}

// Put stores img under ref, replacing what ref named before.
func (c *Cache) Put(ref string, img v1.Image) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("cache: %q: %w", ref, err)
	}
	full := canonical(r)
	err = c.locked(func() error {
		if err := c.path.WriteImage(img); err != nil {
			return fmt.Errorf("cache: writing %s: %w", full, err)
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return fmt.Errorf("cache: %s: %w", full, err)
		}
		desc.Annotations = map[string]string{RefAnnotation: full}
		idx, err := c.index()
		if err != nil {
			return err
		}
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool {
			return d.Annotations[RefAnnotation] == full
		})
		idx.Manifests = append(idx.Manifests, *desc)
		return c.writeIndex(idx)
	})
	return full, err
}

// Image returns the image stored under ref, which may also name it by
// digest (REPOSITORY@sha256:...).
func (c *Cache) Image(ref string) (v1.Image, string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, "", fmt.Errorf("cache: %q: %w", ref, err)
	}
	full := canonical(r)
	idx, err := c.index()
	if err != nil {
		return nil, "", err
	}
	byDigest, isDigest := r.(name.Digest)
	for _, d := range idx.Manifests {
		stored := d.Annotations[RefAnnotation]
		if stored == full || (isDigest && d.Digest.String() == byDigest.DigestStr() && sameRepo(stored, r)) {
			img, err := c.path.Image(d.Digest)
			if err != nil {
				return nil, "", fmt.Errorf("cache: %s: %w", full, err)
			}
			return img, stored, nil
		}
	}
	return nil, "", fmt.Errorf("cache: %s: %w", full, ErrNotFound)
}

// ErrNotFound means the cache holds no image under a reference.
var ErrNotFound = errors.New("not in the cache")

func sameRepo(stored string, r name.Reference) bool {
	s, err := name.ParseReference(stored)
	return err == nil && s.Context().String() == r.Context().String()
}

// List returns the cache's entries, sorted by reference.
func (c *Cache) List() ([]Entry, error) {
	idx, err := c.index()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, d := range idx.Manifests {
		out = append(out, Entry{Ref: d.Annotations[RefAnnotation], Digest: d.Digest, Size: c.storedSize(d.Digest)})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// storedSize sums the blobs of the image whose manifest has digest d,
// from the manifest alone; 0 when it cannot be read.
func (c *Cache) storedSize(d v1.Hash) int64 {
	b, err := c.path.Bytes(d)
	if err != nil {
		return 0
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return 0
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// Export writes the image stored under ref as a tarball that docker load
// and podman load accept.
func (c *Cache) Export(ref string, w io.Writer) error {
	img, stored, err := c.Image(ref)
	if err != nil {
		return err
	}
	r, err := name.ParseReference(stored)
	if err != nil {
		return fmt.Errorf("cache: %s: %w", stored, err)
	}
	// Stored by digest only, the tarball carries no tag.
	return tarball.Write(r, img, w)
}

// Import stores every tagged image of a docker-load tarball and returns
// their references.
func (c *Cache) Import(file string) ([]string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, fmt.Errorf("cache: %s: %w", file, err)
	}
	var refs []string
	for i, d := range m {
		if len(d.RepoTags) == 0 {
			return refs, fmt.Errorf("cache: %s: image %d has no tag to store it under", file, i+1)
		}
		for _, t := range d.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return refs, fmt.Errorf("cache: %s: %w", file, err)
			}
			img, err := tarball.ImageFromPath(file, &tag)
			if err != nil {
				return refs, fmt.Errorf("cache: %s: %s: %w", file, t, err)
			}
			full, err := c.Put(t, img)
			if err != nil {
				return refs, err
			}
			refs = append(refs, full)
		}
	}
	return refs, nil
}

// Push sends the image stored under ref to its registry.
func (c *Cache) Push(ctx context.Context, ref string, opts ...remote.Option) error {
	img, stored, err := c.Image(ref)
	if err != nil {
		return err
	}
	r, err := name.ParseReference(stored)
	if err != nil {
		return fmt.Errorf("cache: %s: %w", stored, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(r, img, opts...); err != nil {
		return fmt.Errorf("cache: pushing %s: %w", stored, err)
	}
	return nil
}

// Pull fetches ref from its registry (the image for this machine's
// platform when ref names an index) and stores it.
func (c *Cache) Pull(ctx context.Context, ref string, opts ...remote.Option) (string, v1.Hash, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", v1.Hash{}, fmt.Errorf("cache: %q: %w", ref, err)
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(platform)}, opts...)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return "", v1.Hash{}, fmt.Errorf("cache: pulling %s: %w", canonical(r), err)
	}
	if _, byDigest := r.(name.Digest); byDigest && desc.MediaType.IsIndex() {
		// The cache stores one image per reference: a digest that names
		// an index would be stored over an image of another digest.
		return "", v1.Hash{}, fmt.Errorf("cache: %s names an index of images: pull it by tag, or by the digest of the %s image", canonical(r), platform)
	}
	img, err := desc.Image()
	if err != nil {
		return "", v1.Hash{}, fmt.Errorf("cache: pulling %s: %w", canonical(r), err)
	}
	full, err := c.Put(ref, img)
	if err != nil {
		return "", v1.Hash{}, err
	}
	d, err := img.Digest()
	return full, d, err
}

func (c *Cache) index() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("cache: %s: %w", filepath.Join(c.dir, "index.json"), err)
	}
	return &idx, nil
}

// writeIndex replaces index.json atomically, so that a crash leaves the
// old index or the new one, never half of one.
func (c *Cache) writeIndex(idx *v1.IndexManifest) error {
	b, err := json.MarshalIndent(idx, "", "   ")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := backend.WriteFile(filepath.Join(c.dir, "index.json"), b, 0o644); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// locked runs fn holding the cache's lock, so that two dyad commands do
// not lose each other's entries.
func (c *Cache) locked(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(c.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("cache: locking %s: %w", c.dir, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}
