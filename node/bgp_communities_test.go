package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/stretchr/testify/require"
)

// TestBGPCommunities runs two BGP gateways in two communities with bird2 as
// their upstream router and an exterior host with native IPv6 behind it.
// Each gateway announces the prefix of its community, taken from the
// registry's community file through the network parameters, and the
// network aggregate; the exterior host reaches a node of each community
// through that community's gateway. A's gateway killed, A's traffic enters
// through B's gateway (the aggregate) and still reaches the node; A's
// gateway restarted, it enters through A again.
func TestBGPCommunities(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.TwoGateways())
	up := in.Upstream()
	opts, err := cluster.TwoGatewaysOptions(in, t.TempDir())
	require.NoError(t, err)
	c := cluster.ForTest(t, opts)
	router, err := cluster.StartUpstreamRouter(in, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(router.Stop)
	require.NoError(t, c.StartNodes())
	start := time.Now()
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	network := nodeStatus(t, c, "gwa").Network
	communityA, communityB := cluster.TwoCommunities["gwa"], cluster.TwoCommunities["gwb"]
	for name, community := range map[string]netip.Prefix{"gwa": communityA, "a1": communityA, "registry": communityA, "gwb": communityB, "b1": communityB} {
		require.True(t, community.Contains(c.NodeAddr(name)), "%s (%s) is not in community %s", name, c.NodeAddr(name), community)
	}
	// birdHas tells whether bird holds prefix from the gateway (its
	// protocol), with the gateway's large community for it.
	birdHas := func(gateway string, prefix netip.Prefix) bool {
		tag := bgp.Tag(cluster.GatewayAS, network, prefix)
		out, err := router.Show("show", "route", prefix.String(), "protocol", gateway, "all")
		return err == nil && strings.Contains(out, prefix.String()) &&
			strings.Contains(out, fmt.Sprintf("(%d, %d, %d)", tag.Global, tag.Data1, tag.Data2))
	}
	allAnnounced := func() bool {
		return birdHas("gwa", communityA) && birdHas("gwb", communityB) && birdHas("gwa", network) && birdHas("gwb", network)
	}
	require.Eventually(t, allAnnounced, 3*hello, 200*time.Millisecond, "bird lacks a community prefix or the aggregate from a gateway")
	out, err := router.Show("show", "route")
	require.NoError(t, err)
	t.Logf("birdc show route, %s after the nodes started:\n%s", time.Since(start).Round(time.Second), out)
	for name, community := range map[string]netip.Prefix{"gwa": communityA, "gwb": communityB} {
		require.ElementsMatch(t, []node.AnnouncedInfo{
			{Prefix: community, Community: bgp.Tag(cluster.GatewayAS, network, community).String()},
			{Prefix: network, Community: bgp.Tag(cluster.GatewayAS, network, network).String()},
		}, nodeStatus(t, c, name).BGP.Announced, name)
	}

	// enters tells whether the exterior host's traceroute6 to a node
	// enters the overlay through the gateway (the hop after the upstream
	// router) and reaches the node.
	gatewayAddrs := map[string]map[string]bool{}
	for _, name := range []string{"gwa", "gwb"} {
		gatewayAddrs[name], err = internet.IPv6Addrs(c.Node(name).Host.NS)
		require.NoError(t, err)
	}
	enters := func(to, gateway string) func() bool {
		return func() bool {
			hops, out, err := internet.Traceroute(up.Exterior, c.NodeAddr(to))
			t.Logf("traceroute6 to %s (%s): %q %v", to, c.NodeAddr(to), hops, err)
			if err != nil {
				t.Log(out)
			}
			return len(hops) >= 3 && gatewayAddrs[gateway][hops[1]] && hops[len(hops)-1] == c.NodeAddr(to).String()
		}
	}
	require.Eventually(t, enters("a1", "gwa"), 3*hello, time.Second, "the exterior host reaches a1 through gwa")
	require.Eventually(t, enters("b1", "gwb"), 3*hello, time.Second, "the exterior host reaches b1 through gwb")

	// A's gateway killed: bird drops its routes (at once, as its kernel
	// closes the session; the hold time for a silent host), and Babel
	// takes gwa's routes away within a few hellos: a1 is reached through
	// gwb's aggregate.
	require.NoError(t, c.KillNode("gwa"))
	killed := time.Now()
	require.Eventually(t, func() bool { return !birdHas("gwa", communityA) && !birdHas("gwa", network) }, cluster.HoldTime*time.Second+3*time.Second, 200*time.Millisecond,
		"bird kept gwa's routes after its hold time")
	require.Eventually(t, enters("a1", "gwb"), cluster.HoldTime*time.Second+6*hello, time.Second, "the exterior host reaches a1 through gwb once gwa is gone")
	t.Logf("a1 reached through gwb %s after gwa was killed", time.Since(killed).Round(100*time.Millisecond))

	// Restarted, gwa announces again and a1's traffic comes back to it.
	require.NoError(t, c.StartNode("gwa"))
	restarted := time.Now()
	require.Eventually(t, allAnnounced, 3*hello+10*time.Second, 200*time.Millisecond, "gwa's announcements back after its restart")
	require.Eventually(t, enters("a1", "gwa"), 3*hello, time.Second, "the exterior host reaches a1 through gwa again")
	t.Logf("a1 reached through gwa %s after its restart", time.Since(restarted).Round(100*time.Millisecond))
}
