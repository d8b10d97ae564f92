// Command re6st-demo runs a whole re6st-bpf network on one machine: the
// default simulated IPv4 internet of package internet (two ISPs, a NAT
// site, a shared LAN) in network namespaces, re6st-registry on its
// registry host and re6stnet on every host, enrolled with re6st-conf. It
// waits until every node pings every other node's overlay address, prints
// the reachability matrix and one node's status, and ends with
// "demo: N/N nodes reachable" (exit status 1 unless all are).
//
// DEMO_KEEP=1 leaves everything running; `re6st-demo --down` tears it
// down. Ctrl-C tears down at any time. See docs/demo.md.
package main
