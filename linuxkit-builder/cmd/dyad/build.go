package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dyad-project/dyad/linuxkit-builder/assemble"
	"github.com/dyad-project/dyad/linuxkit-builder/cache"
	"github.com/dyad-project/dyad/linuxkit-builder/lkfile"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
)

// buildImage is dyad build: LinuxKit YAML files into a bootable system.
func buildImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	format := fs.String("format", "kernel+initrd", "output: "+strings.Join(assemble.Formats, " or "))
	name := fs.String("name", "", "name of the outputs (default: the first file's name without .yml)")
	dir := fs.String("dir", ".", "directory of the outputs")
	dryRun := fs.Bool("dry-run", false, "validate and plan only, with the images already in the cache")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("build: no YAML file given")
	}
	if !*dryRun && !slices.Contains(assemble.Formats, *format) {
		return fmt.Errorf("build: unknown format %q (want %s)", *format, strings.Join(assemble.Formats, " or "))
	}
	var parsed []*lkfile.File
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("build: %w", err)
		}
		f, err := lkfile.Parse(file, filepath.Dir(file), b)
		if err != nil {
			return err
		}
		parsed = append(parsed, f)
	}
	merged, err := lkfile.Merge(parsed...)
	if err != nil {
		return err
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	opt := assemble.Options{
		Source:  cacheSource{c: c, pull: !*dryRun},
		Package: packageRef(c, !*dryRun, stderr),
		DryRun:  *dryRun,
		Log:     stderr,
	}
	res, err := assemble.Build(ctx, merged, opt)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "%s: valid; %d files in the root, %.1f MiB\n",
			strings.Join(files, " "), res.Tree.Len(), float64(res.Tree.Size())/(1<<20))
		return nil
	}
	if *name == "" {
		*name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(files[0]), ".yml"), ".yaml")
	}
	written, err := assemble.Write(res, *format, *dir, *name)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	for _, w := range written {
		fmt.Fprintln(stdout, w)
	}
	return nil
}

// cacheSource gets images from the cache, pulling those it lacks unless
// told not to.
type cacheSource struct {
	c    *cache.Cache
	pull bool
}

func (s cacheSource) Image(ctx context.Context, ref string) (v1.Image, error) {
	img, _, err := s.c.Image(ref)
	if err == nil || !s.pull {
		return img, err
	}
	if _, _, perr := s.c.Pull(ctx, ref); perr != nil {
		return nil, fmt.Errorf("%s is not in the cache (%v), and pulling it failed: %w", ref, err, perr)
	}
	img, _, err = s.c.Image(ref)
	return img, err
}

// packageRef resolves an @pkg: directory to the reference its build
// gives, and builds the image into the cache when it is not there yet.
func packageRef(c *cache.Cache, build bool, log io.Writer) func(ctx context.Context, dir string) (string, error) {
	return func(ctx context.Context, dir string) (string, error) {
		p, err := pkgbuild.Read(dir)
		if err != nil {
			return "", err
		}
		ref := pkgbuild.Ref(ctx, p, pkgbuild.Options{})
		if _, _, err := c.Image(ref); err == nil || !build {
			return ref, nil
		}
		fmt.Fprintf(log, "building %s from %s\n", ref, dir)
		res, err := pkgbuild.Build(ctx, p, pkgbuild.Options{})
		if err != nil {
			return "", err
		}
		// Stored under the reference looked up, even should the tree
		// have changed since and Build have named it otherwise.
		if _, err := c.Put(ref, res.Image); err != nil {
			return "", err
		}
		return ref, nil
	}
}
