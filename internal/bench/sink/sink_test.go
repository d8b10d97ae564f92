package sink

import (
	"testing"

	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

const xdpDrop = 1

// TestCountsAndDrops runs the sink on frames with BPF_PROG_RUN: every run
// drops and adds one to the count.
func TestCountsAndDrops(t *testing.T) {
	netns.RequireRoot(t)
	s, err := Load()
	require.NoError(t, err)
	defer s.Close()
	n, err := s.Count()
	require.NoError(t, err)
	require.Zero(t, n)
	for i := 1; i <= 3; i++ {
		verdict, _, err := s.Program().Benchmark(make([]byte, 64), 1, nil)
		require.NoError(t, err)
		require.EqualValues(t, xdpDrop, verdict)
		n, err = s.Count()
		require.NoError(t, err)
		require.EqualValues(t, i, n)
	}
}

// TestAttach attaches the sink to an interface and detaches it.
func TestAttach(t *testing.T) {
	ns := netns.ForTest(t, "sink")
	s, err := Load()
	require.NoError(t, err)
	defer s.Close()
	_, err = ns.Run("ip", "link", "add", "d0", "up", "type", "veth", "peer", "name", "d1")
	require.NoError(t, err)
	var l link.Link
	require.NoError(t, ns.Do(func() error {
		d, err := netlink.LinkByName("d0")
		if err != nil {
			return err
		}
		l, err = s.Attach(d.Attrs().Index)
		return err
	}))
	out, err := ns.Run("ip", "-o", "link", "show", "d0")
	require.NoError(t, err)
	require.Contains(t, out, "xdp")
	require.NoError(t, l.Close())
	out, err = ns.Run("ip", "-o", "link", "show", "d0")
	require.NoError(t, err)
	require.NotContains(t, out, "xdp", "closing the link detaches the sink")
}
