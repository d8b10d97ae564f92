package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/node"
)

// TestLivePayload: a network started without IPv4 payload nor traffic
// class gets both from new parameters (the registry restarted with --ipv4
// and --traffic-class); the nodes, left running, take their IPv4 address
// and class address and ping each other over IPv4 and between class
// addresses. Removed again from the registry, both leave the nodes: the
// addresses go from re6st0 and Babel retracts the routes.
func TestLivePayload(t *testing.T) {
	netns.RequireRoot(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs:  []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp1"}},
	})
	c := cluster.ForTest(t, cluster.Options{Internet: in})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
	version := nodeStatus(t, c, "n1").Params.Version
	for _, name := range c.Nodes() {
		s := nodeStatus(t, c, name)
		require.False(t, s.IPv4.IsValid(), name)
		require.Empty(t, s.Classes, name)
	}

	c.SetRegistryArgs("--ipv4", "10.42.0.0/16", "8", "--traffic-class", "keepalive,fd00:1::/32,dscp=46,priority=7")
	require.NoError(t, c.KillRegistry())
	require.NoError(t, c.StartRegistry())
	start := time.Now()
	version = waitVersion(t, c, version, 60*time.Second)
	status := map[string]node.Status{}
	var missing string
	require.Eventually(t, func() bool {
		for _, name := range c.Nodes() {
			s := nodeStatus(t, c, name)
			if !s.IPv4.IsValid() || len(s.Classes) != 1 {
				missing = name
				return false
			}
			status[name] = s
		}
		return true
	}, 3*hello, 200*time.Millisecond, "%s has no IPv4 address or class address", &missing)
	for name, s := range status {
		addrs := overlayAddrs(t, c, name)
		require.Contains(t, addrs, s.IPv4.String(), name)
		require.Contains(t, addrs, netip.PrefixFrom(s.Classes[0].Address, s.Classes[0].Range.Bits()).String(), name)
		require.Equal(t, "keepalive", s.Classes[0].Name, name)
	}
	var last error
	require.Eventually(t, func() bool {
		last = pingPayload(c, status)
		return last == nil
	}, 3*hello+30*time.Second, time.Second, "pings over IPv4 and between class addresses: %v", &last)
	t.Logf("IPv4 payload and traffic class applied live: nodes ping each other %s after the registry restarted", time.Since(start).Round(time.Second))

	c.SetRegistryArgs()
	require.NoError(t, c.KillRegistry())
	require.NoError(t, c.StartRegistry())
	start = time.Now()
	waitVersion(t, c, version, 60*time.Second)
	var left string
	require.Eventually(t, func() bool {
		for _, name := range c.Nodes() {
			s := nodeStatus(t, c, name)
			addrs := overlayAddrs(t, c, name)
			old := status[name]
			if s.IPv4.IsValid() || len(s.Classes) != 0 || strings.Contains(addrs, old.IPv4.String()) ||
				strings.Contains(addrs, netip.PrefixFrom(old.Classes[0].Address, old.Classes[0].Range.Bits()).String()) {
				left = name + ": address still there"
				return false
			}
			for _, r := range s.Routes {
				for other, o := range status {
					if other != name && (r.Prefix == o.IPv4Subnet.String() || r.Prefix == o.Classes[0].Prefix.String()) {
						left = fmt.Sprintf("%s still routes %s of %s", name, r.Prefix, other)
						return false
					}
				}
			}
		}
		return true
	}, 3*hello+10*time.Second, 500*time.Millisecond, "IPv4 payload and class not removed: %v", &left)
	t.Logf("IPv4 payload and traffic class removed live: addresses and routes gone %s after the registry restarted", time.Since(start).Round(time.Second))
	_, err = c.WaitReachable(context.Background(), 30*time.Second)
	require.NoError(t, err, "reachability after the removal")
}

// overlayAddrs is what `ip addr show dev re6st0` prints on a node.
func overlayAddrs(t *testing.T, c *cluster.Cluster, name string) string {
	t.Helper()
	out, err := c.Node(name).Host.NS.Run("ip", "addr", "show", "dev", "re6st0")
	require.NoError(t, err, out)
	return out
}

// pingPayload pings from each node every other's IPv4 address, and its
// class address from its own.
func pingPayload(c *cluster.Cluster, status map[string]node.Status) error {
	for a, sa := range status {
		for b, sb := range status {
			if a == b {
				continue
			}
			ns := c.Node(a).Host.NS
			if out, err := ns.Run("ping", "-4", "-c", "1", "-W", "2", sb.IPv4.Addr().String()); err != nil {
				return fmt.Errorf("%s → %s over IPv4: %v\n%s", a, b, err, out)
			}
			if out, err := ns.Run("ping", "-6", "-c", "1", "-W", "2", "-I", sa.Classes[0].Address.String(), sb.Classes[0].Address.String()); err != nil {
				return fmt.Errorf("%s → %s between class addresses: %v\n%s", a, b, err, out)
			}
		}
	}
	return nil
}
