// Package sink is the benchmark's transit-ceiling sink: a tiny XDP program
// (sink.c, compiled by bpf2go into sink_bpfel.{go,o}, which are committed
// so that `go build` needs no clang) that counts every frame it sees and
// drops it. internal/bench attaches it to the last node's underlay
// interface, so that a small-packet test measures what the transit nodes
// forward rather than what the last node's stack can take in.
//
// Regenerate with `go generate ./internal/bench/sink/`.
package sink
