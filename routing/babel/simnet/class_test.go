package simnet

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/stretchr/testify/require"
)

// classPrefix is node i's prefix in a class range fd00:C::/32.
func classPrefix(c, i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("fd00:%x:0:%x::/64", c, i))
}

// triangle is A (0) — B (2) directly and through R (1): the links are
// created A–B, A–R, R–B, so A's t0 leads to B and t1 to R, R's t0 to A
// and t1 to B, B's t0 to A and t1 to R. Every node exports its main prefix
// and its prefix in the classes fd00:1::/32 and fd00:2::/32, whose
// definitions every router shares.
func triangle(t *testing.T, iface babel.InterfaceConfig, classes []babel.Class) (*Sim, map[[2]int]*Link) {
	t.Helper()
	s, links := build(t, 3, [][2]int{{0, 2}, {0, 1}, {1, 2}}, Options{Seed: 7, CheckLoops: true, Interface: iface})
	for _, n := range s.Nodes {
		require.NoError(t, n.Router.SetClasses(classes))
		for c := 1; c <= 2; c++ {
			require.NoError(t, n.Router.Export(classPrefix(c, n.Index), netip.Prefix{}, 0))
		}
	}
	return s, links
}

// via is the interface through which node a routes p, "" without a route.
func via(s *Sim, a int, p netip.Prefix) (string, uint16) {
	sel, ok := s.Nodes[a].Router.Selected(babel.KeyOf(p, netip.Prefix{}))
	if !ok {
		return "", babel.Infinity
	}
	return sel.Interface, sel.Metric
}

// TestRestrictedClassPrefersItsOwnTunnels: the keep-alive class may use
// the tunnels through R only (A's and B's tunnels to R, both of R's); the
// bulk class and the main range may use every tunnel. A routes B's
// keep-alive prefix through R, its bulk and main prefixes directly. With
// A–R cut, the keep-alive class has no path of its own and falls back to
// the direct tunnel, with FallbackPenalty in its metric; restored, it
// moves back through R. No forwarding loop at any time.
func TestRestrictedClassPrefersItsOwnTunnels(t *testing.T) {
	iface := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	iface.HelloInterval, iface.RTT = time.Second, babel.Re6stRTT
	s, links := triangle(t, iface, []babel.Class{
		{Name: "keepalive", Range: netip.MustParsePrefix("fd00:1::/32"), Restricted: true},
		{Name: "bulk", Range: netip.MustParsePrefix("fd00:2::/32")},
	})
	own := iface
	own.Classes = []string{"keepalive"}
	for _, e := range []struct {
		node int
		name string
	}{{0, "t1"}, {1, "t0"}, {1, "t1"}, {2, "t1"}} {
		require.NoError(t, s.Nodes[e.node].Router.Reconfigure(e.name, own))
	}
	ka, bulk, main := classPrefix(1, 2), classPrefix(2, 2), NodePrefix(2)
	settled := func(want string) func() bool {
		return func() bool {
			k, _ := via(s, 0, ka)
			b, _ := via(s, 0, bulk)
			m, _ := via(s, 0, main)
			return k == want && b == "t0" && m == "t0"
		}
	}
	_, ok := s.RunUntil(30*time.Second, 100*time.Millisecond, settled("t1"))
	require.True(t, ok, "keep-alive through R, bulk and main direct")
	_, metric := via(s, 0, ka)
	require.Equal(t, uint16(2*96), metric, "two tunnels of its own")
	_, metric = via(s, 0, bulk)
	require.Equal(t, uint16(96), metric)

	links[[2]int{0, 1}].SetUp(false)
	_, ok = s.RunUntil(30*time.Second, 100*time.Millisecond, settled("t0"))
	require.True(t, ok, "keep-alive falls back to the direct tunnel")
	_, metric = via(s, 0, ka)
	require.Equal(t, uint16(96+babel.FallbackPenalty), metric)

	links[[2]int{0, 1}].SetUp(true)
	_, ok = s.RunUntil(30*time.Second, 100*time.Millisecond, settled("t1"))
	require.True(t, ok, "keep-alive back through R")
	require.Empty(t, s.Loops())
}

// TestLatencyClassWeighsEveryMillisecond: A–B has an 8 ms one-way delay,
// A–R and R–B 0.1 ms. The main range and a default class use re6st's RTT
// penalty (nothing under 10 ms, 5000 at 500 ms): 16 ms of RTT adds 61 to
// the direct tunnel's 96, under the 192 of two tunnels, so they go
// direct. A latency class counts every millisecond (LatencyRTT): the
// direct tunnel costs 96 + 163, two short ones 2 × (96 + 2), so it goes
// through R.
func TestLatencyClassWeighsEveryMillisecond(t *testing.T) {
	iface := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	iface.HelloInterval, iface.RTT = time.Second, babel.Re6stRTT
	s, err := New(3, Options{Seed: 3, CheckLoops: true, Interface: iface, Delay: 100 * time.Microsecond})
	require.NoError(t, err)
	direct, err := s.Connect(0, 2)
	require.NoError(t, err)
	direct.Delay = 8 * time.Millisecond
	for _, e := range [][2]int{{0, 1}, {1, 2}} {
		_, err := s.Connect(e[0], e[1])
		require.NoError(t, err)
	}
	for _, n := range s.Nodes {
		require.NoError(t, n.Router.SetClasses([]babel.Class{
			{Name: "keepalive", Range: netip.MustParsePrefix("fd00:1::/32"), Latency: true},
			{Name: "bulk", Range: netip.MustParsePrefix("fd00:2::/32")},
		}))
		for c := 1; c <= 2; c++ {
			require.NoError(t, n.Router.Export(classPrefix(c, n.Index), netip.Prefix{}, 0))
		}
	}
	// RTT samples come with every third Hello and the first counts double:
	// give the averages a minute.
	s.Run(60 * time.Second)
	k, km := via(s, 0, classPrefix(1, 2))
	b, bm := via(s, 0, classPrefix(2, 2))
	m, mm := via(s, 0, NodePrefix(2))
	t.Logf("latency class via %s metric %d; default class via %s metric %d; main via %s metric %d", k, km, b, bm, m, mm)
	require.Equal(t, "t1", k, "the latency class through R")
	require.InDelta(t, 2*(96+2), int(km), 4)
	require.Equal(t, "t0", b, "the default class direct")
	require.Equal(t, "t0", m, "the main range direct")
	require.Equal(t, bm, mm, "a default class has the main range's metric")
	require.InDelta(t, 96+61, int(mm), 4)
	require.Empty(t, s.Loops())
}
