package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/bird"
	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/stretchr/testify/require"
)

// communitiesBird is the upstream router of two BGP gateways: a session
// with each (protocols gwa and gwb, AS 65000), a default route given to
// both, and what they announce exported to the upstream's kernel, so that
// the exterior host's traffic follows it.
const communitiesBird = `router id 10.255.0.1;
protocol device {}
protocol kernel { ipv6 { export where source = RTS_BGP; }; }
protocol static upstream_routes {
	ipv6;
	route ::/0 blackhole;
}
template bgp re6st_gw {
	local as 65001;
	hold time 6;
	connect retry time 1;
	ipv6 { import all; export where net = ::/0; };
}
protocol bgp gwa from re6st_gw { local %s; neighbor %s as 65000; }
protocol bgp gwb from re6st_gw { local %s; neighbor %s as 65000; }
`

// communityFile puts every node in community 0 but those located in
// Japan, in community 1.
const communityFile = "0 *\n1 JP\n"

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
	in := internet.ForTest(t, internet.Spec{
		ISPs: []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{{Name: "registry", On: "isp1"}, {Name: "gwa", On: "isp1"}, {Name: "a1", On: "isp1"},
			{Name: "gwb", On: "isp1"}, {Name: "b1", On: "isp1"}},
		Upstream: []string{"gwa", "gwb"},
		Exterior: "ext",
	})
	up := in.Upstream()
	communities := filepath.Join(t.TempDir(), "community")
	require.NoError(t, os.WriteFile(communities, []byte(communityFile), 0o644))
	routerIDs := map[string]string{"gwa": "10.255.0.2", "gwb": "10.255.0.3"}
	c := cluster.ForTest(t, cluster.Options{Internet: in, Gateways: []string{"gwa", "gwb"},
		RegistryArgs: []string{"--community", communities},
		Locations:    map[string]string{"gwb": "JP,AS", "b1": "JP,AS"},
		NodeArgs: func(n *cluster.Node) []string {
			if l := up.Link(n.Name); l != nil {
				return []string{"--bgp-asn", "65000", "--bgp-router-id", routerIDs[n.Name], "--bgp-peer", fmt.Sprintf("%s,65001", l.Addr)}
			}
			return nil
		}})
	a, b := up.Link("gwa"), up.Link("gwb")
	router, err := bird.Start(up.NS, t.TempDir(), fmt.Sprintf(communitiesBird, a.Addr, a.HostAddr, b.Addr, b.HostAddr))
	require.NoError(t, err)
	t.Cleanup(router.Stop)
	require.NoError(t, c.StartNodes())
	start := time.Now()
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	network := nodeStatus(t, c, "gwa").Network
	communityA, communityB := netip.MustParsePrefix("2001:db8:42::/49"), netip.MustParsePrefix("2001:db8:42:8000::/49")
	for name, community := range map[string]netip.Prefix{"gwa": communityA, "a1": communityA, "registry": communityA, "gwb": communityB, "b1": communityB} {
		require.True(t, community.Contains(c.NodeAddr(name)), "%s (%s) is not in community %s", name, c.NodeAddr(name), community)
	}
	// birdHas tells whether bird holds prefix from the gateway (its
	// protocol), with the gateway's large community for it.
	birdHas := func(gateway string, prefix netip.Prefix) bool {
		tag := bgp.Tag(65000, network, prefix)
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
			{Prefix: community, Community: bgp.Tag(65000, network, community).String()},
			{Prefix: network, Community: bgp.Tag(65000, network, network).String()},
		}, nodeStatus(t, c, name).BGP.Announced, name)
	}

	// enters tells whether the exterior host's traceroute6 to a node goes
	// through the gateway's host and reaches the node, without the other
	// gateway's.
	gatewayAddrs := map[string]map[string]bool{"gwa": hostAddrs(t, c.Node("gwa").Host.NS), "gwb": hostAddrs(t, c.Node("gwb").Host.NS)}
	enters := func(to, gateway, other string) func() bool {
		return func() bool {
			hops := traceroute(t, up.Exterior, c.NodeAddr(to))
			var through bool
			for _, hop := range hops {
				through = through || gatewayAddrs[gateway][hop]
				if gatewayAddrs[other][hop] {
					return false
				}
			}
			return through && len(hops) > 0 && hops[len(hops)-1] == c.NodeAddr(to).String()
		}
	}
	require.Eventually(t, enters("a1", "gwa", "gwb"), 3*hello, time.Second, "the exterior host reaches a1 through gwa")
	require.Eventually(t, enters("b1", "gwb", "gwa"), 3*hello, time.Second, "the exterior host reaches b1 through gwb")

	// A's gateway killed: bird drops its routes (at once, as its kernel
	// closes the session; the hold time for a silent host), and Babel
	// takes gwa's routes away within a few hellos: a1 is reached through
	// gwb's aggregate.
	require.NoError(t, c.KillNode("gwa"))
	killed := time.Now()
	require.Eventually(t, func() bool { return !birdHas("gwa", communityA) && !birdHas("gwa", network) }, holdTime+3*time.Second, 200*time.Millisecond,
		"bird kept gwa's routes after its hold time")
	require.Eventually(t, enters("a1", "gwb", "gwa"), holdTime+6*hello, time.Second, "the exterior host reaches a1 through gwb once gwa is gone")
	t.Logf("a1 reached through gwb %s after gwa was killed", time.Since(killed).Round(100*time.Millisecond))

	// Restarted, gwa announces again and a1's traffic comes back to it.
	require.NoError(t, c.StartNode("gwa"))
	restarted := time.Now()
	require.Eventually(t, allAnnounced, 3*hello+10*time.Second, 200*time.Millisecond, "gwa's announcements back after its restart")
	require.Eventually(t, enters("a1", "gwa", "gwb"), 3*hello, time.Second, "the exterior host reaches a1 through gwa again")
	t.Logf("a1 reached through gwa %s after its restart", time.Since(restarted).Round(100*time.Millisecond))
}

// hopAddr is a traceroute6 -n line's first address.
var hopAddr = regexp.MustCompile(`(?m)^\s*\d+\s+([0-9a-f:]+)\s`)

// traceroute returns the addresses that answered a traceroute6 from ns to
// dst, in order (lost probes left out).
func traceroute(t *testing.T, ns *netns.NS, dst netip.Addr) []string {
	out, err := ns.Run("traceroute6", "-n", "-q1", "-w2", "-m8", dst.String())
	if err != nil {
		t.Logf("traceroute6 to %s: %v: %s", dst, err, out)
		return nil
	}
	var hops []string
	for _, m := range hopAddr.FindAllStringSubmatch(out, -1) {
		hops = append(hops, m[1])
	}
	t.Logf("traceroute6 to %s: %v", dst, hops)
	return hops
}

// hostAddrs are the IPv6 addresses of a namespace's interfaces.
func hostAddrs(t *testing.T, ns *netns.NS) map[string]bool {
	out, err := ns.Run("ip", "-6", "-j", "addr", "show")
	require.NoError(t, err, out)
	var links []struct {
		Addrs []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &links))
	addrs := map[string]bool{}
	for _, l := range links {
		for _, a := range l.Addrs {
			addrs[a.Local] = true
		}
	}
	return addrs
}
