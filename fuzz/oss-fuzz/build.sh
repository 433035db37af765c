#!/bin/bash -eu
# OSS-Fuzz's and ClusterFuzzLite's build of dyad's fuzz targets, run in
# gcr.io/oss-fuzz-base/base-builder-go with the tree in $SRC/dyad.
# scripts/fuzz-build (make fuzz-build) does the same without Docker.
#
# Every target is found by dyad-fuzz, so a new one needs no line here; it
# also checks first that compile_native_go_fuzzer can build each (its file
# found by grepping for the name, arguments of plain types), and writes
# each target's seed corpus (in libFuzzer's encoding of go test's seeds)
# as $OUT/NAME_seed_corpus.zip and its dictionary as $OUT/NAME.dict.
cd "$SRC/dyad"
. fuzz/oss-fuzz/versions.sh

# compile_native_go_fuzzer's harness imports this package.
go get "github.com/AdamKorcz/go-118-fuzz-build/testing@$GO118_FUZZ_BUILD"

go run ./fuzz/cmd/dyad-fuzz check
for target in $(go run ./fuzz/cmd/dyad-fuzz targets); do
	compile_native_go_fuzzer github.com/dyad-project/dyad/fuzz "$target" "$target"
done
go run ./fuzz/cmd/dyad-fuzz seeds -out "$OUT"
