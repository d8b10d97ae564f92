package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// memMap is an in-memory RouteMap that applies the data plane's rule on
// source prefixes.
type memMap struct {
	mu     sync.Mutex
	routes map[[2]netip.Prefix]loader.Nexthop
}

func (m *memMap) SetRoute(dst, src netip.Prefix, nh loader.Nexthop) error {
	if src.IsValid() && dst.Bits() != 0 {
		return fmt.Errorf("source prefix on %s", dst)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes[[2]netip.Prefix{dst, src}] = nh
	return nil
}

func (m *memMap) DeleteRoute(dst, src netip.Prefix) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.routes[[2]netip.Prefix{dst, src}]; !ok {
		return fmt.Errorf("route %s: %w", dst, loader.ErrNotFound)
	}
	delete(m.routes, [2]netip.Prefix{dst, src})
	return nil
}

func (m *memMap) Routes() ([]loader.Route, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []loader.Route
	for k, nh := range m.routes {
		out = append(out, loader.Route{Dst: k[0], Src: k[1], Nexthop: nh})
	}
	return out, nil
}

func (m *memMap) get(dst, src netip.Prefix) (loader.Nexthop, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nh, ok := m.routes[[2]netip.Prefix{dst, src}]
	return nh, ok
}

var (
	addrs      = [2]netip.Addr{netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")}
	network    = netip.MustParsePrefix("2001:db8::/32")
	peerPrefix = netip.MustParsePrefix("2001:db8:2::/48")
	def        = netip.MustParsePrefix("::/0")
)

// linkedRouters runs two routers over a point-to-point link "tun7"; the
// second exports peerPrefix and ::/0 from network.
func linkedRouters(t *testing.T) [2]*babel.Router {
	var links [2]*babel.PointToPoint
	routers := [2]*babel.Router{}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i := range 2 {
		r, err := babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID()})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		routers[i] = r
		peer := 1 - i
		links[i] = babel.NewPointToPoint(addrs[i], func(dst netip.Addr, pkt []byte) error {
			data := append([]byte{}, pkt...)
			wg.Go(func() { links[peer].Deliver(addrs[i], dst, data) })
			return nil
		})
	}
	cfg := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	cfg.HelloInterval = 50 * time.Millisecond
	for i := range 2 {
		require.NoError(t, routers[i].AddInterface("tun7", cfg, links[i]))
	}
	require.NoError(t, routers[1].Export(peerPrefix, netip.Prefix{}, 0))
	require.NoError(t, routers[1].Export(def, network, 0))
	return routers
}

func tun7(ifname string, nh netip.Addr) (uint32, bool) { return 7, ifname == "tun7" && nh == addrs[1] }

// TestWriterDataplane checks that the writer puts the peer's prefix and
// its source-specific default into the route map with the tunnel of the
// link, then removes them when the peer withdraws them.
func TestWriterDataplane(t *testing.T) {
	routers := linkedRouters(t)
	m := &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}}
	w := Follow(routers[0], &Dataplane{Map: m, Tunnel: tun7}, zerolog.Nop())
	defer w.Stop()

	require.Eventually(t, func() bool {
		a, okA := m.get(peerPrefix, netip.Prefix{})
		b, okB := m.get(def, network)
		return okA && okB && a.Tunnel == 7 && b.Tunnel == 7
	}, 5*time.Second, 10*time.Millisecond)
	require.True(t, w.Installed(babel.KeyOf(peerPrefix, netip.Prefix{})))

	routers[1].Withdraw(peerPrefix, netip.Prefix{})
	require.Eventually(t, func() bool {
		_, ok := m.get(peerPrefix, netip.Prefix{})
		return !ok
	}, 5*time.Second, 10*time.Millisecond)
	_, ok := m.get(def, network)
	require.True(t, ok)
	require.False(t, w.Installed(babel.KeyOf(peerPrefix, netip.Prefix{})))
	require.Equal(t, Stats{}, w.Stats())
}

// flakyMap refuses the first writes.
type flakyMap struct {
	*memMap
	mu    sync.Mutex
	fails int
}

func (f *flakyMap) SetRoute(dst, src netip.Prefix, nh loader.Nexthop) error {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return errors.New("map full")
	}
	f.mu.Unlock()
	return f.memMap.SetRoute(dst, src, nh)
}

