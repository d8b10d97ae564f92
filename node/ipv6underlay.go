package node

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// The IPv6 underlay carries OpenVPN only (re6st's tcp6 and udp6 items):
// FOU, GRE and WireGuard are the data plane's and IPv4's.

// unusableIPv6 are the flags of an address no peer should be given: not
// yet checked or refused by DAD, on its way out, or a privacy address
// that changes (a server needs one that stays).
const unusableIPv6 = unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED | unix.IFA_F_TEMPORARY

// globalIPv6 is a global unicast address in 2000::/3, where the kernel's
// route tells the interface and source towards the IPv6 internet.
var globalIPv6 = net.ParseIP("2000::")

// ipv6Underlay are the IPv6 addresses advertised for the OpenVPN servers:
// --ipv6's, or else those found now: the global addresses of the underlay
// interfaces (the kernel's scope global: unique local addresses too, as
// the IPv4 side takes private addresses) and the source the kernel picks
// towards the IPv6 internet (through the default IPv6 route, which may
// leave by an interface without IPv4); never one of the overlay network's
// (OpenVPN must not run over re6st itself, which re6st's --default also
// avoids). None with --ipv6 none or without an OpenVPN type.
func (n *Node) ipv6Underlay() []netip.Addr {
	if n.cfg.NoIPv6 || len(n.cfg.ovpnServers()) == 0 {
		return nil
	}
	if len(n.cfg.IPv6) > 0 {
		return n.cfg.IPv6
	}
	var out []netip.Addr
	// add takes the usable global addresses of link; only src if valid.
	add := func(l netlink.Link, src netip.Addr) {
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V6)
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || src.IsValid() && ip != src || a.Scope != unix.RT_SCOPE_UNIVERSE || a.Flags&unusableIPv6 != 0 {
				continue
			}
			if !ip.Is4In6() && ip.IsGlobalUnicast() && !n.id.network.Contains(ip) && !slices.Contains(out, ip) {
				out = append(out, ip)
			}
		}
	}
	for _, name := range n.dp.State.Underlays() {
		if l, err := netlink.LinkByName(name); err == nil {
			add(l, netip.Addr{})
		}
	}
	if routes, err := netlink.RouteGet(globalIPv6); err == nil && len(routes) > 0 {
		src, ok := netip.AddrFromSlice(routes[0].Src)
		if l, err := netlink.LinkByIndex(routes[0].LinkIndex); ok && err == nil {
			add(l, src)
		}
	}
	return out
}

// ipv6Items are our OpenVPN items over IPv6: re6st's ip,port,tcp6 and
// ip,port,udp6, after the IPv4 items as re6st lists them.
func (n *Node) ipv6Items() []nodeproto.Address {
	var out []nodeproto.Address
	for _, ip := range n.ipv6Underlay() {
		for _, s := range n.cfg.ovpnServers() {
			if s.ipv6 {
				out = append(out, nodeproto.Address{IP: ip, Port: n.cfg.OpenVPNPort, Proto: s.encap})
			}
		}
	}
	return out
}

// ipv6Source is our source towards a peer's IPv6 underlay address, as
// the kernel picks it; an error if the peer's address or that source is
// in the overlay network (the route would go through re6st itself), or
// with --ipv6 none.
func (n *Node) ipv6Source(remote netip.Addr) (netip.Addr, error) {
	if n.cfg.NoIPv6 {
		return netip.Addr{}, fmt.Errorf("%s: no OpenVPN over IPv6 (--ipv6 none)", remote)
	}
	if n.id.network.Contains(remote) {
		return netip.Addr{}, fmt.Errorf("%s is in the overlay network: not an underlay address", remote)
	}
	routes, err := netlink.RouteGet(net.IP(remote.AsSlice()))
	if err != nil || len(routes) == 0 {
		return netip.Addr{}, fmt.Errorf("no IPv6 route to %s", remote)
	}
	src, ok := netip.AddrFromSlice(routes[0].Src)
	if !ok || !src.Is6() || n.id.network.Contains(src) {
		return netip.Addr{}, fmt.Errorf("no IPv6 underlay source towards %s", remote)
	}
	return src, nil
}
