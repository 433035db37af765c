package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

func cacheList(args []string, stdout io.Writer) error {
	if _, err := positional("cache ls", args); err != nil {
		return err
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	entries, err := c.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tDIGEST\tSIZE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%.2f MiB\n", e.Ref, e.Digest, float64(e.Size)/(1<<20))
	}
	return tw.Flush()
}

func cacheExport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cache export", flag.ContinueOnError)
	out := fs.String("o", "", "the tarball to write")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errors.New("cache export: want REF -o FILE")
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	// Written beside the target and renamed, so that a failed export
	// leaves no half tarball under the name asked for.
	f, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+"-*")
	if err != nil {
		return fmt.Errorf("cache export: %w", err)
	}
	defer os.Remove(f.Name())
	err = c.Export(pos[0], f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), *out)
	}
	if err != nil {
		return fmt.Errorf("cache export: %w", err)
	}
	fmt.Fprintln(stdout, *out)
	return nil
}

func cacheImport(args []string, stdout io.Writer) error {
	pos, err := positional("cache import", args, "FILE")
	if err != nil {
		return err
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	refs, err := c.Import(pos[0])
	for _, r := range refs {
		fmt.Fprintln(stdout, r)
	}
	return err
}

func push(ctx context.Context, args []string, stdout io.Writer) error {
	pos, err := positional("push", args, "REF")
	if err != nil {
		return err
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	if err := c.Push(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintln(stdout, pos[0])
	return nil
}

func pull(ctx context.Context, args []string, stdout io.Writer) error {
	pos, err := positional("pull", args, "REF")
	if err != nil {
		return err
	}
	c, err := openCache()
	if err != nil {
		return err
	}
	full, d, err := c.Pull(ctx, pos[0])
	if err != nil {
		return err
	}
	if strings.Contains(full, "@") {
		fmt.Fprintln(stdout, full)
	} else {
		fmt.Fprintf(stdout, "%s@%s\n", full, d)
	}
	return nil
}
