package openvpn

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// A —FOU— B —WireGuard— C —OpenVPN— D, as a node lays them out: the data
// plane carries FOU and WireGuard (a device tunnel); OpenVPN's TAP link is
// a LAN of the kernel's, C's data plane having no route to D (its slow
// path hands the packets coming out of WireGuard to the kernel, which
// routes them into the TAP device), and what comes back out of it is
// routed by C's kernel into the overlay device, whose program sends it
// into WireGuard. TCP both ways arrives whole (SHA-256), through every
// link.
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

	// Routes as the node's fib.Split writes them for a LAN neighbour: into
	// the kernel, out of the data plane.
	require.NoError(t, cn.Datapath.DeleteRoute(chain.OverlayPrefix(3), netip.Prefix{}))
	route(t, cn.NS, chain.OverlayPrefix(3), llD, "ovc")
	for k := 0; k < 3; k++ {
		route(t, d.NS, chain.OverlayPrefix(k), llC, "ovs")
	}

	require.Eventually(t, func() bool {
		_, err := a.NS.Run("ping", "-c", "1", "-W", "1", d.Overlay.String())
		return err == nil
	}, 40*time.Second, 100*time.Millisecond, "A never reached D")
	// The first packets find the path MTU (WireGuard's is 60 bytes below
	// the overlay's).
	require.NoError(t, chain.TCPTransfer(a.NS, d.NS, d.Overlay, 64<<10))
	const size = 4 << 20
	wgBefore := tunnelBytes(t, b, chain.WireGuardTunnel(1))
	tapBefore := linkBytes(t, cn.NS, "ovc")
	require.NoError(t, chain.TCPTransfer(a.NS, d.NS, d.Overlay, size))
	require.NoError(t, chain.TCPTransfer(d.NS, a.NS, a.Overlay, size))
	wgAfter := tunnelBytes(t, b, chain.WireGuardTunnel(1))
	tapAfter := linkBytes(t, cn.NS, "ovc")
	require.Greater(t, wgAfter[0]-wgBefore[0], uint64(size), "B sent A's transfer into WireGuard")
	require.Greater(t, wgAfter[1]-wgBefore[1], uint64(size), "B got D's transfer out of WireGuard")
	require.Greater(t, tapAfter[0]-tapBefore[0], uint64(size), "C sent A's transfer into OpenVPN")
	require.Greater(t, tapAfter[1]-tapBefore[1], uint64(size), "C got D's transfer out of OpenVPN")
}

func route(t *testing.T, ns *netns.NS, dst netip.Prefix, via netip.Addr, dev string) {
	_, err := ns.Run("ip", "-6", "route", "add", dst.String(), "via", via.String(), "dev", dev)
	require.NoError(t, err)
}

// tunnelBytes are the bytes node's data plane sent into and got out of
// tunnel id.
func tunnelBytes(t *testing.T, node *chain.Node, id uint32) [2]uint64 {
	st, err := node.Datapath.TunnelCounters(id)
	require.NoError(t, err)
	return [2]uint64{st.TxBytes, st.RxBytes}
}

// linkBytes are the bytes dev sent and received.
func linkBytes(t *testing.T, ns *netns.NS, dev string) [2]uint64 {
	var s [2]uint64
	require.NoError(t, ns.Do(func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		st := l.Attrs().Statistics
		s = [2]uint64{st.TxBytes, st.RxBytes}
		return nil
	}))
	return s
}
