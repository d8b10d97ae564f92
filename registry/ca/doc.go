// Package ca issues and reads certificates in re6st's format: RSA keys,
// SHA-512 signatures, the node prefix in the subject CN as
// "<prefix as integer>/<length>", a small per-node index in the subject
// serialNumber, and the network prefix encoded in the CA's serial number.
// It also makes the node key and CSR for enrolment and checks CA
// fingerprints.
package ca
