# dyad's build. The entry points are `make run` (build, then the demo) and
# `make test` (build, then every check CI runs); see README.md.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# Go lives in /usr/local/go on the project's machines.
export PATH := $(PATH):/usr/local/go/bin

GO ?= go
BIN := $(CURDIR)/bin
# Integration tests find the binaries through DYAD_BIN.
export DYAD_BIN := $(BIN)

# Static PIEs, with cgo only for libseccomp (linked statically from Debian's
# libseccomp-dev), reproducible: no paths, no build ids.
GOBUILD := CGO_ENABLED=1 $(GO) build -buildmode=pie -tags netgo,osusergo -trimpath -buildvcs=false \
	-ldflags '-s -w -buildid= -linkmode external -extldflags "-static-pie -Wl,--build-id=none"'

.PHONY: all deps build test run bench images clean fuzz fuzz-long fuzz-build fuzz-seeds

all: build

deps:
	scripts/deps

# Always handed to go build, whose cache knows what changed.
build: deps
	$(GOBUILD) -o $(BIN)/dyad-dhcp ./daemons/dhcp/cmd/dyad-dhcp
	$(GOBUILD) -o $(BIN)/dyad-ntp ./daemons/ntp/cmd/dyad-ntp
	$(GOBUILD) -o $(BIN)/dyad-dns ./daemons/dns/cmd/dyad-dns
	$(GOBUILD) -o $(BIN)/bench/ ./bench/cmd/...
	$(GOBUILD) -o $(BIN)/dyad ./linuxkit-builder/cmd/dyad
	@for b in dyad-dhcp dyad-ntp dyad-dns; do \
		file -b $(BIN)/$$b | grep -q 'static-pie linked' || \
			{ echo "bin/$$b is not a static PIE: $$(file -b $(BIN)/$$b)" >&2; exit 1; }; \
	done

# Tests need root: they create network namespaces (inside their own mount
# namespace; nothing of the host is changed).
test: deps build
	@unformatted=$$(gofmt -l .); \
	if [[ -n $$unformatted ]]; then echo "gofmt -l lists files to format:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

run: deps build
	BIN=$(BIN) scripts/demo

# dyad-dhcp side by side with its peers (bench/RESULTS.md), and the
# LinuxKit image booted in QEMU with dyad's DHCP image and with udhcpc
# (bench/RESULTS-vm.md).
bench: deps build
	DYAD_BENCH=1 DYAD_BENCH_CMD='make bench' $(GO) test -count=1 -timeout 60m -run '^TestBench(DHCP|VM|NTP|DNS)$$' -v ./bench/

# Every fuzz target of fuzz/ with go test -fuzz, 10 s each (CI runs it);
# fuzz-long for a campaign: make fuzz-long DURATION=2h (a target), or
# DURATION=10000000x (executions a target).
fuzz: deps
	scripts/fuzz 10s

fuzz-long: deps
	@[[ -n "$(DURATION)" ]] || { echo "make fuzz-long: say how long a target, e.g. DURATION=2h or DURATION=10000000x" >&2; exit 2; }
	scripts/fuzz $(DURATION)

# Every target built as a libFuzzer binary as OSS-Fuzz builds it
# (go-118-fuzz-build and clang, in a scratch copy), each run 5 s on its
# seeds.
fuzz-build: deps
	scripts/fuzz-build 5

# The seed corpora captured from real exchanges, and those the targets'
# files generate, rewritten into fuzz/testdata/fuzz/.
fuzz-seeds: deps build
	DYAD_FUZZ_SEEDS=1 $(GO) test -count=1 -run 'Seeds$$' ./fuzz/ ./daemons/dhcp/

# Every image of images/ into the cache (~/.cache/dyad, or $DYAD_CACHE).
images: build
	$(BIN)/dyad pkg build $(wildcard images/*/)

clean:
	rm -rf $(BIN)
