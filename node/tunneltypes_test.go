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
)

// dropGRE is a firewall in the core router: GRE between the ISPs is
// dropped, UDP passes.
const dropGRE = "add table ip fw; add chain ip fw forward { type filter hook forward priority 0; }; " +
	"add rule ip fw forward ip protocol gre drop"

// TestTunnelTypesFallBack: every node prefers GRE (--tunnel-types gre,fou)
// and the core between the two ISPs drops GRE. The nodes on both sides
// still reach each other: a tunnel across the core gets no Babel hello
// through, and its node falls back to FOU; tunnels within an ISP stay GRE.
func TestTunnelTypesFallBack(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs: []internet.ISP{
			{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
			{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
		},
		Hosts: []internet.HostSpec{
			{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"},
			{Name: "n2", On: "isp2"}, {Name: "n3", On: "isp2"},
		},
	})
	_, err := in.NS("core").Run("nft", dropGRE)
	require.NoError(t, err)
	c := cluster.ForTest(t, cluster.Options{Internet: in, TunnelRefresh: fastRefresh, NodeArgs: func(*cluster.Node) []string {
		return []string{"--tunnel-types", "gre,fou"}
	}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	ispOf := map[netip.Prefix]string{}
	for _, name := range c.Nodes() {
		ispOf[c.Node(name).Subnet] = c.Node(name).Host.ISP
	}
	// typed: every tunnel has the type it should (GRE, or FOU across the
	// core while the firewall is there); counts the tunnels across it.
	across := 0
	typed := func(acrossType loader.TunnelType) func() bool {
		return func() bool {
			across = 0
			for _, name := range c.Nodes() {
				for _, tu := range nodeStatus(t, c, name).Tunnels {
					want := loader.GRE
					if ispOf[tu.Peer] != c.Node(name).Host.ISP {
						want = acrossType
						across++
					}
					if tu.Encap != want {
						return false
					}
				}
			}
			return true
		}
	}
	// Tunnels being replaced when reachability was reached go within a
	// timeout: wait until every tunnel has its expected type.
	require.Eventually(t, typed(loader.FOU), 2*reachBound, time.Second, "tunnels across the core are FOU, within an ISP GRE")
	require.Positive(t, across, "some tunnels cross the core")

	// The firewall goes: at the refreshes after FOU's fallback is a refresh
	// period old, each node replaces a FOU tunnel, and the new ones are GRE.
	_, err = in.NS("core").Run("nft", "delete table ip fw")
	require.NoError(t, err)
	require.Eventually(t, typed(loader.GRE), 8*fastRefresh*time.Second, time.Second, "every tunnel back to GRE")
	m, err = c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
}

// fastRefresh (seconds) is the registry's tunnel_refresh for the tunnel
// types test: short, so that tunnels move back soon after a firewall goes.
const fastRefresh = 15
