package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/node"
)

// TestLivePayload: a network started without IPv4 payload nor traffic
// class gets both from new parameters (the registry restarted with --ipv4
// and --traffic-class); the nodes, left running, take their IPv4 address
// and class address and ping each other over IPv4 and between class
// addresses. The IPv4 network then moves and a class is put before the
// first (whose id changes: the routes already written are re-marked, as
// the log says, and the data plane counts the pings in the new id); at last both are removed
// from the registry: the addresses leave re6st0 and Babel retracts the
// routes.
func TestLivePayload(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs:  []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp1"}},
	})
	c := cluster.ForTest(t, cluster.Options{Internet: in})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
	version := nodeStatus(t, c, "n1").Params.Version
	waitPayload(t, c, netip.Prefix{}, nil)
	keepAlive := "keepalive,fd00:1::/32,dscp=46,priority=7"

	start := time.Now()
	version = newRegistryArgs(t, c, version, "--ipv4", "10.42.0.0/16", "8", "--traffic-class", keepAlive)
	first := waitPayload(t, c, netip.MustParsePrefix("10.42.0.0/16"), []string{"keepalive"})
	pingPayload(t, c, first, 0)
	t.Logf("IPv4 payload and traffic class added live: nodes ping each other %s after the registry restarted", time.Since(start).Round(time.Second))

	start = time.Now()
	version = newRegistryArgs(t, c, version, "--ipv4", "10.43.0.0/16", "8",
		"--traffic-class", "bulk,fd00:2::/32,dscp=10,priority=0", "--traffic-class", keepAlive)
	second := waitPayload(t, c, netip.MustParsePrefix("10.43.0.0/16"), []string{"bulk", "keepalive"})
	waitGone(t, c, first, second)
	for name, s := range second {
		require.Equal(t, first[name].Classes[0].Address, s.Classes[1].Address, "%s keeps its keep-alive address", name)
	}
	for _, name := range c.Nodes() {
		log, err := os.ReadFile(c.Node(name).Log())
		require.NoError(t, err)
		require.Regexp(t, `"routes_remarked":[1-9]`, string(log), "%s re-marked its routes into the renumbered class", name)
	}
	pingPayload(t, c, second, 1)
	t.Logf("IPv4 network moved and keep-alive class renumbered live: %s after the registry restarted", time.Since(start).Round(time.Second))

	start = time.Now()
	newRegistryArgs(t, c, version)
	waitGone(t, c, second, waitPayload(t, c, netip.Prefix{}, nil))
	t.Logf("IPv4 payload and traffic classes removed live: addresses and routes gone %s after the registry restarted", time.Since(start).Round(time.Second))
	_, err = c.WaitReachable(context.Background(), 30*time.Second)
	require.NoError(t, err, "reachability after the removal")
}

// newRegistryArgs restarts the registry with args (new network
// parameters) and waits until every node runs a version newer than v.
func newRegistryArgs(t *testing.T, c *cluster.Cluster, v uint64, args ...string) uint64 {
	t.Helper()
	c.SetRegistryArgs(args...)
	require.NoError(t, c.KillRegistry())
	require.NoError(t, c.StartRegistry())
	return waitVersion(t, c, v, 60*time.Second)
}

// waitPayload waits until every node shows an IPv4 address in ipv4 (none
// if ipv4 is zero) and the classes named, each with its address on re6st0,
// and returns their statuses.
func waitPayload(t *testing.T, c *cluster.Cluster, ipv4 netip.Prefix, classes []string) map[string]node.Status {
	t.Helper()
	status := map[string]node.Status{}
	var why string
	require.Eventually(t, func() bool {
		for _, name := range c.Nodes() {
			s := nodeStatus(t, c, name)
			if s.IPv4.IsValid() != ipv4.IsValid() || ipv4.IsValid() && !ipv4.Contains(s.IPv4.Addr()) {
				why = fmt.Sprintf("%s has IPv4 address %v, not one in %v", name, s.IPv4, ipv4)
				return false
			}
			var names []string
			for _, cs := range s.Classes {
				names = append(names, cs.Name)
			}
			if !slices.Equal(names, classes) {
				why = fmt.Sprintf("%s has classes %v, not %v", name, names, classes)
				return false
			}
			addrs := overlayAddrs(t, c, name)
			for _, a := range payloadAddrs(s) {
				if !strings.Contains(addrs, " "+a+" ") {
					why = fmt.Sprintf("%s: %s not on re6st0", name, a)
					return false
				}
			}
			status[name] = s
		}
		return true
	}, 3*hello, 200*time.Millisecond, "%v", &why)
	return status
}

