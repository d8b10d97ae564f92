package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/node"
)

// TestClassRouting: n1 and n2 have a tunnel between them and each one to
// relay. The keep-alive class may use the tunnels through relay only
// (--class-peer on n1, n2 and relay); the bulk class every tunnel. From
// n1, traffic to n2's bulk address goes straight to n2 and traffic to its
// keep-alive address through relay (traceroute6 from each class address
// of n1). relay stops: the keep-alive class has no path of its own and
// falls back to the direct tunnel; relay starts again: it moves back.
func TestClassRouting(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs: []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"},
			{Name: "relay", On: "isp1"}, {Name: "n2", On: "isp1"}},
	})
	var c *cluster.Cluster
	classPeer := func(peers ...string) []string {
		var cns []string
		for _, p := range peers {
			cns = append(cns, c.Node(p).CN)
		}
		return []string{"--class-peer", "keepalive=" + strings.Join(cns, ",")}
	}
	c = cluster.ForTest(t, cluster.Options{Internet: in,
		// No tunnel refresh during the test: the direct tunnel stays.
		TunnelRefresh: 3600,
		RegistryArgs: []string{"--traffic-class", "keepalive,fd00:1::/32,dscp=46,priority=7,metric=latency",
			"--traffic-class", "bulk,fd00:2::/32,dscp=10,priority=0"},
		NodeArgs: func(n *cluster.Node) []string {
			switch n.Name {
			case "registry":
				// It takes no tunnel, so that n1, n2 and relay tunnel to
				// each other: a node without incoming tunnels keeps two
				// outgoing ones (re6st's rule), and n1 and relay, both with
				// theirs to the registry and n2, had none between them.
				return []string{"--max-clients", "0"}
			case "n1", "n2":
				return classPeer("relay")
			case "relay":
				return classPeer("n1", "n2")
			}
			return nil
		}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	peerOf := func(s node.Status, via string) string {
		for _, tu := range s.Tunnels {
			if fmt.Sprintf("t%d", tu.ID) == via {
				for _, name := range c.Nodes() {
					if c.Node(name).Subnet == tu.Peer {
						return name
					}
				}
			}
		}
		return ""
	}
	// next is the node through which n1 routes n2's prefix in class i.
	n2 := nodeStatus(t, c, "n2")
	next := func(class int) string {
		s := nodeStatus(t, c, "n1")
		for _, r := range s.Classes[class].Routes {
			if r.Prefix == n2.Classes[class].Prefix.String() && r.Installed {
				return peerOf(s, r.Via)
			}
		}
		return ""
	}
	paths := func(keepalive string) func() bool {
		return func() bool { return next(0) == keepalive && next(1) == "n2" }
	}
	// The mesh n1–n2, n1–relay, relay–n2 forms within a tunnel refresh of
	// the start (each node opens 3 tunnels of 3 possible).
	require.Eventually(t, paths("relay"), tunnelRefresh, time.Second,
		"keep-alive through relay, bulk direct; n1 routes keep-alive via %q, bulk via %q", next(0), next(1))

	n1 := nodeStatus(t, c, "n1")
	relay := nodeStatus(t, c, "relay")
	relayAddrs := []string{c.Node("relay").Addr.String()}
	for _, cs := range relay.Classes {
		relayAddrs = append(relayAddrs, cs.Address.String())
	}
	// hops are the addresses traceroute6 gives, nil if it fails.
	hops := func(class int) []string {
		out, err := c.Node("n1").Host.NS.Run("traceroute6", "-n", "-q1", "-w2", "-m4",
			"-s", n1.Classes[class].Address.String(), n2.Classes[class].Address.String())
		if err != nil {
			t.Logf("traceroute6: %v: %s", err, out)
			return nil
		}
		var addrs []string
		for _, m := range regexp.MustCompile(`(?m)^\s*\d+\s+(\S+)`).FindAllStringSubmatch(out, -1) {
			addrs = append(addrs, m[1])
		}
		t.Logf("traceroute6 in %s:\n%s", n1.Classes[class].Name, out)
		return addrs
	}
	ka, bulk := n2.Classes[0].Address.String(), n2.Classes[1].Address.String()
	require.Equal(t, []string{bulk}, hops(1), "bulk straight to n2")
	kaHops := hops(0)
	require.Len(t, kaHops, 2, "keep-alive in two hops")
	require.Contains(t, relayAddrs, kaHops[0], "keep-alive's first hop is relay")
	require.Equal(t, ka, kaHops[1])

	// relay stops (its tunnels go): Babel loses the keep-alive path of its
	// own within a few hellos, and n1 falls back to the direct tunnel.
	cut := time.Now()
	require.NoError(t, c.StopNode("relay"))
	require.Eventually(t, paths("n2"), 6*hello, 500*time.Millisecond, "keep-alive falls back to the direct tunnel")
	t.Logf("fallback %s after relay stopped", time.Since(cut).Round(100*time.Millisecond))
	require.Equal(t, []string{ka}, hops(0), "keep-alive straight to n2")

	restored := time.Now()
	require.NoError(t, c.StartNode("relay"))
	// relay reopens its tunnels from its peer cache at its first ticks;
	// each comes up after two hellos.
	require.Eventually(t, paths("relay"), 45*time.Second, 500*time.Millisecond, "keep-alive back through relay")
	t.Logf("back through relay %s after it started", time.Since(restored).Round(100*time.Millisecond))
	// n1 routes through relay as soon as it hears relay; relay's own
	// tunnels to n1 and n2 may still be coming up, and its answer to the
	// first probe lost (a run here saw "*" for relay's hop): asked again.
	require.Eventually(t, func() bool {
		kaHops = hops(0)
		return len(kaHops) == 2 && slices.Contains(relayAddrs, kaHops[0]) && kaHops[1] == ka
	}, 3*hello, time.Second, "keep-alive's first hop is relay again: %v", kaHops)
	require.Equal(t, []string{bulk}, hops(1), "bulk still straight to n2")
}