// TestWriterRetries: a refused write is counted, reported, and retried
// until it succeeds; only then is the route installed.
func TestWriterRetries(t *testing.T) {
	routers := linkedRouters(t)
	m := &flakyMap{memMap: &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}}, fails: 3}
	w := follow(routers[0], &Dataplane{Map: m, Tunnel: tun7}, zerolog.Nop(), time.Millisecond, 4*time.Millisecond)
	defer w.Stop()
	require.Eventually(t, func() bool {
		_, okA := m.get(peerPrefix, netip.Prefix{})
		_, okB := m.get(def, network)
		return okA && okB
	}, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return w.Stats().Retrying == 0 }, 5*time.Second, time.Millisecond)
	s := w.Stats()
	require.Equal(t, uint64(3), s.Errors)
	require.Equal(t, "map full", s.LastError)
	require.True(t, w.Installed(babel.KeyOf(peerPrefix, netip.Prefix{})))
	require.True(t, w.Installed(babel.KeyOf(def, network)))
}

// TestWriterForgetAndPrune: Forget removes the routes into a tunnel at
// once; PruneAfter removes the routes nobody selected, local ones aside.
func TestWriterForgetAndPrune(t *testing.T) {
	routers := linkedRouters(t)
	m := &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}}
	stale := netip.MustParsePrefix("2001:db8:9::/48")
	local := netip.MustParsePrefix("2001:db8:1::/48")
	require.NoError(t, m.SetRoute(stale, netip.Prefix{}, loader.Nexthop{Tunnel: 3}))
	require.NoError(t, m.SetRoute(local, netip.Prefix{}, loader.Nexthop{Local: true}))
	w := Follow(routers[0], &Dataplane{Map: m, Tunnel: tun7}, zerolog.Nop())
	defer w.Stop()
	require.Eventually(t, func() bool {
		_, ok := m.get(peerPrefix, netip.Prefix{})
		return ok
	}, 5*time.Second, 10*time.Millisecond)

	w.PruneAfter(0)
	require.Eventually(t, func() bool {
		_, ok := m.get(stale, netip.Prefix{})
		return !ok
	}, 5*time.Second, time.Millisecond)
	_, ok := m.get(local, netip.Prefix{})
	require.True(t, ok, "local routes stay")
	_, ok = m.get(peerPrefix, netip.Prefix{})
	require.True(t, ok, "selected routes stay")

	w.Forget(7)
	_, ok = m.get(peerPrefix, netip.Prefix{})
	require.False(t, ok, "Forget returns once the routes are gone")
	require.False(t, w.Installed(babel.KeyOf(peerPrefix, netip.Prefix{})))
	_, ok = m.get(local, netip.Prefix{})
	require.True(t, ok)
}

func TestDataplaneUnknownTunnel(t *testing.T) {
	d := &Dataplane{Map: &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}},
		Tunnel: func(string, netip.Addr) (uint32, bool) { return 0, false }}
	err := d.Replace(Route{Dst: netip.MustParsePrefix("2001:db8::/48"), Interface: "x", NextHop: netip.MustParseAddr("fe80::1")})
	require.ErrorContains(t, err, "no tunnel")
	require.NoError(t, d.Delete(netip.MustParsePrefix("2001:db8::/48"), netip.Prefix{}))
}

// A route into a traffic class's range carries the class; others none.
func TestDataplaneClass(t *testing.T) {
	m := &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}}
	keepAlive := netip.MustParsePrefix("fd00:1::/32")
	d := &Dataplane{Map: m, Tunnel: func(string, netip.Addr) (uint32, bool) { return 7, true },
		Class: func(dst netip.Prefix) uint8 {
			if keepAlive.Contains(dst.Addr()) && dst.Bits() >= keepAlive.Bits() {
				return 1
			}
			return 0
		}}
	for dst, class := range map[string]uint8{"fd00:1:5::/48": 1, "2001:db8:5::/48": 0} {
		p := netip.MustParsePrefix(dst)
		require.NoError(t, d.Replace(Route{Dst: p, Interface: "x", NextHop: netip.MustParseAddr("fe80::1")}))
		nh, ok := m.get(p, netip.Prefix{})
		require.True(t, ok)
		require.Equal(t, loader.Nexthop{Tunnel: 7, Class: class}, nh, dst)
	}
}

