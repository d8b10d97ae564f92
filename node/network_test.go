package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/stretchr/testify/require"
)

// reachBound is how long a fresh network may take until every node
// reaches every other (stated in docs/node.md).
const reachBound = 90 * time.Second

func startCluster(t *testing.T) *cluster.Cluster {
	netns.RequireRoot(t)
	c := cluster.ForTest(t, cluster.Options{})
	require.NoError(t, c.StartNodes())
	return c
}

func waitAll(t *testing.T, c *cluster.Cluster, within time.Duration) {
	t.Helper()
	m, err := c.WaitReachable(context.Background(), within)
	if err != nil {
		t.Logf("reachability:\n%v", m)
		for _, l := range c.Logs() {
			t.Log(l)
		}
	}
	require.NoError(t, err)
}

func TestEveryNodeReachesEveryOther(t *testing.T) {
	c := startCluster(t)
	start := time.Now()
	waitAll(t, c, reachBound)
	t.Logf("%d nodes reach each other after %s", len(c.Nodes()), time.Since(start).Round(time.Second))
}
