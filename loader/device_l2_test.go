package loader_test

import (
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// The link-local addresses of B and C on their layer-2 link.
var (
	l2AddrB = netip.MustParseAddr("fe80::b")
	l2AddrC = netip.MustParseAddr("fe80::c")
)

// A —FOU— B —veth— C, the veth pair standing for an OpenVPN TAP link (a
// layer-2 device at each end, a neighbour behind it). B's and C's tunnels
// over it are layer-2 device tunnels, each with the other's link-local
// address as next hop: B carries A's traffic from FOU into the device and
// from the device into FOU in BPF, without the kernel's forwarding; C
// delivers what comes out of its device locally.
func TestLayer2DeviceTunnelTransit(t *testing.T) {
	inDeviceChains(t, func(t *testing.T, c *chain.Chain, a, b, cc *chain.Node, mtu int) {
		require.NoError(t, netns.Veth(b.NS, "tp0", cc.NS, "tp0"))
		for _, end := range []struct {
			ns   *netns.NS
			addr netip.Addr
		}{{b.NS, l2AddrB}, {cc.NS, l2AddrC}} {
			out, err := end.ns.Run("ip", "link", "set", "tp0", "mtu", strconv.Itoa(mtu))
			require.NoError(t, err, out)
			require.NoError(t, end.ns.AddrAdd("tp0", netip.PrefixFrom(end.addr, 64)))
		}
		for _, ends := range []struct {
			i, j    int
			nexthop netip.Addr
		}{{1, 2, l2AddrC}, {2, 1, l2AddrB}} {
			att, err := c.UseDeviceVia(ends.i, ends.j, deviceTunnel, "tp0", mtu, ends.nexthop)
			require.NoError(t, err)
			require.Equal(t, "device_l2_ingress", att.Program)
			t.Cleanup(func() { att.Close() })
		}
		got, err := b.Datapath.Tunnel(deviceTunnel)
		require.NoError(t, err)
		require.Equal(t, l2AddrC, got.NextHop)

		// Each end learns the other's MAC from its control traffic
		// (here the answers to a ping of its link-local address; in
		// a node, Babel's Hellos).
		for _, p := range []struct {
			ns *netns.NS
			to netip.Addr
		}{{b.NS, l2AddrC}, {cc.NS, l2AddrB}} {
			out, err := p.ns.Run("ping", "-c", "1", "-W", "2", p.to.String()+"%tp0")
			require.NoError(t, err, out)
		}

		requireDeviceTransit(t, a, b, cc)

		// An OpenVPN server's device: another neighbour on the same
		// device is another tunnel; the same neighbour twice is not.
		ifindex, err := b.NS.Ifindex("tp0")
		require.NoError(t, err)
		other := loader.Tunnel{ID: deviceTunnel + 1, Type: loader.DEVICE, Ifindex: uint32(ifindex), MTU: uint16(mtu),
			NextHop: netip.MustParseAddr("fe80::d")}
		require.NoError(t, b.Datapath.AddTunnel(other))
		dup := other
		dup.ID, dup.NextHop = deviceTunnel+2, l2AddrC
		require.True(t, errors.Is(b.Datapath.AddTunnel(dup), loader.ErrExists))
		require.NoError(t, b.Datapath.DeleteTunnel(other.ID))
	})
}

// A layer-2 device tunnel's neighbour changes in place (UpdateTunnel); two
// tunnels cannot share one.
func TestLayer2DeviceTunnelNeighbour(t *testing.T) {
	netns.RequireRoot(t)
	c := chain.Build(t, chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	a := c.Nodes[0]
	ifindex, err := a.NS.Ifindex("lo")
	require.NoError(t, err)
	first := loader.Tunnel{ID: 7, Type: loader.DEVICE, Ifindex: uint32(ifindex), MTU: 1400, NextHop: l2AddrB}
	require.NoError(t, a.Datapath.AddTunnel(first))
	moved := first
	moved.NextHop = l2AddrC
	require.NoError(t, a.Datapath.UpdateTunnel(moved))
	got, err := a.Datapath.Tunnel(first.ID)
	require.NoError(t, err)
	require.Equal(t, l2AddrC, got.NextHop)
	// The old neighbour is free again, the new one taken.
	second := first
	second.ID = 8
	require.NoError(t, a.Datapath.AddTunnel(second))
	second.ID, second.NextHop = 9, l2AddrC
	require.True(t, errors.Is(a.Datapath.AddTunnel(second), loader.ErrExists))
	moved.NextHop = l2AddrB
	require.Error(t, a.Datapath.UpdateTunnel(moved), "taken by tunnel 8")
	got, err = a.Datapath.Tunnel(first.ID)
	require.NoError(t, err)
	require.Equal(t, l2AddrC, got.NextHop, "a refused change keeps the neighbour")
	require.NoError(t, a.Datapath.DeleteTunnel(7))
	require.NoError(t, a.Datapath.DeleteTunnel(8))
}
