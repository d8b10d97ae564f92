package babel

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// linkedPair returns two routers joined by a point-to-point link whose
// packets are delivered on their own goroutines.
func linkedPair(t *testing.T) [2]*Router {
	var links [2]*PointToPoint
	addrs := [2]netip.Addr{netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")}
	var routers [2]*Router
	cfg := DefaultInterfaceConfig(LinkTunnel)
	cfg.HelloInterval = 50 * time.Millisecond
	for i := range 2 {
		r, err := NewRouter(Config{RouterID: RandomRouterID()})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		routers[i] = r
		links[i] = NewPointToPoint(addrs[i], func(dst netip.Addr, pkt []byte) error {
			data := append([]byte{}, pkt...)
			go links[1-i].Deliver(addrs[i], dst, data)
			return nil
		})
	}
	for i := range 2 {
		require.NoError(t, routers[i].AddInterface("p2p", cfg, links[i]))
	}
	return routers
}

// TestExportTakesOver checks that exporting a prefix we had learned stops
// using the learned route without retracting it, and that subscribers are
// told, and that a late subscriber first gets the selected routes.
func TestExportTakesOver(t *testing.T) {
	r := linkedPair(t)
	p := pfx("2001:db8:7::/48")
	key := KeyOf(p, netip.Prefix{})
	require.NoError(t, r[1].Export(p, netip.Prefix{}, 0))
	require.Eventually(t, func() bool { _, ok := r[0].Selected(key); return ok }, 5*time.Second, 10*time.Millisecond)

	changes := make(chan RouteChange, 16)
	cancel := r[0].Subscribe(func(c RouteChange) { changes <- c })
	defer cancel()
	first := <-changes
	require.Equal(t, key, first.Key)
	require.NotNil(t, first.Route)

	require.NoError(t, r[0].Export(p, netip.Prefix{}, 0))
	lost := <-changes
	require.Equal(t, key, lost.Key)
	require.Nil(t, lost.Route)
	_, ok := r[0].Selected(key)
	require.False(t, ok)

	r[0].Withdraw(p, netip.Prefix{})
	back := <-changes
	require.NotNil(t, back.Route, "the learned route is used again")
}

// TestCostMultiplier drains a neighbour: 4096 multiplies its cost by 16,
// 0 makes it unusable.
func TestCostMultiplier(t *testing.T) {
	r := linkedPair(t)
	p := pfx("2001:db8:8::/48")
	key := KeyOf(p, netip.Prefix{})
	require.NoError(t, r[1].Export(p, netip.Prefix{}, 0))
	require.Eventually(t, func() bool { s, ok := r[0].Selected(key); return ok && s.Metric == 96 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, r[0].SetCostMultiplier("p2p", netip.Addr{}, 4096))
	s, ok := r[0].Selected(key)
	require.True(t, ok)
	require.Equal(t, uint16(96*16), s.Metric)
	require.NoError(t, r[0].SetCostMultiplier("p2p", netip.Addr{}, 0))
	_, ok = r[0].Selected(key)
	require.False(t, ok)
	require.Error(t, r[0].SetCostMultiplier("nope", netip.Addr{}, 256))
}

// readerTransport is a transport whose Close waits, as UDPTransport's
// does, for its reader, caught delivering a packet.
type readerTransport struct {
	receive ReceiveFunc
}

func (t *readerTransport) LocalAddr() netip.Addr           { return netip.MustParseAddr("fe80::1") }
func (t *readerTransport) Start(receive ReceiveFunc) error { t.receive = receive; return nil }
func (t *readerTransport) Send(netip.Addr, []byte) error   { return nil }
func (t *readerTransport) Close() error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.receive(netip.MustParseAddr("fe80::2"), MulticastGroup, []byte{42, 2, 0, 0})
	}()
	<-done
	return nil
}

// TestCloseWaitsForReader: closing a transport whose reader is delivering
// a packet does not deadlock, through RemoveInterface or Close.
func TestCloseWaitsForReader(t *testing.T) {
	r, err := NewRouter(Config{RouterID: RandomRouterID()})
	require.NoError(t, err)
	cfg := DefaultInterfaceConfig(LinkWired)
	require.NoError(t, r.AddInterface("a", cfg, &readerTransport{}))
	require.NoError(t, r.AddInterface("b", cfg, &readerTransport{}))
	done := make(chan error)
	go func() { done <- errors.Join(r.RemoveInterface("a"), r.Close()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close deadlocked with a delivering reader")
	}
	require.Error(t, r.RemoveInterface("a"))
}