// payloadAddrs are the IPv4 and class addresses of a node, as ip(8)
// prints them.
func payloadAddrs(s node.Status) []string {
	var out []string
	if s.IPv4.IsValid() {
		out = append(out, s.IPv4.String())
	}
	for _, cs := range s.Classes {
		out = append(out, netip.PrefixFrom(cs.Address, cs.Range.Bits()).String())
	}
	return out
}

// payloadPrefixes are the IPv4 subnet and class prefixes a node announces.
func payloadPrefixes(s node.Status) []string {
	var out []string
	if s.IPv4Subnet.IsValid() {
		out = append(out, s.IPv4Subnet.String())
	}
	for _, cs := range s.Classes {
		out = append(out, cs.Prefix.String())
	}
	return out
}

// waitGone waits until what the nodes had in before and no longer have in
// after is gone: their addresses from re6st0, their prefixes from the
// other nodes' Babel routes.
func waitGone(t *testing.T, c *cluster.Cluster, before, after map[string]node.Status) {
	t.Helper()
	var why string
	require.Eventually(t, func() bool {
		for _, name := range c.Nodes() {
			addrs := overlayAddrs(t, c, name)
			for _, a := range payloadAddrs(before[name]) {
				if !slices.Contains(payloadAddrs(after[name]), a) && strings.Contains(addrs, " "+a+" ") {
					why = fmt.Sprintf("%s: %s still on re6st0", name, a)
					return false
				}
			}
			for _, r := range nodeStatus(t, c, name).Routes {
				for other := range before {
					if other != name && slices.Contains(payloadPrefixes(before[other]), r.Prefix) &&
						!slices.Contains(payloadPrefixes(after[other]), r.Prefix) {
						why = fmt.Sprintf("%s still routes %s of %s", name, r.Prefix, other)
						return false
					}
				}
			}
		}
		return true
	}, 3*hello+10*time.Second, 500*time.Millisecond, "%v", &why)
}

// overlayAddrs is what `ip addr show dev re6st0` prints on a node.
func overlayAddrs(t *testing.T, c *cluster.Cluster, name string) string {
	t.Helper()
	out, err := c.Node(name).Host.NS.Run("ip", "addr", "show", "dev", "re6st0")
	require.NoError(t, err, out)
	return out
}

// pingPayload waits until each node pings every other's IPv4 address, and
// its address in the class of index class from its own; the data plane of
// each node counts its echo requests in that class.
func pingPayload(t *testing.T, c *cluster.Cluster, status map[string]node.Status, class int) {
	t.Helper()
	ping := func() error {
		for a, sa := range status {
			for b, sb := range status {
				if a == b {
					continue
				}
				ns := c.Node(a).Host.NS
				if out, err := ns.Run("ping", "-4", "-c", "1", "-W", "2", sb.IPv4.Addr().String()); err != nil {
					return fmt.Errorf("%s → %s over IPv4: %v\n%s", a, b, err, out)
				}
				if out, err := ns.Run("ping", "-6", "-c", "1", "-W", "2", "-I", sa.Classes[class].Address.String(), sb.Classes[class].Address.String()); err != nil {
					return fmt.Errorf("%s → %s between %s addresses: %v\n%s", a, b, sa.Classes[class].Name, err, out)
				}
			}
		}
		return nil
	}
	var last error
	require.Eventually(t, func() bool { last = ping(); return last == nil }, 3*hello+30*time.Second, time.Second,
		"pings over IPv4 and between class addresses: %v", &last)
	for name, s := range status {
		after := nodeStatus(t, c, name).Classes[class]
		require.Equal(t, s.Classes[class].ID, after.ID)
		require.GreaterOrEqual(t, after.Traffic.Packets-s.Classes[class].Traffic.Packets, uint64(len(status)-1),
			"%s's data plane counts its pings in class %d (%s)", name, after.ID, after.Name)
	}
}
