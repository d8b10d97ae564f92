package trafficload

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJain(t *testing.T) {
	require.InDelta(t, 1.0, Jain([]uint64{5, 5, 5, 5}), 1e-9)
	require.InDelta(t, 0.25, Jain([]uint64{8, 0, 0, 0}), 1e-9)
	// Two flows of eight at half a share each.
	require.InDelta(t, 49.0/52, Jain([]uint64{2, 2, 2, 2, 2, 2, 1, 1}), 1e-9)
	require.Zero(t, Jain([]uint64{0, 0}))
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 51*time.Millisecond, Percentile(d, 0.5))
	require.Equal(t, 100*time.Millisecond, Percentile(d, 0.99))
	require.Equal(t, 100*time.Millisecond, d[0], "the input is left in its order")
}
