// Package bench measures re6st-bpf against plain kernel forwarding and
// OpenVPN on the same network-namespace chains (internal/chain): one
// tunnel hop (2 nodes) and three (4 nodes) over IPv4 veth links.
//
// Every variant runs the same workloads: TCP throughput with 1 and 4
// iperf3 streams, the small-packet UDP rate and loss under an XDP
// live-frame generator (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, which
// saturates the transit node where iperf3 cannot), RTT percentiles idle and
// under a TCP stream, and CPU time per byte. It also measures the data
// plane's programs with BPF_PROG_RUN repeat and the route map's update rate
// and memory. Every figure is given as a ratio to the plain reference on
// the same chain; Results is written as Markdown, JSON and a PNG chart.
//
// cmd/re6st-bench is the command line; `make bench` runs it.
package bench
