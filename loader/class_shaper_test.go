package loader_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/internal/trafficload"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// shapedPair is A — B with, on A, class 1 (keep-alive: rank 7, 1 Mbit/s)
// for B's 2001:db8:2:1::/64 and class 2 (bulk: rank 0, 15 Mbit/s, 8 flow
// leaves) for the rest of B's prefix, shaped at 16 Mbit/s on A's underlay.
type shapedPair struct {
	a, b      *chain.Node
	keepAlive netip.Addr
	report    *loader.ShapeReport
}

const shapedLinkRate = 16_000_000

func buildShapedPair(t *testing.T) *shapedPair {
	netns.RequireRoot(t)
	c := chain.Build(t, chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	p := &shapedPair{a: c.Nodes[0], b: c.Nodes[1]}
	d := p.a.Datapath
	require.NoError(t, d.SetClass(loader.Class{ID: 1, DSCP: 46, Priority: 7, Rate: 1_000_000}))
	require.NoError(t, d.SetClass(loader.Class{ID: 2, DSCP: 10, Priority: 0, Rate: 15_000_000, Flows: 8}))
	keepAliveNet := netip.MustParsePrefix("2001:db8:2:1::/64")
	p.keepAlive = keepAliveNet.Addr().Next()
	require.NoError(t, d.AddRoute(keepAliveNet, netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: 1}))
	require.NoError(t, d.SetRoute(chain.OverlayPrefix(1), netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: 2}))
	require.NoError(t, p.b.NS.AddrAdd(p.b.Datapath.State.Overlay, netip.PrefixFrom(p.keepAlive, 64)))
	var err error
	p.report, err = d.Shape(p.a.Right, shapedLinkRate)
	require.NoError(t, err)
	t.Cleanup(func() { d.Unshape(p.a.Right) })
	return p
}

// The shaper's tree and the switch of the classes to it; unshape restores
// the classes' own priority.
func TestClassShaperTree(t *testing.T) {
	p := buildShapedPair(t)
	t.Logf("shaper: %+v", p.report)
	require.Len(t, p.report.Classes, 2)
	// The classes have rates: HTB, whatever the kernel has.
	require.Equal(t, "htb", p.report.Root)
	require.NotEmpty(t, p.report.RootWhy)
	require.Len(t, p.report.Qdiscs, len(loader.ProbedQdiscs))
	root, err := p.a.Datapath.ShaperRoot(p.a.Right)
	require.NoError(t, err)
	require.Equal(t, "htb", root)
	require.Equal(t, loader.ShapedClass{ID: 1, Handle: "1:100", Rate: 1_000_000, HTBPrio: 0, Leaves: 1}, p.report.Classes[0])
	require.Equal(t, loader.ShapedClass{ID: 2, Handle: "1:200", Rate: 15_000_000, HTBPrio: 7, Leaves: 8}, p.report.Classes[1])
	out, err := p.a.NS.Run("tc", "class", "show", "dev", p.a.Right)
	require.NoError(t, err)
	for _, h := range []string{"1:1 ", "1:ffff", "1:100", "1:200", "1:201", "1:208"} {
		require.Contains(t, out, "class htb "+h, out)
	}
	cs, err := p.a.Datapath.Classes()
	require.NoError(t, err)
	for _, c := range cs {
		require.True(t, c.Shaped, "class %d", c.ID)
	}
	require.NoError(t, p.a.Datapath.Unshape(p.a.Right))
	out, err = p.a.NS.Run("tc", "qdisc", "show", "dev", p.a.Right)
	require.NoError(t, err)
	require.NotContains(t, out, "htb")
	root, err = p.a.Datapath.ShaperRoot(p.a.Right)
	require.NoError(t, err)
	require.Empty(t, root)
	cs, err = p.a.Datapath.Classes()
	require.NoError(t, err)
	for _, c := range cs {
		require.False(t, c.Shaped, "class %d", c.ID)
	}
}

// While 8 UDP flows of the bulk class offer 1, 2, … 8 times their fair
// share of the link, (1) they get equal shares (Jain's index), (2) the
// keep-alive class's round trips stay short: it is dequeued before the
// bulk backlog, which holds far more than the keep-alive delay.
func TestClassShaperPriorityAndFairness(t *testing.T) {
	p := buildShapedPair(t)
	const flows = 8
	rates := make([]uint64, flows)
	for i := range rates {
		rates[i] = uint64(i+1) * shapedLinkRate / flows
	}
	got, err := trafficload.UDPFlows(p.a.NS, p.b.NS, p.b.Overlay, rates, 3*time.Second, func() error {
		rtts, err := trafficload.PingRTTs(p.a.NS, p.keepAlive, 50, 20*time.Millisecond)
		if err != nil {
			return err
		}
		p99 := trafficload.Percentile(rtts, 0.99)
		t.Logf("keep-alive RTT p50 %v p99 %v", trafficload.Percentile(rtts, 0.5), p99)
		st, err := p.a.Datapath.ShaperStats(p.a.Right)
		if err != nil {
			return err
		}
		var backlog uint32
		for _, s := range st {
			backlog += s.Backlog
		}
		bulkDelay := time.Duration(float64(backlog) * 8 / shapedLinkRate * float64(time.Second))
		t.Logf("bulk backlog %d bytes = %v at the link rate", backlog, bulkDelay)
		if bulkDelay < 100*time.Millisecond {
			return fmt.Errorf("the bulk class is not congested: %v of backlog", bulkDelay)
		}
		if p99 > 30*time.Millisecond {
			return fmt.Errorf("keep-alive RTT p99 %v: it waited behind the bulk class", p99)
		}
		return nil
	})
	require.NoError(t, err)
	t.Logf("bulk flows received %v bytes", got)
	j := trafficload.Jain(got)
	t.Logf("Jain's index %.4f", j)
	require.GreaterOrEqual(t, j, 0.9)
}
