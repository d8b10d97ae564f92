// Package loader owns the BPF data plane: it creates the overlay device,
// loads the programs compiled from bpf/ (bpf2go output committed in this
// directory), attaches them (tcx and XDP links), pins maps and links under
// /sys/fs/bpf/re6st/<instance>/ so that forwarding survives the process, and
// offers a typed API over the maps: routes, tunnels and counters. Nothing
// else in the project touches a BPF map.
package loader
