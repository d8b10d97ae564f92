// Package node is the re6st-bpf node daemon (re6stnet): it loads the
// certificate and the network parameters, brings the data plane up, runs
// Babel on every tunnel and LAN interface, speaks the node protocol, keeps
// a random mesh of tunnels with the tunnel manager, and serves its status
// on a control socket and, optionally, Prometheus metrics.
//
// The data plane forwards and encapsulates; the daemon only sees the
// control traffic the BPF programs pass up still encapsulated: Babel and
// node-protocol packets to link-local destinations, and anything from an
// address that is not a tunnel endpoint yet (tunnel setup). It sends its
// own control packets encapsulated by hand, from the FOU port (UDP) or a
// raw GRE socket, so that they follow the same path and NAT mapping as the
// tunnel traffic.
package node
