package fuzz

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dyad-project/dyad/internal/fuzztargets"
)

// seedsEnv set to 1 makes syncSeeds write the seeds (make fuzz-seeds).
const seedsEnv = "DYAD_FUZZ_SEEDS"

// syncSeeds keeps a target's corpus directory, testdata/fuzz/NAME, in step
// with the seeds its file generates (those it also gives f.Add): with
// DYAD_FUZZ_SEEDS=1 it writes each there, named by its hash; otherwise it
// returns an error naming a seed that is missing, so that the corpus
// OSS-Fuzz and libFuzzer start from, which knows nothing of f.Add, holds
// them all.
func syncSeeds(name string, seeds [][]any) error {
	dir := filepath.Join("testdata", "fuzz", name)
	write := os.Getenv(seedsEnv) == "1"
	for i, s := range seeds {
		if write {
			if _, err := fuzztargets.WriteSeed(dir, s...); err != nil {
				return fmt.Errorf("%s: seed %d: %w", name, i, err)
			}
			continue
		}
		path, _, err := fuzztargets.SeedPath(dir, s...)
		if err != nil {
			return fmt.Errorf("%s: seed %d: %w", name, i, err)
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: seed %d is not in %s (run make fuzz-seeds): %w", name, i, dir, err)
		}
	}
	return nil
}

// oneArg makes the seeds of a target with one argument syncSeeds' kind.
func oneArg[T any](seeds []T) [][]any {
	out := make([][]any, len(seeds))
	for i, s := range seeds {
		out[i] = []any{s}
	}
	return out
}
