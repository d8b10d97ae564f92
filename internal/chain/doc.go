// Package chain builds a line of network namespaces joined by IPv4 veth
// links, with the re6st-bpf data plane on every node and tunnels between
// neighbours (or device tunnels: a WireGuard link, Chain.WireGuardLink),
// plus plain IPv6 addresses on the same links as a reference.
// Integration tests and benchmarks share it.
package chain
