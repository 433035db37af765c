// Package fuzz holds the native Go fuzz targets of dyad, one per parser of
// untrusted bytes, each with a doc comment naming the attack surface it
// covers.
//
// Run one with `go test -fuzz=NAME ./fuzz/`, all of them with `make fuzz`
// (10 s each) or `make fuzz-long DURATION=2h`. Seed corpora live in
// testdata/fuzz/NAME/: the seeds each target's file generates (kept in
// step by its TestNAMESeeds; `make fuzz-seeds` rewrites them), packets
// captured against dnsmasq and kea (TestCaptureFuzzSeeds in daemons/dhcp),
// and every input that once failed, kept as a regression test.
// Dictionaries are in dict/.
//
// OSS-Fuzz and ClusterFuzzLite build the targets with
// oss-fuzz/build.sh; `make fuzz-build` does the same without Docker.
// Targets are found by their signature (cmd/dyad-fuzz), never listed: a
// new one is built, seeded and run everywhere without another change.
// Because OSS-Fuzz finds a target's file by grepping this directory for
// its name, a target's name must appear in its own file and nowhere else
// here, and helpers one target file shares with another must live in a
// file that is not a _test.go file and does not import testing.
package fuzz
