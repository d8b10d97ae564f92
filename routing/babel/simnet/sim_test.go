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

// build creates n nodes linked by edges.
func build(t testing.TB, n int, edges [][2]int, opts Options) (*Sim, map[[2]int]*Link) {
	t.Helper()
	s, err := New(n, opts)
	require.NoError(t, err)
	links := map[[2]int]*Link{}
	for _, e := range edges {
		l, err := s.Connect(e[0], e[1])
		require.NoError(t, err)
		links[e] = l
	}
	return s, links
}

func lineEdges(n int) [][2]int {
	var e [][2]int
	for i := 0; i+1 < n; i++ {
		e = append(e, [2]int{i, i + 1})
	}
	return e
}

func ringEdges(n int) [][2]int { return append(lineEdges(n), [2]int{n - 1, 0}) }

// randomEdges gives every node `out` links to random distinct others, the
// way re6st nodes open tunnels, on top of a ring so the graph is connected.
func randomEdges(s *Sim, n, out int) [][2]int {
	seen := map[[2]int]bool{}
	var edges [][2]int
	add := func(a, b int) {
		if a > b {
			a, b = b, a
		}
		if a != b && !seen[[2]int{a, b}] {
			seen[[2]int{a, b}] = true
			edges = append(edges, [2]int{a, b})
		}
	}
	for i := range n {
		add(i, (i+1)%n)
		for range out - 1 {
			add(i, s.Rand().IntN(n))
		}
	}
	return edges
}

func TestLineConverges(t *testing.T) {
	const n = 200
	s, _ := build(t, n, lineEdges(n), Options{Seed: 2, CheckLoops: true})
	took, ok := s.RunUntilConverged(120*time.Second, time.Second)
	require.True(t, ok, "%d pairs unreachable", s.Unreachable())
	t.Logf("line of %d converged in %s (%d events)", n, took, s.Clock.Steps())
	sel, ok := s.Nodes[0].Router.Selected(babel.KeyOf(NodePrefix(n-1), netip.Prefix{}))
	require.True(t, ok)
	require.Equal(t, uint16(96*(n-1)), sel.Metric)
	require.Empty(t, s.Loops())
}

func TestRingConverges(t *testing.T) {
	const n = 200
	s, _ := build(t, n, ringEdges(n), Options{Seed: 3, CheckLoops: true})
	took, ok := s.RunUntilConverged(120*time.Second, time.Second)
	require.True(t, ok, "%d pairs unreachable", s.Unreachable())
	t.Logf("ring of %d converged in %s", n, took)
	// Let the metrics settle on shortest paths, then check one.
	s.Run(20 * time.Second)
	sel, ok := s.Nodes[0].Router.Selected(babel.KeyOf(NodePrefix(n/2-1), netip.Prefix{}))
	require.True(t, ok)
	require.Equal(t, uint16(96*(n/2-1)), sel.Metric)
	require.Empty(t, s.Loops())
}

func TestRandomMeshConverges(t *testing.T) {
	const n = 250
	s, err := New(n, Options{Seed: 4, CheckLoops: true})
	require.NoError(t, err)
	for _, e := range randomEdges(s, n, 5) {
		_, err := s.Connect(e[0], e[1])
		require.NoError(t, err)
	}
	took, ok := s.RunUntilConverged(120*time.Second, time.Second)
	require.True(t, ok, "%d pairs unreachable", s.Unreachable())
	t.Logf("random mesh of %d converged in %s", n, took)
	require.Empty(t, s.Loops())
}

// TestNoLoopsUnderChurn flaps links and kills nodes in a random mesh and
// checks after every single event that no forwarding loop exists, then that
// the survivors converge again.
func TestNoLoopsUnderChurn(t *testing.T) {
	const n = 200
	s, err := New(n, Options{Seed: 5, CheckLoops: true})
	require.NoError(t, err)
	var links []*Link
	for _, e := range randomEdges(s, n, 4) {
		l, err := s.Connect(e[0], e[1])
		require.NoError(t, err)
		links = append(links, l)
	}
	_, ok := s.RunUntilConverged(60*time.Second, time.Second)
	require.True(t, ok)

	rng := s.Rand()
	startEvents := s.Clock.Steps()
	for step := range 80 {
		l := links[rng.IntN(len(links))]
		l.SetUp(!l.Up())
		if step%20 == 19 {
			s.Kill(rng.IntN(n))
		}
		s.Run(time.Duration(100+rng.IntN(700)) * time.Millisecond)
	}
	t.Logf("%d events checked for loops during churn", s.Clock.Steps()-startEvents)
	require.Empty(t, s.Loops())

	for _, l := range links {
		l.SetUp(true)
	}
	took, ok := s.RunUntilConverged(60*time.Second, 500*time.Millisecond)
	require.True(t, ok, "%d pairs unreachable", s.Unreachable())
	t.Logf("survivors reconverged in %s", took)
	require.Empty(t, s.Loops())
}

