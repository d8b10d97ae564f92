// Package server is the registry's HTTP API, compatible with re6st
// protocol 10: GET /<method>?<args>, public calls (hello, requestToken,
// requestCertificate, getCa), calls authenticated by the hello secret and
// its HMAC-SHA1 hash chain (every call with a cn argument), and private
// calls allowed only from the authorized origins. It issues and renews
// certificates, allocates prefixes, revokes, publishes the signed network
// parameters, rotates the Babel keys and answers bootstrap requests from
// the addresses nodes report.
//
// Every state change is one store transaction; the answer is sent only
// after it committed.
package server
