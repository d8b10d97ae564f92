// Package manager is the tunnel manager: the single owner of a node's
// tunnel table and of re6st's tunnel algorithm (re6stnet.md §3.2).
//
// One goroutine, Run, owns the table. Everything else reaches it through
// operations run on that goroutine (Accept, Kill, Tunnels, CheckRevoked),
// so the table needs no lock. The network calls of a tunnel's set-up and
// removal run on goroutines of Run's errgroup and hand their results back
// as operations; Run waits for them before it returns.
//
// Every tick (re6st: 5 s) the manager tears down tunnels to revoked
// certificates, reaps tunnels over which Babel has had no usable link for
// 4 hello intervals, replaces the least useful outgoing tunnel once per
// refresh period (policy in package tunnels), and sets up outgoing
// tunnels up to the client count: to distant peers Babel knows, else to
// cached peers or one from the registry (bootstrap). A tunnel is removed
// without black-holing traffic: its cost rises, Babel moves routes away,
// the peer is asked to do the same, then it goes (drain).
//
// The manager reaches the rest of the node through small interfaces:
// Backend (the encapsulation that carries tunnels: today the BPF data
// plane), Babel (the routing protocol's view of tunnels), Protocol (the
// node protocol), PeerCache, Registry and Params. A Clock drives the
// loop, so that tests run the algorithm on a virtual clock without root.
package manager
