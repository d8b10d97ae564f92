package node_test

import (
	"testing"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
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
