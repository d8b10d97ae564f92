package node_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// dropOpenVPNTCP is a firewall rule (internet.Firewall) that drops TCP to
// the OpenVPN servers' default port.
const dropOpenVPNTCP = "tcp dport 1194"

// typesTest is a network on two ISPs, the registry and n1 on one, n2 and n3
// on the other, whose nodes run with --tunnel-types types, behind a
// firewall in the core that drops what rules say.
func typesTest(t *testing.T, types string, rules ...string) (*internet.Internet, *cluster.Cluster) {
	in := internet.ForTest(t, internet.TwoISPs([]string{"registry", "n1"}, []string{"n2", "n3"}))
	require.NoError(t, in.Firewall(internet.Core, rules...))
	c := cluster.ForTest(t, cluster.Options{Internet: in, TunnelRefresh: fastRefresh, NodeArgs: func(*cluster.Node) []string {
		return []string{"--tunnel-types", types}
	}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
	return in, c
}

// typed returns a condition: every tunnel in the nodes' status has the
// type it should, within (an ISP) or across (the core); across counts the
// tunnels across the core.
func typed(t *testing.T, c *cluster.Cluster, within, acrossType string, across *int) func() bool {
	ispOf := map[netip.Prefix]string{}
	for _, name := range c.Nodes() {
		ispOf[c.Node(name).Subnet] = c.Node(name).Host.ISP
	}
	return func() bool {
		*across = 0
		for _, name := range c.Nodes() {
			for _, tu := range nodeStatus(t, c, name).Tunnels {
				want := within
				if ispOf[tu.Peer] != c.Node(name).Host.ISP {
					want = acrossType
					*across++
				}
				if tu.Type != want {
					return false
				}
			}
		}
		return true
	}
}

// TestTunnelTypesFallBack: every node prefers GRE (--tunnel-types gre,fou)
// and the core between the two ISPs drops GRE. The nodes on both sides
// still reach each other: a tunnel across the core gets no Babel hello
// through, and its node falls back to FOU; tunnels within an ISP stay GRE.
func TestTunnelTypesFallBack(t *testing.T) {
	clusterTest(t)
	in, c := typesTest(t, "gre,fou", internet.DropGRE)
	// Tunnels being replaced when reachability was reached go within a
	// timeout: wait until every tunnel has its expected type.
	across := 0
	require.Eventually(t, typed(t, c, nodeproto.ProtoGRE, nodeproto.ProtoFOU, &across), 2*reachBound, time.Second,
		"tunnels across the core are FOU, within an ISP GRE")
	require.Positive(t, across, "some tunnels cross the core")

	// The firewall goes: at the refreshes after FOU's fallback is a refresh
	// period old, each node replaces a FOU tunnel, and the new ones are GRE.
	require.NoError(t, in.RemoveFirewall(internet.Core))
	require.Eventually(t, typed(t, c, nodeproto.ProtoGRE, nodeproto.ProtoGRE, &across), 8*fastRefresh*time.Second, time.Second,
		"every tunnel back to GRE")
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
}

// TestOpenVPNThroughFirewall: every node offers FOU and OpenVPN over TCP
// (--tunnel-types fou,openvpn-tcp) and the core drops UDP and GRE, so
// FOU and the node protocol's set-up cross it no more. The nodes on both
// sides still reach each other: a FOU set-up across the core gets no
// answer, and the node connects to the peer's OpenVPN server over TCP
// (no set-up exchange). The firewall removed, the peers move back to FOU
// at the refreshes after FOU's failure is a refresh period old.
func TestOpenVPNThroughFirewall(t *testing.T) {
	clusterTest(t)
	in, c := typesTest(t, "fou,openvpn-tcp", internet.DropUDP, internet.DropGRE)
	across := 0
	require.Eventually(t, typed(t, c, nodeproto.ProtoFOU, nodeproto.ProtoOpenVPNTCP, &across), reachBound, time.Second,
		"tunnels across the core are OpenVPN over TCP, within an ISP FOU")
	require.Positive(t, across, "some tunnels cross the core")
	// Every node runs its OpenVPN server, and the peers' servers hear their
	// clients (no cipher: the network does not encrypt).
	require.Eventually(t, func() bool {
		clients := 0
		for _, name := range c.Nodes() {
			for _, o := range nodeStatus(t, c, name).OpenVPNServers {
				clients += o.Clients
			}
		}
		return clients > 0
	}, reachBound, time.Second, "OpenVPN servers hear their clients")
	for _, name := range c.Nodes() {
		s := nodeStatus(t, c, name)
		require.Len(t, s.OpenVPNServers, 2, "%s: a server over IPv4 and one over IPv6", name)
		for i, dev := range []string{"re6stnet-tcp", "re6stnet-tcp6"} {
			require.True(t, s.OpenVPNServers[i].Running, name)
			require.Equal(t, dev, s.OpenVPNServers[i].Device)
		}
		for _, tu := range s.Tunnels {
			require.False(t, tu.Encrypted, "%s: %s tunnel", name, tu.Type)
		}
	}
	// The OpenVPN tunnels are the data plane's device tunnels, outgoing
	// ones and each client of a server (an incoming tunnel, its peer the
	// prefix it announces). Both count what comes out of their device (rx:
	// Babel's packets at least, once the data plane learnt the neighbour's
	// MAC from them), and the data plane sends the traffic of Babel's
	// routes into them (tx: the packets Babel itself sends do not pass the
	// data plane); which side of a TAP link the routes use depends on the
	// link costs each end measures.
	require.Eventually(t, func() bool {
		var in, out, carried bool
		for _, name := range c.Nodes() {
			for _, tu := range nodeStatus(t, c, name).Tunnels {
				if tu.Type != nodeproto.ProtoOpenVPNTCP {
					continue
				}
				require.Equal(t, "device", tu.Encap.String(), "%s: tunnel %d", name, tu.ID)
				if tu.Outgoing {
					out = out || tu.Traffic.RxBytes > 0
				} else {
					in = in || (tu.Peer.IsValid() && tu.Traffic.RxBytes > 0)
				}
				carried = carried || (tu.Routes > 0 && tu.Traffic.TxBytes > 0)
			}
		}
		return in && out && carried
	}, reachBound, time.Second, "OpenVPN tunnels in the data plane, outgoing and incoming, and carrying their routes' traffic")

	require.NoError(t, in.RemoveFirewall(internet.Core))
	require.Eventually(t, typed(t, c, nodeproto.ProtoFOU, nodeproto.ProtoFOU, &across), 4*fastRefresh*time.Second, time.Second,
		"every tunnel back to FOU")
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
	// The servers' clients' tunnels leave the data planes once Babel no
	// longer hears the clients (16 Hellos missed).
	for _, name := range c.Nodes() {
		dp, err := loader.Open(c.Node(name).Instance())
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			list, err := dp.Tunnels()
			require.NoError(t, err)
			for _, tu := range list {
				if tu.Type == loader.DEVICE {
					return false
				}
			}
			return true
		}, 2*reachBound, time.Second, "%s: OpenVPN device tunnels left", name)
		dp.Close()
	}
}

