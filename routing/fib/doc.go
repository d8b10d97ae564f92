// Package fib writes the routes Babel selects into forwarding tables: the
// data plane's route map (through package loader) on re6st nodes, and the
// kernel routing table when re6stnet runs as a standalone Babel router.
//
// A Writer follows a babel.Router's route changes and applies them, in
// order, to one Backend. Each change is a single atomic replace or delete
// in the backend (a netlink RTM_NEWROUTE with NLM_F_REPLACE, a BPF map
// update), so readers never see a missing or half-written route while a
// next hop changes.
package fib
