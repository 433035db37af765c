package fuzz

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dyad-project/dyad/fuzz/internal/targets"
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
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for i, s := range seeds {
		b, err := targets.FormatCorpus(s...)
		if err != nil {
			return fmt.Errorf("%s: seed %d: %w", name, i, err)
		}
		sum := sha256.Sum256(b)
		path := filepath.Join(dir, hex.EncodeToString(sum[:8]))
		if write {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return err
			}
			continue
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
