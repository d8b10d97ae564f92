package openvpn

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/bench"
	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// A —FOU— B —WireGuard— C —OpenVPN— D, as a node lays them out: the data
// plane carries every hop, FOU, WireGuard and OpenVPN (device tunnels, the
// TAP device's a layer-2 one with the neighbour's link-local address as
// next hop). C carries what comes out of WireGuard into the TAP device,
// and what comes out of the TAP device into WireGuard, in BPF: its
// kernel forwards none of it. TCP both ways arrives whole (SHA-256),
// through every link.
func TestTransitAcrossKinds(t *testing.T) {
	requireOpenVPN(t)
	c := chain.Build(t, chain.Options{Nodes: 4, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	a, b, cn, d := c.Nodes[0], c.Nodes[1], c.Nodes[2], c.Nodes[3]
	wg, err := c.WireGuardLink(1)
	require.NoError(t, err)
	t.Cleanup(func() { wg.Close() })

	// OpenVPN over TCP on link 2: D serves, C connects (our arguments).
	p := newPKI(t, "c", "d")
	llC, llD := netip.MustParseAddr("fe80::c"), netip.MustParseAddr("fe80::d")
	common := func(name, dev string) Common {
		return Common{Dev: dev, CA: p.ca, Cert: p.nodes[name][0], Key: p.nodes[name][1], Timeout: 16 * time.Second}
	}
	srvArgs, err := ServerArgs(ServerConfig{Common: common("d", "ovs"), Port: 1194, Proto: TCP, MaxClients: 4})
	require.NoError(t, err)
	srv := ours(t, d.NS, "ovs", TCP, llD, srvArgs)
	waitOutput(t, srv, ready)
	clArgs, err := ClientArgs(ClientConfig{Common: common("c", "ovc"), Remote: netip.AddrPortFrom(chain.LinkV4(2, 2), 1194), Proto: TCP, PeerName: "d"})
	require.NoError(t, err)
	cl := ours(t, cn.NS, "ovc", TCP, llC, clArgs)
	waitPing(t, cn.NS, "ovc", llD, srv, cl)

	// The TAP devices as the node uses them: a layer-2 device tunnel at
	// each end, to the other's link-local address, the routes of that
	// side through it.
	for _, end := range []struct {
		i, j      int
		dev       string
		neighbour netip.Addr
	}{{2, 3, "ovc", llD}, {3, 2, "ovs", llC}} {
		att, err := c.UseDeviceVia(end.i, end.j, tapTunnel, end.dev, deviceMTU(t, c.Nodes[end.i].NS, end.dev), end.neighbour)
		require.NoError(t, err)
		t.Cleanup(func() { att.Close() })
	}
	// Each end learns the other's MAC from its control traffic (Babel's
	// in a node; the answer to a ping of its link-local address here).
	waitPing(t, cn.NS, "ovc", llD, srv, cl)
	waitPing(t, d.NS, "ovs", llC, srv, cl)

	require.Eventually(t, func() bool {
		_, err := a.NS.Run("ping", "-c", "1", "-W", "1", d.Overlay.String())
		return err == nil
	}, 40*time.Second, 100*time.Millisecond, "A never reached D")
	// The first packets find the path MTU (WireGuard's is 60 bytes below
	// the overlay's).
	require.NoError(t, chain.TCPTransfer(a.NS, d.NS, d.Overlay, 64<<10))
	const size = 4 << 20
	wgBefore := tunnelBytes(t, b, chain.WireGuardTunnel(1))
	tapBefore := tunnelBytes(t, cn, tapTunnel)
	forwBefore := forwarded(t, cn.NS)
	require.NoError(t, chain.TCPTransfer(a.NS, d.NS, d.Overlay, size))
	require.NoError(t, chain.TCPTransfer(d.NS, a.NS, a.Overlay, size))
	wgAfter := tunnelBytes(t, b, chain.WireGuardTunnel(1))
	tapAfter := tunnelBytes(t, cn, tapTunnel)
	require.Greater(t, wgAfter[0]-wgBefore[0], uint64(size), "B sent A's transfer into WireGuard")
	require.Greater(t, wgAfter[1]-wgBefore[1], uint64(size), "B got D's transfer out of WireGuard")
	require.Greater(t, tapAfter[0]-tapBefore[0], uint64(size), "C's data plane sent A's transfer into OpenVPN")
	require.Greater(t, tapAfter[1]-tapBefore[1], uint64(size), "C's data plane got D's transfer out of OpenVPN")
	rs, err := cn.Datapath.Reasons()
	require.NoError(t, err)
	require.Equal(t, forwBefore, forwarded(t, cn.NS), "C's kernel forwarded overlay traffic; C's data plane counted %v", rs)
}

// tapTunnel is the id of the TAP device's tunnel at C and D.
const tapTunnel = 40

// deviceMTU is dev's MTU in ns.
func deviceMTU(t *testing.T, ns *netns.NS, dev string) int {
	var mtu int
	require.NoError(t, ns.Do(func() error {
		l, err := netlink.LinkByName(dev)
		if err == nil {
			mtu = l.Attrs().MTU
		}
		return err
	}))
	return mtu
}

// forwarded is the number of IPv6 packets ns's kernel forwarded.
func forwarded(t *testing.T, ns *netns.NS) uint64 {
	dump, err := ns.Run("cat", "/proc/net/snmp6")
	require.NoError(t, err)
	v, err := bench.ParseSnmp6(dump, "Ip6OutForwDatagrams")
	require.NoError(t, err)
	return v
}

// tunnelBytes are the bytes node's data plane sent into and got out of
// tunnel id.
func tunnelBytes(t *testing.T, node *chain.Node, id uint32) [2]uint64 {
	st, err := node.Datapath.TunnelCounters(id)
	require.NoError(t, err)
	return [2]uint64{st.TxBytes, st.RxBytes}
}
