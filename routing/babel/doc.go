// Package babel implements the Babel routing protocol (RFC 8966) with the
// extensions re6st needs: RTT-based link costs (RFC 9616), MAC
// authentication (RFC 8967 with the separate unicast and multicast packet
// counters of RFC 9467) and source-specific routes (RFC 9079).
//
// The package is organised in layers:
//
//   - the codec (Packet, Encoder, ParsePacket and the message types) turns
//     Babel packets into Go values and back, resolving prefix compression,
//     Router-Id and Next Hop state;
//   - the link-cost functions reproduce babeld's integer formulas for
//     2-out-of-3, ETX and the RTT penalty, so that a mixed babeld/re6st-bpf
//     network computes the same metrics;
//   - Router is the protocol engine: neighbour table, route table, source
//     table and feasibility, route selection with hysteresis, triggered
//     updates, route and seqno requests, timers;
//   - a Transport carries packets for one interface: UDP on a real
//     interface (ListenUDP), a point-to-point link fed by the tunnel manager
//     (PointToPoint), or the simulated network of package simnet.
//
// A Router is driven by a Clock, so the same code runs in real time and
// on a virtual clock in simulations. It is safe for concurrent use.
package babel
