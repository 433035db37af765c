package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/dyad-project/dyad/linuxkit-builder/cache"
	"github.com/dyad-project/dyad/linuxkit-builder/pkgbuild"
)

// pkgBuild builds each package directory's image and stores it in the
// cache under ORG/IMAGE:TAG.
func pkgBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pkg build", flag.ContinueOnError)
	org := fs.String("org", "", "organisation (default: build.yml's, else dyad)")
	tag := fs.String("tag", "", "tag (default: build.yml's, else the source's git tree hash)")
	verbose := fs.Bool("v", false, "show the go build command and its output")
	dirs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return errors.New("pkg build: no package directory given")
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	opt := pkgbuild.Options{Org: *org, Tag: *tag}
	if *verbose {
		opt.Log = stderr
	}
	for _, dir := range dirs {
		p, err := pkgbuild.Read(dir)
		if err != nil {
			return err
		}
		res, err := pkgbuild.Build(ctx, p, opt)
		if err != nil {
			return err
		}
		full, err := c.Put(res.Ref, res.Image)
		if err != nil {
			return err
		}
		d, err := res.Image.Digest()
		if err != nil {
			return err
		}
		sizes, err := pkgbuild.Sizes(res.Image)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s@%s\n", full, d)
		fmt.Fprintf(stderr, "  binary %s, image %s compressed, %s uncompressed\n",
			human(res.BinarySize), human(sizes.Compressed), human(sizes.Uncompressed))
	}
	return nil
}

func openCache() (*cache.Cache, error) {
	dir, err := cache.DefaultDir()
	if err != nil {
		return nil, err
	}
	return cache.Open(dir)
}

func human(n int64) string {
	return fmt.Sprintf("%.2f MiB (%d bytes)", float64(n)/(1<<20), n)
}