// TestKernelSourceSpecific installs a plain and a source-specific route in
// a namespace and reads them back with ip(8).
func TestKernelSourceSpecific(t *testing.T) {
	a := netns.ForTest(t, "fiba")
	b := netns.ForTest(t, "fibb")
	require.NoError(t, netns.Veth(a, "va", b, "vb"))
	k := &Kernel{}
	routes := []Route{
		{Dst: netip.MustParsePrefix("2001:db8:5::/48"), Interface: "va", NextHop: netip.MustParseAddr("fe80::1")},
		{Dst: netip.MustParsePrefix("::/0"), Src: netip.MustParsePrefix("2001:db8::/32"), Interface: "va", NextHop: netip.MustParseAddr("fe80::1")},
	}
	require.NoError(t, a.Do(func() error {
		for _, r := range routes {
			if err := k.Replace(r); err != nil {
				return err
			}
		}
		// Replacing again is not an error.
		return k.Replace(routes[1])
	}))
	out, err := a.Run("ip", "-6", "route", "show", "proto", "babel")
	require.NoError(t, err)
	require.Contains(t, out, "2001:db8:5::/48 via fe80::1 dev va")
	require.Contains(t, out, "default from 2001:db8::/32 via fe80::1 dev va")

	require.NoError(t, a.Do(func() error { return k.Delete(routes[1].Dst, routes[1].Src) }))
	require.NoError(t, a.Do(func() error { return k.Delete(routes[1].Dst, routes[1].Src) }))
	out, err = a.Run("ip", "-6", "route", "show", "proto", "babel")
	require.NoError(t, err)
	require.False(t, strings.Contains(out, "default"), out)
	require.Contains(t, out, "2001:db8:5::/48")
}

// TestKernelV4viaV6 installs IPv4 routes through an IPv6 gateway (RTA_VIA)
// and an IPv4 one, and reads them back with ip(8).
func TestKernelV4viaV6(t *testing.T) {
	a := netns.ForTest(t, "fib4a")
	b := netns.ForTest(t, "fib4b")
	require.NoError(t, netns.Veth(a, "va", b, "vb"))
	require.NoError(t, a.AddrAdd("va", netip.MustParsePrefix("10.98.0.1/24")))
	k := &Kernel{}
	via6 := Route{Dst: netip.MustParsePrefix("10.42.5.0/24"), Interface: "va", NextHop: netip.MustParseAddr("fe80::1")}
	via4 := Route{Dst: netip.MustParsePrefix("10.42.6.0/24"), Interface: "va", NextHop: netip.MustParseAddr("10.98.0.2")}
	require.NoError(t, a.Do(func() error { return errors.Join(k.Replace(via6), k.Replace(via4)) }))
	out, err := a.Run("ip", "-4", "route", "show", "proto", "babel")
	require.NoError(t, err)
	require.Contains(t, out, "10.42.5.0/24 via inet6 fe80::1 dev va")
	require.Contains(t, out, "10.42.6.0/24 via 10.98.0.2 dev va")
	require.NoError(t, a.Do(func() error { return k.Delete(via6.Dst, netip.Prefix{}) }))
	out, err = a.Run("ip", "-4", "route", "show", "proto", "babel")
	require.NoError(t, err)
	require.NotContains(t, out, "10.42.5.0/24")
}

// TestWriterRewrite: when the classes change, Rewrite writes again the
// selected routes it is asked for, which then carry the new class; the
// others are left alone.
func TestWriterRewrite(t *testing.T) {
	routers := linkedRouters(t)
	m := &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}}
	var class atomic.Uint32
	w := Follow(routers[0], &Dataplane{Map: m, Tunnel: tun7, Class: func(dst netip.Prefix) uint8 {
		if dst == peerPrefix {
			return uint8(class.Load())
		}
		return 0
	}}, zerolog.Nop())
	defer w.Stop()
	require.Eventually(t, func() bool {
		_, okA := m.get(peerPrefix, netip.Prefix{})
		_, okB := m.get(def, network)
		return okA && okB
	}, 5*time.Second, 10*time.Millisecond)

	class.Store(3)
	require.Equal(t, 1, w.Rewrite(func(k babel.RouteKey) bool { return k.Prefix == peerPrefix }))
	nh, _ := m.get(peerPrefix, netip.Prefix{})
	require.Equal(t, loader.Nexthop{Tunnel: 7, Class: 3}, nh)
	nh, _ = m.get(def, network)
	require.Equal(t, loader.Nexthop{Tunnel: 7}, nh)
	require.True(t, w.Installed(babel.KeyOf(peerPrefix, netip.Prefix{})))
}
