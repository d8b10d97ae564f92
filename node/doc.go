// Package node is the re6st-bpf node daemon (re6stnet): it loads the
// certificate and the network parameters, brings the data plane up, and
// wires the parts that each own one flow of the node:
//
//   - tunnels/manager: the tunnel table and re6st's tunnel algorithm; the
//     node gives it the BPF data plane as its tunnel backend (bpfBackend)
//     and Babel's view of the tunnels (links);
//   - routing/fib: every route written into the data plane or the kernel;
//   - tunnels/control: the control traffic (Babel and the node protocol)
//     on the underlay;
//   - this package: the network parameters (params.go), status and
//     metrics (status.go, metrics.go), start-up and shutdown (node.go).
//
// Run returns a handle; its goroutines run in an errgroup, and shutdown
// retracts the node's routes, cancels them and waits for them.
package node
