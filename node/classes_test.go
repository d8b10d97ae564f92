package node_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

// TestTrafficClasses: the registry publishes two classes; each node
// derives its prefix and address in each range from its certificate,
// configures them and announces them; a node reaches another's class
// address from its own, through the data plane, which counts the packets
// in the class.
func TestTrafficClasses(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs:  []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp1"}},
	})
	classes := []string{"keepalive,fd00:1::/32,dscp=46,priority=7,rate=1M,metric=latency", "bulk,fd00:2::/32,dscp=10,priority=0"}
	c := cluster.ForTest(t, cluster.Options{Internet: in,
		RegistryArgs: []string{"--traffic-class", classes[0], "--traffic-class", classes[1]}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	network := nodeStatus(t, c, "n1").Network
	for _, name := range c.Nodes() {
		s := nodeStatus(t, c, name)
		require.Len(t, s.Classes, 2, name)
		for i, cs := range s.Classes {
			want, err := netparams.ParseTrafficClass(classes[i])
			require.NoError(t, err)
			require.Equal(t, uint8(i+1), cs.ID)
			require.Equal(t, want, cs.TrafficClass)
			prefix, err := netparams.ClassPrefix(network, c.Node(name).Subnet, want.Range)
			require.NoError(t, err)
			require.Equal(t, prefix, cs.Prefix, "%s's prefix in %s", name, want.Name)
			require.Equal(t, prefix.Addr().Next(), cs.Address)
			out, err := c.Node(name).Host.NS.Run("ip", "-6", "addr", "show", "dev", "re6st0")
			require.NoError(t, err)
			require.Contains(t, out, netip.PrefixFrom(cs.Address, want.Range.Bits()).String(), "%s's class address on re6st0", name)
		}
	}

	// n1 pings n2's keep-alive address from its own: the data plane of n1
	// counts the echo requests in class 1, n2 its replies.
	n1, n2 := nodeStatus(t, c, "n1"), nodeStatus(t, c, "n2")
	ka1, ka2 := n1.Classes[0], n2.Classes[0]
	require.Eventually(t, func() bool {
		for _, r := range nodeStatus(t, c, "n1").Classes[0].Routes {
			if r.Prefix == ka2.Prefix.String() && r.Installed {
				return true
			}
		}
		return false
	}, 3*hello, 200*time.Millisecond, "n1 routes n2's keep-alive prefix %s", ka2.Prefix)
	out, err := c.Node("n1").Host.NS.Run("ping", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "2", "-I", ka1.Address.String(), ka2.Address.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "5 received")
	after1, after2 := nodeStatus(t, c, "n1").Classes[0], nodeStatus(t, c, "n2").Classes[0]
	require.GreaterOrEqual(t, after1.Traffic.Packets-ka1.Traffic.Packets, uint64(5), "n1's keep-alive class counted the requests")
	require.GreaterOrEqual(t, after2.Traffic.Packets-ka2.Traffic.Packets, uint64(5), "n2's keep-alive class counted the replies")
}
