# Sourced by fuzz/oss-fuzz/build.sh and scripts/fuzz-build: the version of
# go-118-fuzz-build whose testing package the targets build against, pinned
# so that a build today and a build next year compile the same harness.
GO118_FUZZ_BUILD=v0.0.0-20250520111509-a70c2aa677fa
