// Package bgp embeds a GoBGP speaker (github.com/osrg/gobgp/v3's pkg/server,
// in process, no separate daemon) for a re6st border gateway.
//
// A Speaker owns its GoBGP server from Start to Stop. It opens the sessions
// given as Peers (or in a GoBGP configuration file), announces and withdraws
// IPv6 prefixes tagged with the network's BGP large community
// (Announce/Withdraw), and keeps the best route of every prefix its peers
// give it (Learned, with a change notification). Its import policy accepts
// nothing inside the re6st network's own prefix: such a route is rejected by
// GoBGP's policy and logged. Sessions reports each session's state and
// prefix counts for status and metrics.
package bgp