// TestStarvationResolvedBySeqnoRequest builds a network where the only
// alternative to a failed path is unfeasible: S-B-A and S-C-D-A. A selects
// the route through B (metric 192); D advertises S at 192, which is not
// below A's feasibility distance. When B dies, A must obtain a new seqno
// from S before it may use D.
func TestStarvationResolvedBySeqnoRequest(t *testing.T) {
	const S, B, A, C, D = 0, 1, 2, 3, 4
	s, _ := build(t, 5, [][2]int{{S, B}, {B, A}, {S, C}, {C, D}, {D, A}}, Options{Seed: 6, CheckLoops: true})
	_, ok := s.RunUntilConverged(30*time.Second, 100*time.Millisecond)
	require.True(t, ok)
	s.Run(10 * time.Second)
	key := babel.KeyOf(NodePrefix(S), netip.Prefix{})
	before, ok := s.Nodes[A].Router.Selected(key)
	require.True(t, ok)
	require.Equal(t, uint16(192), before.Metric)
	require.Equal(t, B, s.owner[before.Neighbour].Index)

	s.Kill(B)
	hello := s.opts.Interface.HelloInterval
	took, ok := s.RunUntilConverged(3*hello, 50*time.Millisecond)
	require.True(t, ok, "not rerouted within 3 hello intervals")
	after, ok := s.Nodes[A].Router.Selected(key)
	require.True(t, ok)
	t.Logf("rerouted in %s, seqno %d -> %d", took, before.Seqno, after.Seqno)
	require.Equal(t, D, s.owner[after.Neighbour].Index)
	require.Equal(t, uint16(288), after.Metric)
	require.True(t, babel.SeqnoLess(before.Seqno, after.Seqno), "the source must have raised its seqno")
	require.Empty(t, s.Loops())
}

// TestLinkFailureReroutes breaks a link in the middle of a used path, in a
// ring (where every alternative is unfeasible) and in a random mesh, and
// requires every pair to reach each other again within 3 Hello intervals.
func TestLinkFailureReroutes(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		mesh bool
	}{{"ring", 30, false}, {"mesh", 100, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.n, Options{Seed: 7, CheckLoops: true})
			require.NoError(t, err)
			edges := ringEdges(tc.n)
			if tc.mesh {
				edges = randomEdges(s, tc.n, 4)
			}
			links := map[[2]int]*Link{}
			for _, e := range edges {
				l, err := s.Connect(e[0], e[1])
				require.NoError(t, err)
				links[[2]int{min(e[0], e[1]), max(e[0], e[1])}] = l
			}
			_, ok := s.RunUntilConverged(60*time.Second, time.Second)
			require.True(t, ok)
			s.Run(10 * time.Second)
			// Break the first link on the path from 0 to the node half-way.
			sel, ok := s.Nodes[0].Router.Selected(babel.KeyOf(NodePrefix(tc.n/2), netip.Prefix{}))
			require.True(t, ok)
			hop := s.owner[sel.Neighbour].Index
			l := links[[2]int{min(0, hop), max(0, hop)}]
			require.NotNil(t, l)
			l.SetUp(false)
			hello := s.opts.Interface.HelloInterval
			took, ok := s.RunUntilConverged(3*hello, 50*time.Millisecond)
			require.True(t, ok, "%d pairs unreachable after 3 hello intervals", s.Unreachable())
			t.Logf("rerouted in %s (hello %s)", took, hello)
			require.Empty(t, s.Loops())
		})
	}
}

// TestUnicastHellos turns on unicast Hellos: each side then keeps a full
// unicast history of the other besides the multicast one.
func TestUnicastHellos(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		opts := Options{Seed: 12}
		opts.Interface = babel.DefaultInterfaceConfig(babel.LinkTunnel)
		opts.Interface.HelloInterval = time.Second
		opts.Interface.UnicastHello = unicast
		s, _ := build(t, 2, [][2]int{{0, 1}}, opts)
		s.Run(20 * time.Second)
		for i := range 2 {
			require.True(t, hasRoute(s, i, 1-i))
			nb := s.Nodes[i].Router.Dump().Neighbours
			require.Len(t, nb, 1)
			require.Equal(t, uint16(0xFFFF), nb[0].Reach)
			if unicast {
				require.Equal(t, uint16(0xFFFF), nb[0].UReach, "node %d", i)
			} else {
				require.Zero(t, nb[0].UReach, "node %d", i)
			}
		}
	}
}

