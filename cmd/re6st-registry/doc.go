// Command re6st-registry runs a re6st network's registry (CA, prefix
// allocator, network parameters, bootstrap service) with re6st's options,
// and administers a running one: tokens, revocation, node and prefix
// listings, Babel key rotation.
package main
