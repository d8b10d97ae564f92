// Package control carries the node's control traffic over the underlay:
// Babel on each tunnel and the node protocol between tunnel ends. It owns
// the sockets, the dispatch of what arrives by UDP port, and the framing.
//
// The data plane (bpf/) forwards and encapsulates; it passes up to the
// daemon, still encapsulated, Babel (UDP port 6696: CONTROL_PORT_BABEL in
// bpf/include/types.h, exported as loader.BabelPort and tested equal to
// babel.Port), packets to link-local or
// multicast destinations, and anything from an address that is not a
// tunnel endpoint yet (tunnel set-up): see is_control in
// bpf/include/underlay.h. Conn reads them from the FOU port (UDP) and a
// raw GRE socket, parses the inner IPv6/UDP datagram and hands it to
// Babel's link for the tunnel it came from, or to the node protocol.
//
// Conn sends its own control packets encapsulated by hand, from the FOU
// port or the raw GRE socket, so that they follow the tunnel traffic's
// path and NAT mapping. The framing (frame.go) mirrors what outer_build
// (bpf/include/common.h) puts around an inner packet, minus the IPv4
// header the kernel's sockets add:
//
//	FOU: IPv4 | UDP (to the peer's FOU port; the kernel sets our port) | inner IPv6
//	GRE: IPv4 | GRE (flags: key bit only, protocol 0x86dd, key if any) | inner IPv6
//
// The inner packet is IPv6 (hop limit 255, as link-local control traffic)
// carrying UDP with its checksum (mandatory over IPv6), no extension
// header. The data plane's FOU source port is a flow hash, or our FOU port
// for tunnels through a NAT; the daemon always sends from its FOU port.
package control