// fastRefresh (seconds) is the registry's tunnel_refresh for the tunnel
// types tests: short, so that tunnels move back soon after a firewall goes.
const fastRefresh = 15

// TestOpenVPNOverIPv6: n1 and n2, on two ISPs, also have IPv6 through the
// upstream router (their default IPv6 route, on an interface without
// IPv4), outside the IPv4 internet, whose core drops TCP to the OpenVPN
// port. Every node's tunnels are OpenVPN over TCP, and each finds its IPv6
// address itself (no --ipv6). Across the core, n1 and n2 try the peer's
// IPv4 item first (the peer's order), get no hello through, and take its
// IPv6 one (re6st's tcp6 item): a tunnel to the peer's IPv6 address with a
// Babel neighbour on it, the peer's re6stnet-tcp6 server hearing its
// client, and every pair of nodes reaching the others, the registry's
// node and n2 through n1. One type only, and the cluster's tunnel refresh
// (60 s): with a faster type first, the move back at each refresh would
// retry that type, then OpenVPN over IPv4, before IPv6 again.
func TestOpenVPNOverIPv6(t *testing.T) {
	clusterTest(t)
	spec := internet.TwoISPs([]string{"registry", "n1"}, []string{"n2"})
	spec.Upstream = []string{"n1", "n2"}
	in := internet.ForTest(t, spec)
	require.NoError(t, in.Firewall(internet.Core, dropOpenVPNTCP))
	c := cluster.ForTest(t, cluster.Options{Internet: in, NodeArgs: func(*cluster.Node) []string {
		return []string{"--tunnel-types", "openvpn-tcp"}
	}})
	require.NoError(t, c.StartNodes())
	ipv6Of := map[string]netip.Addr{"n1": in.Upstream().Link("n1").HostAddr, "n2": in.Upstream().Link("n2").HostAddr}
	// overIPv6: a has an OpenVPN tunnel to b's IPv6 address with a Babel
	// neighbour on it (a cost), and b's IPv6 server hears a client.
	overIPv6 := func(a, b string) bool {
		sa, errA := c.NodeStatus(a)
		sb, errB := c.NodeStatus(b)
		if errA != nil || errB != nil { // a status that times out under load: asked again
			return false
		}
		heard := false
		for _, o := range sb.OpenVPNServers {
			heard = heard || o.Device == "re6stnet-tcp6" && o.IPv6 && o.Running && o.Clients > 0
		}
		for _, tu := range sa.Tunnels {
			if heard && tu.Peer == c.Node(b).Subnet && tu.Outgoing && tu.Type == nodeproto.ProtoOpenVPNTCP &&
				tu.Remote == netip.AddrPortFrom(ipv6Of[b], 1194) && tu.Cost > 0 {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return overIPv6("n1", "n2") || overIPv6("n2", "n1") }, 2*reachBound, time.Second,
		"n1 and n2 linked by OpenVPN over IPv6")
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
}
