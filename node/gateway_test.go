package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/stretchr/testify/require"
)

// gatewaySpec is a small internet for the gateway test: the gateway with
// its IPv6 upstream and n1 on a LAN, the registry and three other nodes on
// two ISPs.
func gatewaySpec() internet.Spec {
	return internet.Spec{
		ISPs: []internet.ISP{
			{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
			{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
		},
		Sites: []internet.Site{{Name: "lan", ISP: "isp1", LAN: netip.MustParsePrefix("198.18.100.0/24")}},
		Hosts: []internet.HostSpec{
			{Name: "registry", On: "isp1"}, {Name: "gw", On: "lan"}, {Name: "n1", On: "lan"},
			{Name: "n2", On: "isp2"}, {Name: "n3", On: "isp2"}, {Name: "n4", On: "isp2"},
		},
		Upstream: []string{"gw"},
	}
}

// blockBabel drops native Babel between the hosts of a LAN, in its
// bridge: the LAN's nodes lose each other as Babel neighbours.
const blockBabel = "add table bridge babel; add chain bridge babel lan { type filter hook forward priority 0; }; " +
	"add rule bridge babel lan ip6 nexthdr udp udp dport 6696 drop"

// upstreamCounters is an nftables table counting the echo requests that
// reach a namespace: from the re6st network (%[1]s) or not.
const upstreamCounters = `table ip6 seen {
	counter overlay {}
	counter other {}
	chain prerouting {
		type filter hook prerouting priority filter;
		icmpv6 type echo-request ip6 saddr %[1]s counter name overlay
		icmpv6 type echo-request ip6 saddr != %[1]s counter name other
	}
}
`

var nftPackets = regexp.MustCompile(`packets (\d+)`)

// counter reads a named nftables counter of table ip6 seen.
func counter(t *testing.T, ns *netns.NS, name string) int {
	t.Helper()
	out, err := ns.Run("nft", "list", "counter", "ip6", "seen", name)
	require.NoError(t, err)
	m := nftPackets.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestGateway runs a network with a gateway (--gateway, an IPv6 upstream
// behind it): a node without a tunnel to the gateway reaches the upstream
// from its re6st address through another node, the upstream sees that
// address, the node's own default route still serves its other addresses; a
// node on the gateway's LAN reaches the upstream natively, then through a
// tunnel when Babel on the LAN is cut; the gateway's route goes when the
// gateway stops and comes back with it.
func TestGateway(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, gatewaySpec())
	up := in.Upstream()
	// The gateway keeps at most two tunnels, so that some nodes reach it
	// only through others.
	c := cluster.ForTest(t, cluster.Options{Internet: in, Gateways: []string{"gw"}, NodeArgs: func(n *cluster.Node) []string {
		if n.Name == "gw" {
			return []string{"--client-count", "1", "--max-clients", "1"}
		}
		return nil
	}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	gw := c.Node("gw")
	network := nodeStatus(t, c, "gw").Network
	defaultRoute := fmt.Sprintf("::/0 from %s", network)
	others := slices.DeleteFunc(c.Nodes(), func(n string) bool { return n == "gw" })
	// defaultVia is the interface of a node's selected route to the
	// gateway ("" when it has none).
	defaultVia := func(name string) string {
		for _, r := range nodeStatus(t, c, name).Routes {
			if r.Prefix == defaultRoute {
				return r.Via
			}
		}
		return ""
	}
	routesDefault := func(name string) bool { return defaultVia(name) != "" }
	allRouteDefault := func() bool {
		return !slices.ContainsFunc(others, func(n string) bool { return !routesDefault(n) })
	}
	require.Eventually(t, allRouteDefault, 3*hello, 500*time.Millisecond, "every node routes %s", defaultRoute)

	// The client: a node off the gateway's LAN with no tunnel to it.
	client := ""
	for _, n := range others {
		s := nodeStatus(t, c, n)
		if c.Node(n).Host.Site == "" && !slices.ContainsFunc(s.Tunnels, func(tu node.TunnelStatus) bool { return tu.Peer == gw.Subnet }) {
			client = n
			break
		}
	}
	require.NotEmpty(t, client, "every node has a tunnel to the gateway")
	cn := c.Node(client)
	t.Logf("%s (%s, no tunnel to the gateway, %s through %s) pings the upstream %s", client, cn.Addr, defaultRoute, defaultVia(client), up.Addr)

	_, err = up.NS.Run("nft", fmt.Sprintf(upstreamCounters, network))
	require.NoError(t, err)
	ping := func(n *cluster.Node, src netip.Addr, count int) (string, error) {
		return n.Host.NS.Run("ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", "-I", src.String(), up.Addr.String())
	}
	out, err := ping(cn, cn.Addr, 5)
	require.NoError(t, err, "ping from %s's re6st address", client)
	require.Contains(t, out, "5 received", out)
	require.Equal(t, 5, counter(t, up.NS, "overlay"), "echo requests from %s at the upstream", cn.Addr)
	require.Zero(t, counter(t, up.NS, "other"))

	// Another address of the client, with the host's own default route
	// through a namespace of its own: its packets leave that way, none
	// reaches the overlay.
	isp := netns.ForTest(t, "gwisp")
	require.NoError(t, netns.Veth(cn.Host.NS, "uplink", isp, "eth0"))
	own, ispAddr := netip.MustParsePrefix("2001:db8:eeee::1/64"), netip.MustParsePrefix("2001:db8:eeee::2/64")
	require.NoError(t, cn.Host.NS.AddrAdd("uplink", own))
	require.NoError(t, isp.AddrAdd("eth0", ispAddr))
	_, err = cn.Host.NS.Run("ip", "-6", "route", "add", "default", "via", ispAddr.Addr().String(), "dev", "uplink")
	require.NoError(t, err)
	_, err = isp.Run("nft", fmt.Sprintf(upstreamCounters, network))
	require.NoError(t, err)
	for src, dev := range map[netip.Addr]string{own.Addr(): "uplink", cn.Addr: "re6st0"} {
		route, err := cn.Host.NS.Run("ip", "-6", "route", "get", up.Addr.String(), "from", src.String())
		require.NoError(t, err)
		require.Contains(t, route, "dev "+dev, "from %s", src)
	}
	_, err = ping(cn, own.Addr(), 3)
	require.Error(t, err, "nothing answers behind the host's own uplink")
	require.Equal(t, 3, counter(t, isp, "other"), "echo requests from %s through the host's own default route", own.Addr())
	require.Zero(t, counter(t, isp, "overlay"))
	require.Zero(t, counter(t, up.NS, "other"), "an echo request from a non-re6st address reached the upstream")

	// A node on the gateway's LAN reaches it natively; when Babel on the
	// LAN is cut, its route moves to a tunnel, and it still reaches the
	// upstream.
	// A tunnel between the two LAN nodes (set up from the registry's
	// bootstrap peer before they heard each other on the LAN) routes
	// nothing on the gateway's side: its next tunnel refresh replaces it.
	lan := c.Node("n1")
	require.Eventually(t, func() bool { return defaultVia("n1") == lan.Host.LAN }, tunnelRefresh+3*hello, 500*time.Millisecond,
		"n1 routes %s through the LAN", defaultRoute)
	sent := counter(t, up.NS, "overlay")
	_, err = ping(lan, lan.Addr, 3)
	require.NoError(t, err, "ping from n1 through the LAN")
	_, err = in.NS("lan").Run("nft", blockBabel)
	require.NoError(t, err)
	cut := time.Now()
	require.Eventually(t, func() bool { return strings.HasPrefix(defaultVia("n1"), "t") }, 6*hello, 500*time.Millisecond,
		"n1's route to the gateway did not move to a tunnel")
	t.Logf("n1's %s moved to %s after %s", defaultRoute, defaultVia("n1"), time.Since(cut).Round(100*time.Millisecond))
	_, err = ping(lan, lan.Addr, 3)
	require.NoError(t, err, "ping from n1 through a tunnel")
	require.Equal(t, sent+6, counter(t, up.NS, "overlay"), "echo requests from n1 at the upstream")
	_, err = in.NS("lan").Run("nft", "delete table bridge babel")
	require.NoError(t, err)

	// The gateway stops: its route is retracted everywhere, and the
	// client's re6st address no longer reaches the upstream.
	require.NoError(t, c.StopNode("gw"))
	stopped := time.Now()
	require.Eventually(t, func() bool { return !slices.ContainsFunc(others, routesDefault) },
		3*hello, 500*time.Millisecond, "%s still routed after the gateway stopped", defaultRoute)
	t.Logf("%s retracted from %d nodes in %s", defaultRoute, len(others), time.Since(stopped).Round(100*time.Millisecond))
	_, err = ping(cn, cn.Addr, 1)
	require.Error(t, err, "the upstream answered without a gateway")

	// Started again, it announces its route again.
	require.NoError(t, c.StartNode("gw"))
	// Its start-up (enrolment files, data plane, Babel) comes first: under
	// load that alone takes seconds.
	require.Eventually(t, allRouteDefault, 6*hello, 500*time.Millisecond, "every node routes %s again", defaultRoute)
	_, err = ping(cn, cn.Addr, 3)
	require.NoError(t, err, "ping from %s after the gateway's restart", client)
}
