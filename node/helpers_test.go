package node_test

import (
	"testing"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/stretchr/testify/require"
)

// nodeStatus reads a node's `re6stnet status --json`.
func nodeStatus(t testing.TB, c *cluster.Cluster, name string) node.Status {
	t.Helper()
	s, err := c.NodeStatus(name)
	require.NoError(t, err, name)
	return s
}

// clusterTest marks a test that runs a network of processes on a simulated
// internet of its own: it needs root, and runs in parallel with the other
// cluster tests (go test runs GOMAXPROCS of them at once), since each
// spends most of its time waiting for protocol timers.
func clusterTest(t *testing.T) {
	netns.RequireRoot(t)
	t.Parallel()
}
