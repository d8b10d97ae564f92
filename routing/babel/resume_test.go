package babel

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wire joins named routers by point-to-point links whose far end can be
// replaced, as a restarted daemon replaces its end of a tunnel.
type wire struct {
	mu   sync.Mutex
	ends map[string]*PointToPoint // "router/interface" → its end
}

func (w *wire) end(self, iface, peer string, local, remote netip.Addr) *PointToPoint {
	p := NewPointToPoint(local, func(dst netip.Addr, pkt []byte) error {
		w.mu.Lock()
		far := w.ends[peer+"/"+iface]
		w.mu.Unlock()
		if far != nil {
			data := append([]byte{}, pkt...)
			go far.Deliver(local, dst, data)
		}
		return nil
	})
	w.mu.Lock()
	w.ends[self+"/"+iface] = p
	w.mu.Unlock()
	return p
}

// TestResumeKeepsTransit: in a line A — B — C where A reaches C's prefix
// through B, B stops and a new router takes its place with what B handed
// over. The new B has a finite cost to both neighbours before hearing a
// Hello from either, never selects C's prefix through A (A's route leads
// back through B: the inherited feasibility distance rejects it), and A
// never loses its route to C.
func TestResumeKeepsTransit(t *testing.T) {
	const hello = 100 * time.Millisecond
	cfg := DefaultInterfaceConfig(LinkTunnel)
	cfg.HelloInterval = hello
	addr := map[string]netip.Addr{"A": netip.MustParseAddr("fe80::a"), "B": netip.MustParseAddr("fe80::b"), "C": netip.MustParseAddr("fe80::c")}
	w := &wire{ends: map[string]*PointToPoint{}}
	start := func(name string, links map[string]string, handover *Handover) *Router {
		r, err := NewRouter(Config{RouterID: RandomRouterID(), Handover: handover})
		require.NoError(t, err)
		for iface, peer := range links {
			require.NoError(t, r.AddInterface(iface, cfg, w.end(name, iface, peer, addr[name], addr[peer])))
		}
		r.EndHandover()
		return r
	}
	a := start("A", map[string]string{"ab": "B"}, nil)
	defer a.Close()
	b := start("B", map[string]string{"ab": "A", "bc": "C"}, nil)
	c := start("C", map[string]string{"bc": "B"}, nil)
	defer c.Close()
	p := pfx("2001:db8:c::/48")
	key := KeyOf(p, netip.Prefix{})
	require.NoError(t, c.Export(p, netip.Prefix{}, 0))
	require.Eventually(t, func() bool { _, ok := a.Selected(key); return ok }, 10*time.Second, 10*time.Millisecond)
	// Let the links settle to full reach, as a long-running network has.
	require.Eventually(t, func() bool {
		for _, n := range b.Dump().Neighbours {
			if n.Reach&0xF000 != 0xF000 || n.Cost >= Infinity {
				return false
			}
		}
		return len(b.Dump().Neighbours) == 2
	}, 10*time.Second, 10*time.Millisecond)

	var mu sync.Mutex
	var lost []RouteChange
	cancel := a.Subscribe(func(ch RouteChange) {
		if ch.Key == key && (ch.Route == nil || ch.Route.Metric >= Infinity) {
			mu.Lock()
			lost = append(lost, ch)
			mu.Unlock()
		}
	})
	defer cancel()

	// B originates a prefix of its own and, stopping, retracts it, as a
	// node does.
	own := KeyOf(pfx("2001:db8:b::/48"), netip.Prefix{})
	require.NoError(t, b.Export(own.Prefix, netip.Prefix{}, 0))
	require.Eventually(t, func() bool { _, ok := a.Selected(own); return ok }, 20*hello, 10*time.Millisecond)
	b.Withdraw(own.Prefix, netip.Prefix{})
	require.Eventually(t, func() bool { _, ok := a.Selected(own); return !ok }, 20*hello, 10*time.Millisecond)
	handed := b.Snapshot()
	require.Len(t, handed.Interfaces, 2)
	require.NotEmpty(t, handed.Sources)
	require.NoError(t, b.Close())
	b2 := start("B", map[string]string{"ab": "A", "bc": "C"}, &handed)
	defer b2.Close()
	for _, n := range b2.Dump().Neighbours {
		require.Less(t, n.Cost, uint16(Infinity), "the new B knows %s at once", n.Address)
	}
	require.Len(t, b2.Dump().Neighbours, 2)
	var viaA []RouteChange
	cancelB := b2.Subscribe(func(ch RouteChange) {
		if ch.Key == key && ch.Route != nil && ch.Route.Interface == "ab" {
			mu.Lock()
			viaA = append(viaA, ch)
			mu.Unlock()
		}
	})
	defer cancelB()
	// B re-learns C's prefix from its full-dump request, then sends A its
	// updates; meanwhile A keeps the route it had through B.
	require.Eventually(t, func() bool { _, ok := b2.Selected(key); return ok }, 10*time.Second, 10*time.Millisecond)
	deadline := time.Now().Add(10 * hello)
	for time.Now().Before(deadline) {
		for _, n := range a.Dump().Neighbours {
			require.Less(t, n.Cost, uint16(Infinity), "A's link to B stays up through the restart")
		}
		time.Sleep(hello / 10)
	}
	// What the new B originates again reaches A too.
	require.NoError(t, b2.Export(own.Prefix, netip.Prefix{}, 0))
	require.Eventually(t, func() bool { _, ok := a.Selected(own); return ok }, 20*hello, 10*time.Millisecond, "A learns the new B's own prefix")
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, lost, "A never lost its route to C")
	require.Empty(t, viaA, "B never routed C's prefix back through A")
}

// TestResumeIgnoresOldState: a hand-over older than the horizons is not
// taken over; the router starts afresh, as after a crash.
func TestResumeIgnoresOldState(t *testing.T) {
	h := &Handover{Taken: time.Now().Add(-time.Hour),
		Sources: []SourceState{{Prefix: pfx("2001:db8::/48"), RouterID: RandomRouterID().String(), Seqno: 3, Metric: 96}},
		Interfaces: map[string]InterfaceState{"x": {HelloSeqno: 7, HelloInterval: 4 * time.Second,
			Neighbours: []NeighbourState{{Address: netip.MustParseAddr("fe80::2"), Hello: HistoryState{Reach: 0xFFFF}, HaveIHU: true, Txcost: 96}}}}}
	r, err := NewRouter(Config{RouterID: RandomRouterID(), Handover: h})
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.AddInterface("x", DefaultInterfaceConfig(LinkTunnel), NewPointToPoint(netip.MustParseAddr("fe80::1"), func(netip.Addr, []byte) error { return nil })))
	require.Empty(t, r.Dump().Neighbours)
	require.Empty(t, r.Snapshot().Sources)
}
