// Package nodeproto is the authenticated node-to-node control protocol of
// re6st (UDP port 326), socket-free: the node daemon owns the sockets,
// passes every datagram to Node.Receive and sends what Node gives to
// Config.Send, either over the overlay (to a peer's subnet-router anycast
// address) or directly to a peer's underlay endpoint before a tunnel
// exists.
//
// Sessions follow re6st's scheme: hello0 (certificate), hello1
// (fingerprint and certificate), hello (RSA-encrypted, signed secret that
// must be newer than any earlier one), then messages with strictly
// increasing sequence numbers and an HMAC (SHA-256 here, SHA-1 in re6st).
// Payload codes 0 to 7 are re6st's; codes 8 and 9 set up FOU/GRE tunnels.
// The registry relay on [::1]:326 (see registry/relay) is served by
// ServeRelay. docs/node-protocol.md describes the frames.
//
// The package also converts between re6st's binary-string prefixes and
// netip prefixes, and parses re6st's address lists.
package nodeproto
