// Package netparams builds and reads the network parameters a registry
// publishes (re6st's getNetworkConfig): the registry settings, the CRL, the
// CA-signed version, and the Babel HMAC keys encrypted for each node. It
// also holds the three-slot Babel key rotation of re6st's updateHMAC.
//
// The document is zlib-compressed JSON. Keys whose values are base64 are
// listed under the empty key (re6st lists "version" there); the Babel keys
// are base64 of the key RSA-encrypted to the requesting node, and an empty
// string means "accept unsigned packets".
package netparams
