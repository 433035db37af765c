// Command dyad-fuzz serves the builds that run dyad's fuzz targets as
// libFuzzer binaries (make fuzz-build, OSS-Fuzz, ClusterFuzzLite):
//
//	dyad-fuzz targets [-dir DIR]            the targets' names, one a line
//	dyad-fuzz check [-dir DIR]              what would break a target there
//	dyad-fuzz seeds [-dir DIR] -out OUT [-unpacked]
//
// seeds writes, for each target, OUT/NAME_seed_corpus.zip (its go test
// seed corpus in libFuzzer's input encoding) and OUT/NAME.dict (its
// dictionary, if it names one); with -unpacked, also OUT/NAME_seeds/ with
// the same inputs as files, for a local run. DIR is the fuzz package
// (default: fuzz); dictionaries are in DIR/dict.
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dyad-project/dyad/internal/fuzztargets"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "dyad-fuzz: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: dyad-fuzz targets|check|seeds [flags]")
	}
	fs := flag.NewFlagSet("dyad-fuzz "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "fuzz", "the fuzz package's directory")
	out := fs.String("out", "", "seeds: the output directory")
	unpacked := fs.Bool("unpacked", false, "seeds: also write each target's inputs as files")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%s: unexpected arguments %q", args[0], fs.Args())
	}
	ts, err := fuzztargets.Find(*dir)
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return fmt.Errorf("no fuzz targets in %s", *dir)
	}
	switch args[0] {
	case "targets":
		for _, t := range ts {
			fmt.Fprintln(stdout, t.Name)
		}
		return nil
	case "check":
		if errs := fuzztargets.Check(*dir, filepath.Join(*dir, "dict"), ts); len(errs) > 0 {
			for _, e := range errs {
				fmt.Fprintln(stdout, e)
			}
			return fmt.Errorf("%d problems", len(errs))
		}
		fmt.Fprintf(stdout, "%d targets, each buildable and seeded\n", len(ts))
		return nil
	case "seeds":
		if *out == "" {
			return fmt.Errorf("seeds: -out is required")
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		for _, t := range ts {
			n, err := writeSeeds(*dir, *out, t, *unpacked)
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			fmt.Fprintf(stdout, "%s: %d seeds\n", t.Name, n)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q (want targets, check or seeds)", args[0])
}

// writeSeeds converts t's corpus into out and copies its dictionary.
func writeSeeds(dir, out string, t fuzztargets.Target, unpacked bool) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, t.CorpusDir(), "*"))
	if err != nil {
		return 0, err
	}
	if unpacked {
		if err := os.MkdirAll(filepath.Join(out, t.Name+"_seeds"), 0o755); err != nil {
			return 0, err
		}
	}
	zf, err := os.Create(filepath.Join(out, t.Name+"_seed_corpus.zip"))
	if err != nil {
		return 0, err
	}
	defer zf.Close()
	zw := zip.NewWriter(zf)
	for _, f := range files {
		vs, err := fuzztargets.ReadCorpusFile(f, t.Params)
		if err != nil {
			return 0, err
		}
		input, err := fuzztargets.LibFuzzerInput(vs)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		// A fixed time, so that the zip is the same for the same seeds.
		w, err := zw.CreateHeader(&zip.FileHeader{Name: filepath.Base(f), Method: zip.Deflate, Modified: time.Unix(0, 0).UTC()})
		if err != nil {
			return 0, err
		}
		if _, err := w.Write(input); err != nil {
			return 0, err
		}
		if unpacked {
			if err := os.WriteFile(filepath.Join(out, t.Name+"_seeds", filepath.Base(f)), input, 0o644); err != nil {
				return 0, err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	if err := zf.Close(); err != nil {
		return 0, err
	}
	if t.Dict != "" {
		b, err := os.ReadFile(filepath.Join(dir, "dict", t.Dict))
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(out, t.Name+".dict"), b, 0o644); err != nil {
			return 0, err
		}
	}
	return len(files), nil
}
