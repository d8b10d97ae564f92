package node_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/stretchr/testify/require"
)

// halvesSpec is two ISPs of three nodes each, the registry in the first:
// cutting the second ISP from the core splits the internet in two.
func halvesSpec() internet.Spec {
	return internet.Spec{
		ISPs: []internet.ISP{
			{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
			{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
		},
		Hosts: []internet.HostSpec{
			{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp1"},
			{Name: "n3", On: "isp2"}, {Name: "n4", On: "isp2"}, {Name: "n5", On: "isp2"},
		},
	}
}

// TestPartition splits the simulated internet into two halves of three
// nodes, lets each half's overlay settle alone, then joins the internet
// again: the half without the registry asks it for a bootstrap peer (it
// has no route to the registry's node) and the two overlays merge within
// two tunnel refreshes.
func TestPartition(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, halvesSpec())
	c := cluster.ForTest(t, cluster.Options{Internet: in})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	second := []string{"n3", "n4", "n5"}
	require.NoError(t, in.CutLink("isp2", internet.Core))
	split := time.Now()
	crossTunnels := func() int {
		count := 0
		for _, n := range c.Nodes() {
			for _, tu := range nodeStatus(t, c, n).Tunnels {
				peer := ""
				for _, other := range c.Nodes() {
					if c.Node(other).Subnet == tu.Peer {
						peer = other
					}
				}
				if slices.Contains(second, n) != slices.Contains(second, peer) {
					count++
				}
			}
		}
		return count
	}
	require.Eventually(t, func() bool { return crossTunnels() == 0 }, 60*time.Second, time.Second,
		"tunnels across the cut remain")
	for _, half := range [][]string{{"registry", "n1", "n2"}, second} {
		for _, a := range half {
			for _, b := range half {
				if a != b {
					// A half rebuilds its mesh from its peer caches, at
					// the tunnel refreshes (60 s): two of them, at most.
					require.Eventually(t, func() bool { return c.Ping(a, b) == nil }, 2*time.Minute, time.Second,
						"%s → %s inside a half", a, b)
				}
			}
		}
	}
	require.Error(t, c.Ping("n1", "n3"), "the halves are apart")
	t.Logf("split: two overlays after %s", time.Since(split).Round(time.Second))

	require.NoError(t, in.RestoreLink("isp2", internet.Core))
	joined := time.Now()
	m, err = c.WaitReachable(context.Background(), 2*tunnelRefresh)
	require.NoError(t, err, "the overlays did not merge within two tunnel refreshes:\n%v", m)
	t.Logf("joined: one overlay again after %s (bound %s)", time.Since(joined).Round(time.Second), 2*tunnelRefresh)
}
