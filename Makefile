# re6st-bpf. Every target that needs tools installs them first (deps).
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin

.PHONY: all deps generate build test demo demo-gateways demo-tunnel-types bench clean

all: build

deps:
	@.ci/install-deps

# bpf2go: compiles bpf/ into loader/datapath_bpfel.{go,o} and the
# benchmark's sink into internal/bench/sink/, which are committed so that
# `go build` needs no clang.
generate: deps
	$(GO) generate ./loader/ ./internal/bench/sink/

build: deps
	$(GO) build -o $(BIN)/ ./cmd/...

# Unit, prog.Run, interop and network-namespace tests, under the race
# detector. Tests that need root skip with a reason when not root; CI runs
# as root. /run/netns is made a shared mount point first, before any test
# binary creates a namespace (internal/netns/rundir.go says why).
test: deps
	$(GO) vet ./...
	@if [ "$$(id -u)" = 0 ]; then ip netns add re6st-test-prepare 2>/dev/null; ip netns del re6st-test-prepare; fi
	$(GO) test -race -count=1 -timeout 25m ./...

# A whole re6st network on the embedded default internet (docs/demo.md):
# registry and 9 nodes across two ISPs, a NAT and a LAN, until every node
# reaches every other; then the two-community gateway scenario
# (demo-gateways) and the tunnel types scenario (demo-tunnel-types).
# DEMO_KEEP=1 leaves the network running instead (bin/re6st-demo --down)
# and skips the other parts, which would reuse its namespaces' names.
demo: build
	$(BIN)/re6st-demo --bin $(BIN)
	@if [ -z "$(DEMO_KEEP)" ]; then $(BIN)/re6st-demo --bin $(BIN) --gateways && $(BIN)/re6st-demo --bin $(BIN) --tunnel-types; fi

# Two communities with a BGP gateway each behind bird2 (docs/demo.md): the
# path from an exterior host into each community, through a gateway's kill
# and restart.
demo-gateways: build
	$(BIN)/re6st-demo --bin $(BIN) --gateways

# Nodes offering FOU, WireGuard and OpenVPN over TCP (docs/demo.md): a
# firewall that drops UDP and GRE moves the tunnels across it to OpenVPN,
# its removal back to FOU, a network that encrypts to WireGuard.
demo-tunnel-types: build
	$(BIN)/re6st-demo --bin $(BIN) --tunnel-types

# re6st-bpf against plain kernel forwarding and OpenVPN on 1- and 3-hop
# namespace chains, in 5 interleaved rounds (docs/bench.md): prints the
# Markdown tables and writes bench-results/results.{md,json,png}.
# BENCH_QUICK=1: 2 rounds of short tests (5-7 min here), a smoke test.
# The report ends with the traffic classes and a BGP gateway's transit (BPF
# against kernel forwarding); then the gateway's full-table load
# (docs/gateway.md).
bench: build
	$(BIN)/re6st-bench --out bench-results
	$(GO) test -run '^$$' -bench FullTable -benchtime 1x ./routing/bgp/
	$(GO) test -run '^$$' -bench NativeSync -benchtime 1x ./routing/fib/

clean:
	rm -rf $(BIN)
