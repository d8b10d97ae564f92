// Package cluster runs a re6st network on an internet from package
// internet: a CA made with openssl, re6st-registry on the registry host,
// every node enrolled with re6st-conf and running re6stnet, all as real
// processes of the real binaries, each in its own process group with its
// log in a work directory.
//
// Start (or ForTest in tests) makes the CA, starts the registry and enrols
// the nodes; StartNodes then starts re6stnet on every node. A node's
// overlay address is computed from its certificate (<prefix>::1), so it is
// known before the daemon runs. Reachability pings every overlay address
// from every node in parallel.
//
// The binaries come from a directory: Build compiles them for a test,
// programs such as re6st-demo use the ones `make build` puts in bin/.
package cluster
