// Package peercache is the node's persistent peer cache, re6st's cache.db:
// an SQLite file holding the address list of up to MaxPeers peers (by
// binary prefix) and a small config table for the raw network-parameter
// document. Whether a peer was tried and failed is kept in memory only, as
// re6st's attached in-memory table does: a blacklist until the peer works.
// Pragmas are re6st's (synchronous=OFF, journal_mode=MEMORY); a corrupt
// file is renamed to .bak and a fresh cache started.
package peercache
