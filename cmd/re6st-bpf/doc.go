// Command re6st-bpf inspects and, for static setups and debugging, programs
// the re6st-bpf data plane: up/down, tunnels, routes and status.
package main
