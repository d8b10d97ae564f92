// Package wire holds the byte-level conventions of re6st protocol 10 that
// the registry server and its clients share: the order-preserving integer
// encoding used by signed network versions, the binary-string prefixes and
// their certificate common names, the network prefix encoded in the CA's
// serial number, the hello secret, and the HMAC-SHA1 hash chain that
// authenticates registry calls.
//
// Nothing here does I/O; every function is deterministic given its inputs
// (except NewHelloSecret, which reads the clock and crypto/rand).
package wire
