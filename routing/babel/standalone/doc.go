// Package standalone runs a Babel router on real interfaces, the way
// babeld does: UDP on each interface, announced prefixes, learned routes
// installed in the kernel, state served on a control socket. It is what
// `re6stnet babel` runs, and a drop-in for babeld on a LAN.
package standalone
