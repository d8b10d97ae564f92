package node_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSameCountry runs a network whose registry has --same-country FR and
// a GeoIP database placing the first ISP in France and the second in
// Germany: n1 says --country FR, the others learn their country from the
// registry. French nodes tunnel only to French nodes, the others never to
// French nodes: two overlays, each whole.
func TestSameCountry(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, smallSpec())
	geoip := filepath.Join(t.TempDir(), "geoip.csv")
	require.NoError(t, os.WriteFile(geoip, []byte("198.18.0.0/16,FR,EU\n198.19.0.0/16,DE,EU\n"), 0o644))
	c := cluster.ForTest(t, cluster.Options{Internet: in, RegistryArgs: []string{"--same-country", "FR", "--geoip", geoip},
		NodeArgs: func(n *cluster.Node) []string {
			if n.Name == "n1" {
				return []string{"--country", "FR"}
			}
			return nil
		}})
	require.NoError(t, c.StartNodes())
	france := []string{"registry", "n1"}
	pairs := [][2]string{{"registry", "n1"}, {"n1", "registry"}, {"n2", "n3"}, {"n3", "n2"}}
	start := time.Now()
	for _, p := range pairs {
		require.Eventually(t, func() bool { return c.Ping(p[0], p[1]) == nil }, 3*time.Minute, time.Second, "%s → %s", p[0], p[1])
	}
	t.Logf("two overlays, FR and DE, after %s", time.Since(start).Round(time.Second))
	for _, n := range c.Nodes() {
		for _, tu := range nodeStatus(t, c, n).Tunnels {
			for _, other := range c.Nodes() {
				if c.Node(other).Subnet == tu.Peer {
					assert.Equal(t, slices.Contains(france, n), slices.Contains(france, other), "tunnel %s — %s across the border", n, other)
				}
			}
		}
	}
	assert.Error(t, c.Ping("n2", "n1"), "no route across the border")
	_, err := c.WaitReachable(context.Background(), time.Second)
	assert.Error(t, err)
	assert.True(t, c.NodeLogContains("n2", `"country":"DE"`), "n2 learnt its country from the registry")
}
