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
	netns.RequireRoot(t)
	for _, attach := range []loader.AttachMode{loader.AttachTCX, loader.AttachLegacy} {
		t.Run(string(attach), func(t *testing.T) {
			c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC, Attach: attach})
			a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
			mtu := b.Datapath.State.MTU
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

			out, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", cc.Overlay.String())
			require.NoError(t, err, out)
			require.Contains(t, out, "3 received")
			out, err = b.NS.Run("ping", "-c", "2", "-i", "0.2", "-W", "2", cc.Overlay.String())
			require.NoError(t, err, out)
			require.Contains(t, out, "2 received")

			forwBefore := snmp6(t, b.NS, "Ip6OutForwDatagrams")
			transitBefore := reason(t, b.Datapath, "transit")
			devBefore, err := b.Datapath.TunnelCounters(deviceTunnel)
			require.NoError(t, err)
			cDevBefore, err := cc.Datapath.TunnelCounters(deviceTunnel)
			require.NoError(t, err)
			require.NoError(t, chain.TCPTransfer(a.NS, cc.NS, cc.Overlay, 16<<20))
			require.NoError(t, chain.TCPTransfer(cc.NS, a.NS, a.Overlay, 16<<20))
			rs, err := b.Datapath.Reasons()
			require.NoError(t, err)
			require.Equal(t, forwBefore, snmp6(t, b.NS, "Ip6OutForwDatagrams"),
				"B's kernel forwarded overlay traffic; B's data plane counted %v", rs)
			require.Greater(t, reason(t, b.Datapath, "transit"), transitBefore+100)
			dev, err := b.Datapath.TunnelCounters(deviceTunnel)
			require.NoError(t, err)
			require.Greater(t, dev.TxBytes-devBefore.TxBytes, uint64(16<<20), "into the device")
			require.Greater(t, dev.RxBytes-devBefore.RxBytes, uint64(16<<20), "out of the device")
			cDev, err := cc.Datapath.TunnelCounters(deviceTunnel)
			require.NoError(t, err)
			require.Greater(t, cDev.RxBytes-cDevBefore.RxBytes, uint64(16<<20), "C: out of the device, delivered")
			require.Greater(t, cDev.TxBytes-cDevBefore.TxBytes, uint64(16<<20), "C: into the device")

			out, err = a.NS.Run("traceroute6", "-n", "-q1", "-w1", cc.Overlay.String())
			require.NoError(t, err, out)
			require.Regexp(t, `(?m)^ 1\s+`+b.Overlay.String()+`\s`, out)
			require.Regexp(t, `(?m)^ 2\s+`+cc.Overlay.String()+`\s`, out)
			out, err = cc.NS.Run("traceroute6", "-n", "-q1", "-w1", a.Overlay.String())
			require.NoError(t, err, out)
			require.Regexp(t, `(?m)^ 1\s+`+b.Overlay.String()+`\s`, out)
			require.Regexp(t, `(?m)^ 2\s+`+a.Overlay.String()+`\s`, out)

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
