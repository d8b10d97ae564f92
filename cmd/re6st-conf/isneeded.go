package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// checkNeeded is --is-needed: an error when the kernel's route to the
// network's first address has a source inside the network, i.e. this host
// already is part of it (re6st's `ip -6 route get` test).
func checkNeeded(networkBits string) error {
	network, err := nodeproto.PrefixOf(netip.PrefixFrom(netip.IPv6Unspecified(), 0), networkBits)
	if err != nil {
		return fmt.Errorf("the registry's CA: %w", err)
	}
	routes, err := netlink.RouteGet(net.IP(network.Addr().AsSlice()))
	if err != nil {
		return nil // no route to the network: re6st is needed
	}
	for _, r := range routes {
		if src, ok := netip.AddrFromSlice(r.Src); ok && network.Contains(src) {
			return fmt.Errorf("already part of %s: this host routes it from %s", network, src)
		}
	}
	return nil
}
