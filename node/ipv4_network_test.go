package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
)

// TestIPv4Payload runs a network whose registry has an IPv4 payload
// (--ipv4 "10.42.0.0/16 8"): each node takes the /24 of its certificate's
// subject serial from the network parameters, puts its address on the
// overlay device, announces the subnet in Babel (v4-via-v6), and every
// node pings every other over IPv4.
func TestIPv4Payload(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs: []internet.ISP{
			{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
			{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
		},
		Hosts: []internet.HostSpec{
			{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp2"}, {Name: "n3", On: "isp2"},
		},
	})
	c := cluster.ForTest(t, cluster.Options{Internet: in, RegistryArgs: []string{"--ipv4", "10.42.0.0/16", "8"}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	network := netip.MustParsePrefix("10.42.0.0/16")
	addrs := map[string]netip.Addr{}
	subnets := map[netip.Prefix]string{}
	for _, name := range c.Nodes() {
		s := nodeStatus(t, c, name)
		require.True(t, s.IPv4.IsValid(), "%s has no IPv4 address", name)
		require.Equal(t, network.Bits(), s.IPv4.Bits(), name)
		require.True(t, network.Contains(s.IPv4.Addr()) && s.IPv4Subnet.Contains(s.IPv4.Addr()), "%s: %s in %s", name, s.IPv4, s.IPv4Subnet)
		require.Equal(t, 24, s.IPv4Subnet.Bits(), name)
		require.NotContains(t, subnets, s.IPv4Subnet, "%s and %s share a subnet", name, subnets[s.IPv4Subnet])
		subnets[s.IPv4Subnet] = name
		addrs[name] = s.IPv4.Addr()
	}

	ping := func() error {
		for _, a := range c.Nodes() {
			for _, b := range c.Nodes() {
				if a == b {
					continue
				}
				if out, err := c.Node(a).Host.NS.Run("ping", "-4", "-c", "1", "-W", "2", addrs[b].String()); err != nil {
					return fmt.Errorf("%s → %s (%s): %v\n%s", a, b, addrs[b], err, out)
				}
			}
		}
		return nil
	}
	var last error
	require.Eventually(t, func() bool { last = ping(); return last == nil }, 3*hello+30*time.Second, time.Second,
		"every node pings every other over IPv4: %v", &last)
}
