// Command re6st-bench measures re6st-bpf against plain kernel forwarding and
// OpenVPN on network-namespace chains of 1 and 3 tunnel hops, and writes
// results.md, results.json and results.png (see docs/bench.md). `make
// bench` runs it; BENCH_QUICK=1 or --quick makes a short run. Needs root.
package main
