# re6st-bpf. Every target that needs tools installs them first (deps).
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin

.PHONY: all deps generate build test demo bench clean

all: build

deps:
	@.ci/install-deps

# bpf2go: compiles bpf/ into loader/datapath_bpfel.{go,o}, which are
# committed so that `go build` needs no clang.
generate: deps
	$(GO) generate ./loader/

build: deps
	$(GO) build -o $(BIN)/ ./cmd/...

# Unit, prog.Run, interop and network-namespace tests. Tests that need root
# skip with a reason when not root; CI runs as root.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# The main job on an embedded default: a static overlay A - B - C in network
# namespaces, A pinging C through B's data plane, with FOU then GRE.
demo: build
	docs/examples/static-overlay.sh fou auto
	docs/examples/static-overlay.sh gre auto

# Throughput and packet-rate benchmarks (prints figures).
bench: build
	$(GO) test -run '^$$' -bench Transit -benchtime 1x -timeout 30m ./loader/

clean:
	rm -rf $(BIN)
