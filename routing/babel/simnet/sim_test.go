package simnet

import (
	"net/netip"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/stretchr/testify/require"
)

func TestTwoNodes(t *testing.T) {
	s, err := New(2, Options{Seed: 1, CheckLoops: true})
	require.NoError(t, err)
	_, err = s.Connect(0, 1)
	require.NoError(t, err)
	took, ok := s.RunUntilConverged(30*time.Second, 100*time.Millisecond)
	require.True(t, ok)
	t.Logf("converged in %s", took)
	sel, ok := s.Nodes[0].Router.Selected(babel.KeyOf(NodePrefix(1), netip.Prefix{}))
	require.True(t, ok)
	require.Equal(t, uint16(96), sel.Metric)
	require.Empty(t, s.Loops())
}
