// Package client calls a re6st registry (re6st-bpf's or re6st's own, the
// protocol is the same). Client has the public calls used for enrolment
// and the private admin calls; Session, bound to a node's certificate and
// key, makes the authenticated calls of the node daemon: network
// parameters (signature checked, Babel keys decrypted), certificate
// renewal, bootstrap peers, address reports. A Session performs the hello
// handshake itself, keeps the HMAC hash chain, and re-handshakes once when
// the registry lost the session (after a restart, say).
package client
