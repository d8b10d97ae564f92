package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/bird"
	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
	"github.com/stretchr/testify/require"
)

// upstreamBird is the upstream router of a BGP gateway: bird2 in the
// upstream's namespace, AS 65001, with a session to the gateway's end of
// the upstream link (AS 65000). It gives the gateway a default route and
// takes whatever the gateway announces.
const upstreamBird = `router id 10.255.0.1;
protocol device {}
protocol static upstream_routes {
	ipv6;
	route ::/0 blackhole;
}
protocol bgp re6st {
	local %s as 65001;
	neighbor %s as 65000;
	hold time 6;
	connect retry time 1;
	ipv6 { import all; export all; };
}
`

// TestBGPGateway runs a gateway with the embedded BGP speaker and bird2 as
// its upstream router: the gateway announces the network aggregate, tagged
// with the network's large community, once Babel reaches other nodes, and
// exports ::/0 from the network into Babel while the session gives it a
// route; the session going down retracts that route from every node,
// coming back restores it; SIGTERM withdraws the announcement at once
// (long before the hold time), as does SIGKILL (the kernel closes the
// session); a gateway whose host goes silent is dropped after the hold time.
func TestBGPGateway(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs: []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{
			{Name: "registry", On: "isp1"}, {Name: "gw", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp1"},
		},
		Upstream: []string{"gw"},
	})
	up := in.Upstream()
	c := cluster.ForTest(t, cluster.Options{Internet: in, Gateways: []string{"gw"}, NodeArgs: func(n *cluster.Node) []string {
		if n.Name != "gw" {
			return nil
		}
		return []string{"--bgp-asn", "65000", "--bgp-router-id", "10.255.0.2",
			"--bgp-peer", fmt.Sprintf("%s,65001", up.Addr)}
	}})
	router, err := bird.Start(up.NS, t.TempDir(), fmt.Sprintf(upstreamBird, up.Addr, up.HostAddr))
	require.NoError(t, err)
	t.Cleanup(router.Stop)
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	network := nodeStatus(t, c, "gw").Network
	defaultRoute := fmt.Sprintf("::/0 from %s", network)
	others := slices.DeleteFunc(c.Nodes(), func(n string) bool { return n == "gw" })
	routesDefault := func(name string) bool {
		return slices.ContainsFunc(nodeStatus(t, c, name).Routes, func(r node.RouteStatus) bool { return r.Prefix == defaultRoute })
	}
	allRouteDefault := func() bool { return !slices.ContainsFunc(others, func(n string) bool { return !routesDefault(n) }) }
	noneRoutesDefault := func() bool { return !slices.ContainsFunc(others, routesDefault) }
	gwBGP := func() *node.BGPStatus { return nodeStatus(t, c, "gw").BGP }
	// birdHas tells whether bird holds prefix from the gateway, with the
	// network's large community.
	tag := bgp.Tag(65000, network, network)
	birdHas := func() bool {
		out, err := router.Show("show", "route", network.String(), "protocol", "re6st", "all")
		return err == nil && strings.Contains(out, network.String()) &&
			strings.Contains(out, fmt.Sprintf("(%d, %d, %d)", tag.Global, tag.Data1, tag.Data2))
	}

	require.Eventually(t, birdHas, 3*hello, 200*time.Millisecond, "bird never received %s from the gateway", network)
	// nativeDefault tells whether the default route bird gives is in the
	// gateway's kernel (proto bgp, next hop bird).
	gwHost := c.Node("gw").Host.NS
	nativeDefault := func() bool {
		out, err := gwHost.Run("ip", "-6", "route", "show", "proto", "bgp")
		return err == nil && strings.Contains(out, fmt.Sprintf("default via %s dev %s metric 512", up.Addr, internet.UpstreamInterface))
	}
	require.Eventually(t, nativeDefault, 5*time.Second, 200*time.Millisecond, "the learned default route is not in the gateway's kernel")
	s := gwBGP()
	require.NotNil(t, s)
	require.Len(t, s.Sessions, 1)
	require.True(t, s.Sessions[0].Established(), "%+v", s.Sessions[0])
	require.EqualValues(t, 1, s.Sessions[0].Accepted)
	require.Equal(t, []node.AnnouncedInfo{{Prefix: network, Community: tag.String()}}, s.Announced)
	require.True(t, s.Default)
	require.Equal(t, 1, s.Learned)
	require.Equal(t, fib.NativeStats{Installed: 1}, s.Native)
	require.Eventually(t, allRouteDefault, 3*hello, 500*time.Millisecond, "every node routes %s", defaultRoute)
	require.Equal(t, []string{internet.UpstreamInterface}, s.Upstreams)
	dp, err := loader.Open(c.Node("gw").Instance())
	require.NoError(t, err)
	defer dp.Close()
	nativeBefore, err := dp.Reasons()
	require.NoError(t, err)
	out, err := c.Node("n1").Host.NS.Run("ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2", "-I", c.NodeAddr("n1").String(), up.Addr.String())
	require.NoError(t, err, "n1 reaches the upstream through the gateway: %s", out)
	// Both ways through the gateway's data plane: decapsulated to the
	// upstream, encapsulated from it.
	nativeAfter, err := dp.Reasons()
	require.NoError(t, err)
	require.GreaterOrEqual(t, nativeAfter["native-out"]-nativeBefore["native-out"], uint64(3), "%v", nativeAfter)
	require.GreaterOrEqual(t, nativeAfter["native-in"]-nativeBefore["native-in"], uint64(3), "%v", nativeAfter)

	// The session goes down: the gateway has no route to the internet and
	// retracts ::/0 from the network; it comes back when the session does.
	_, err = router.Show("disable", "re6st")
	require.NoError(t, err)
	down := time.Now()
	require.Eventually(t, noneRoutesDefault, 3*hello, 500*time.Millisecond, "%s still routed without a BGP session", defaultRoute)
	t.Logf("%s retracted %s after the session went down", defaultRoute, time.Since(down).Round(100*time.Millisecond))
	require.False(t, gwBGP().Default)
	require.Eventually(t, func() bool { return !nativeDefault() }, 5*time.Second, 200*time.Millisecond, "learned route kept without the session")
	_, err = router.Show("enable", "re6st")
	require.NoError(t, err)
	require.Eventually(t, allRouteDefault, 20*time.Second, 500*time.Millisecond, "%s back with the session", defaultRoute)
	require.Eventually(t, birdHas, 10*time.Second, 200*time.Millisecond, "announcement back with the session")
	require.Eventually(t, nativeDefault, 5*time.Second, 200*time.Millisecond, "learned route back with the session")

	// SIGTERM: the announcement goes at once, not after the hold time.
	require.NoError(t, c.StopNode("gw"))
	stopped := time.Now()
	require.Eventually(t, func() bool { return !birdHas() }, 3*time.Second, 100*time.Millisecond, "bird kept %s after SIGTERM", network)
	t.Logf("bird lost %s %s after SIGTERM", network, time.Since(stopped).Round(10*time.Millisecond))
	require.False(t, nativeDefault(), "learned route left in the kernel after SIGTERM")
	require.Eventually(t, noneRoutesDefault, 3*hello, 500*time.Millisecond, "%s still routed after the gateway stopped", defaultRoute)

	// Restarted, it announces again. Killed (SIGKILL), its kernel still
	// closes the session, and bird drops the route at once. A gateway
	// whose host dies (here: its BGP packets dropped, then SIGKILL) is
	// dropped when bird's hold time (6 s) expires.
	restart := func() {
		t.Helper()
		require.NoError(t, c.StartNode("gw"))
		require.Eventually(t, nativeDefault, 20*time.Second, 200*time.Millisecond, "learned route back after the restart")
		require.Eventually(t, birdHas, 3*hello+10*time.Second, 200*time.Millisecond, "announcement back after the restart")
		require.Eventually(t, allRouteDefault, 3*hello, 500*time.Millisecond, "%s back after the restart", defaultRoute)
	}
	restart()
	require.NoError(t, c.KillNode("gw"))
	killed := time.Now()
	require.Eventually(t, func() bool { return !birdHas() }, 3*time.Second, 100*time.Millisecond, "bird kept %s after SIGKILL", network)
	t.Logf("bird lost %s %s after SIGKILL", network, time.Since(killed).Round(10*time.Millisecond))
	require.True(t, nativeDefault(), "killed, the gateway cannot remove its learned routes")

	restart()
	_, err = gwHost.Run("nft", "add table inet dead; add chain inet dead out { type filter hook output priority 0; }; "+
		"add rule inet dead out tcp sport 179 drop; add rule inet dead out tcp dport 179 drop")
	require.NoError(t, err)
	require.NoError(t, c.KillNode("gw"))
	killed = time.Now()
	require.Eventually(t, func() bool { return !birdHas() }, holdTime+3*time.Second, 100*time.Millisecond, "bird kept %s after its hold time", network)
	lost := time.Since(killed)
	t.Logf("bird lost %s %s after the gateway's host went silent", network, lost.Round(10*time.Millisecond))
	require.Greater(t, lost, holdTime/2, "bird lost the route of a silent gateway before its hold time")
	_, err = gwHost.Run("nft", "delete table inet dead")
	require.NoError(t, err)
}

// holdTime is bird's hold time in upstreamBird.
const holdTime = 6 * time.Second
