// Package tunnels holds the tunnel manager's policy, re6st's algorithm
// (re6stnet.md §3.2): how many outgoing tunnels a node keeps, which tunnel
// it replaces every refresh period, and in which order it tries peers. The
// node daemon (package node) applies it; the node protocol and the peer
// cache live in the subpackages nodeproto and peercache.
package tunnels