// TestRetractionResent withdraws a prefix and counts the retractions that
// reach the neighbour: the urgent update is sent once and resent twice.
func TestRetractionResent(t *testing.T) {
	s, links := build(t, 2, [][2]int{{0, 1}}, Options{Seed: 13})
	s.Run(10 * time.Second)
	require.True(t, hasRoute(s, 1, 0))

	to := links[[2]int{0, 1}].Ends()[1]
	retractions := 0
	deliver := to.receive
	to.receive = func(src, dst netip.Addr, pkt []byte) {
		p, err := babel.ParsePacket(pkt)
		require.NoError(t, err)
		for _, m := range p.Messages {
			if u, ok := m.(babel.Update); ok && u.Prefix == NodePrefix(0) && u.Metric == babel.Infinity {
				retractions++
			}
		}
		deliver(src, dst, pkt)
	}
	s.Nodes[0].Router.Withdraw(NodePrefix(0), netip.Prefix{})
	s.Run(3 * time.Second) // less than a full-dump interval
	require.False(t, hasRoute(s, 1, 0))
	require.Equal(t, 3, retractions)
}

func TestRandomExporters(t *testing.T) {
	export := RandomExporters(100, 10, 1)
	var chosen []int
	for i := range 100 {
		if export(i) {
			chosen = append(chosen, i)
		}
	}
	require.Len(t, chosen, 10)
	again := RandomExporters(100, 10, 1)
	for i := range 100 {
		require.Equal(t, export(i), again(i), "node %d", i)
	}
	all := RandomExporters(5, 9, 1)
	for i := range 5 {
		require.True(t, all(i))
	}
}

// TestSampledExport lets only a few nodes of a mesh export their prefix:
// every node reaches each of them and holds no route to anybody else's
// prefix, before and after some exporters and other nodes die.
func TestSampledExport(t *testing.T) {
	const n, k = 80, 8
	s, err := New(n, Options{Seed: 14, CheckLoops: true, Export: RandomExporters(n, k, 14)})
	require.NoError(t, err)
	for _, e := range randomEdges(s, n, 4) {
		_, err := s.Connect(e[0], e[1])
		require.NoError(t, err)
	}
	_, ok := s.RunUntil(60*time.Second, time.Second, s.Settled)
	require.True(t, ok, "%d pairs unreachable, %d stray routes", s.Unreachable(), s.Stray())
	var exporters, others []int
	for _, node := range s.Nodes {
		if node.Exported {
			exporters = append(exporters, node.Index)
		} else {
			others = append(others, node.Index)
		}
	}
	require.Len(t, exporters, k)
	routesTo := func(dst int) int {
		routes := 0
		for _, node := range s.Nodes {
			if node.Alive && node.Index != dst && hasRoute(s, node.Index, dst) {
				routes++
			}
		}
		return routes
	}
	for _, i := range exporters {
		require.Equal(t, n-1, routesTo(i), "routes to exporter %d", i)
	}
	for _, i := range others {
		require.Zero(t, routesTo(i), "routes to non-exporter %d", i)
	}
	require.Positive(t, s.Net.PrefixBytes)

	victims := append(exporters[:2:2], others[:4]...)
	for _, i := range victims {
		s.Kill(i)
	}
	require.Positive(t, s.Stray(), "routes to the dead exporters right after they die")
	_, ok = s.RunUntil(60*time.Second, time.Second, s.Settled)
	require.True(t, ok, "%d pairs unreachable, %d stray routes", s.Unreachable(), s.Stray())
	for _, i := range exporters[:2] {
		require.Zero(t, routesTo(i), "routes to dead exporter %d", i)
	}
	for _, i := range exporters[2:] {
		require.Equal(t, n-len(victims)-1, routesTo(i), "routes to exporter %d", i)
	}
	require.Empty(t, s.Loops())
}

// TestNoExportNoPrefixBytes runs two nodes that export nothing: they send
// Hellos and IHUs, none of it about prefixes.
func TestNoExportNoPrefixBytes(t *testing.T) {
	s, _ := build(t, 2, [][2]int{{0, 1}}, Options{Seed: 15, Export: func(int) bool { return false }})
	s.Run(10 * time.Second)
	require.True(t, s.Settled())
	require.Positive(t, s.Net.BytesSent)
	require.Zero(t, s.Net.PrefixBytes)
	require.Len(t, s.Nodes[0].Router.Dump().Neighbours, 1)
}
