// Package bench measures re6st-bpf against plain kernel forwarding and
// OpenVPN on the same network-namespace chains (internal/chain): one
// tunnel hop (2 nodes) and three (4 nodes) over IPv4 veth links, the
// latter also with mixed tunnel shapes (FOU and GRE, keyed or not, one
// shape per link).
//
// Every variant runs the same workloads: TCP throughput with 1 and 4
// iperf3 streams, the small-packet UDP rate and loss under an XDP
// live-frame generator (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, which
// saturates the transit node where iperf3 cannot), the same with an XDP
// sink (package sink) in place of the last node's stack (the transit
// ceiling), RTT percentiles idle and under a TCP stream, and CPU time per
// byte. The topologies are built once; the workloads then run in
// interleaved rounds, every variant in turn, with the sending and
// receiving ends pinned to fixed CPUs. A figure is the median over the
// rounds; its ratio to the plain reference is taken round by round, and
// reported as the median with the min–max; a goal is PASS or MISS only
// when every round is on the same side of it, UNDECIDED otherwise (Judge).
// The bench also times the data plane's programs with BPF_PROG_RUN and
// the route map's update rate and memory. Results is written as Markdown,
// JSON (with every round's figures) and a PNG chart.
//
// cmd/re6st-bench is the command line; `make bench` runs it.
package bench
