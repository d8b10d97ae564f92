package node

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// TestIPv6Underlay: in a namespace whose underlay eth0 has a global, a
// unique local, a deprecated and an overlay address, and whose default
// IPv6 route leaves by up6 (no IPv4 there), the addresses found are
// eth0's global and unique local ones and up6's source; another
// interface's are not. --ipv6 gives them instead, --ipv6 none none; the
// source towards a peer's IPv6 address is up6's, and a peer address in the
// overlay network is refused.
func TestIPv6Underlay(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.ForTest(t, "ipv6-underlay")
	n := &Node{cfg: &Config{TunnelTypes: []string{"fou", "openvpn-tcp"}},
		id: &identity{network: netip.MustParsePrefix("2001:db8:42::/48")},
		dp: &loader.Datapath{State: loader.State{Attachments: []loader.Attachment{{Interface: "eth0"}}}}}
	var found []netip.Addr
	var src netip.Addr
	var srcErr, overlayErr error
	require.NoError(t, ns.Do(func() error {
		for _, name := range []string{"eth0", "up6", "other"} {
			// A veth (the kernel here has no dummy module), both ends up.
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
				return err
			}
			for _, end := range []string{name, name + "p"} {
				l, err := netlink.LinkByName(end)
				if err != nil {
					return err
				}
				if err := netlink.LinkSetUp(l); err != nil {
					return err
				}
			}
		}
		for _, a := range []struct {
			dev, prefix string
			deprecated  bool
		}{
			{"eth0", "2001:db8:1::2/64", false}, {"eth0", "fd00:1::2/64", false}, {"eth0", "2001:db8:2::2/64", true},
			{"eth0", "2001:db8:42:5::1/64", false}, {"up6", "2001:db8:ffff::2/64", false}, {"other", "2001:db8:3::2/64", false},
		} {
			l, err := netlink.LinkByName(a.dev)
			if err != nil {
				return err
			}
			addr, err := netlink.ParseAddr(a.prefix)
			if err != nil {
				return err
			}
			addr.Flags = 0x02 // IFA_F_NODAD
			if a.deprecated {
				addr.ValidLft, addr.PreferedLft = 3600, 0
			}
			if err := netlink.AddrAdd(l, addr); err != nil {
				return err
			}
		}
		up6, err := netlink.LinkByName("up6")
		if err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: up6.Attrs().Index, Gw: net.ParseIP("2001:db8:ffff::1"),
			Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}); err != nil {
			return err
		}
		found = n.ipv6Underlay()
		src, srcErr = n.ipv6Source(netip.MustParseAddr("2001:db8:77::2"))
		_, overlayErr = n.ipv6Source(netip.MustParseAddr("2001:db8:42:7::2"))
		return nil
	}))
	require.ElementsMatch(t, []netip.Addr{netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("fd00:1::2"),
		netip.MustParseAddr("2001:db8:ffff::2")}, found)
	require.NoError(t, srcErr)
	require.Equal(t, netip.MustParseAddr("2001:db8:ffff::2"), src)
	require.Error(t, overlayErr, "a peer address in the overlay network")

	n.cfg.IPv6 = []netip.Addr{netip.MustParseAddr("2001:db8:9::9")}
	require.Equal(t, n.cfg.IPv6, n.ipv6Underlay(), "--ipv6 ADDR")
	n.cfg.IPv6, n.cfg.NoIPv6 = nil, true
	require.Empty(t, n.ipv6Underlay(), "--ipv6 none")
	_, err := n.ipv6Source(netip.MustParseAddr("2001:db8:77::2"))
	require.Error(t, err, "--ipv6 none: no OpenVPN over IPv6")
}

// The registry takes at most 8 items in 200 bytes, and refuses a longer
// list whole: the report drops the last items (OpenVPN's IPv6 ones) to fit.
func TestReportable(t *testing.T) {
	var addrs []nodeproto.Address
	for _, p := range []string{"fou", "gre", "wireguard", "openvpn-tcp", "openvpn-udp"} {
		port := uint16(1194)
		if p == "gre" {
			port = 0
		}
		addrs = append(addrs, nodeproto.Address{IP: netip.MustParseAddr("198.18.2.2"), Port: port, Proto: p, Country: "FR"})
	}
	for _, ip := range []string{"2001:db8:1234:5678:9abc:def0:1234:5678", "2001:db8:1234:5678:9abc:def0:1234:5679"} {
		for _, p := range []string{"openvpn-tcp", "openvpn-udp"} {
			addrs = append(addrs, nodeproto.Address{IP: netip.MustParseAddr(ip), Port: 1194, Proto: p, Country: "FR"})
		}
	}
	got := reportable(addrs)
	require.LessOrEqual(t, len(nodeproto.FormatAddresses(got)), server.MaxAddressLength)
	require.Equal(t, addrs[:len(got)], got, "the head of the list")
	require.Len(t, got, 6, "the IPv4 items and the first IPv6 one fit")
	require.Equal(t, addrs[:2], reportable(addrs[:2]), "a short list whole")
	require.Len(t, reportable(append(addrs[:5:5], addrs[:5]...)), server.MaxAddressesPerNode)
}
