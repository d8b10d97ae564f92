package fib

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
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

func (m *memMap) get(dst, src netip.Prefix) (loader.Nexthop, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nh, ok := m.routes[[2]netip.Prefix{dst, src}]
	return nh, ok
}

// TestWriterDataplane runs two routers over a point-to-point link and
// checks that the writer puts the peer's prefix and its source-specific
// default into the route map with the tunnel of the link, then removes
// them when the peer withdraws them.
func TestWriterDataplane(t *testing.T) {
	var links [2]*babel.PointToPoint
	addrs := [2]netip.Addr{netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")}
	routers := [2]*babel.Router{}
	for i := range 2 {
		r, err := babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID()})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		routers[i] = r
		peer := 1 - i
		links[i] = babel.NewPointToPoint(addrs[i], func(dst netip.Addr, pkt []byte) error {
			data := append([]byte{}, pkt...)
			go links[peer].Deliver(addrs[i], dst, data)
			return nil
		})
	}
	cfg := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	cfg.HelloInterval = 50 * time.Millisecond
	for i := range 2 {
		require.NoError(t, routers[i].AddInterface("tun7", cfg, links[i]))
	}
	network := netip.MustParsePrefix("2001:db8::/32")
	peerPrefix := netip.MustParsePrefix("2001:db8:2::/48")
	def := netip.MustParsePrefix("::/0")
	require.NoError(t, routers[1].Export(peerPrefix, netip.Prefix{}, 0))
	require.NoError(t, routers[1].Export(def, network, 0))

	m := &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}}
	w := Follow(routers[0], &Dataplane{Map: m, Tunnel: func(ifname string, nh netip.Addr) (uint32, bool) {
		return 7, ifname == "tun7" && nh == addrs[1]
	}}, zerolog.Nop())
	defer w.Stop()

	require.Eventually(t, func() bool {
		a, okA := m.get(peerPrefix, netip.Prefix{})
		b, okB := m.get(def, network)
		return okA && okB && a.Tunnel == 7 && b.Tunnel == 7
	}, 5*time.Second, 10*time.Millisecond)

	routers[1].Withdraw(peerPrefix, netip.Prefix{})
	require.Eventually(t, func() bool {
		_, ok := m.get(peerPrefix, netip.Prefix{})
		return !ok
	}, 5*time.Second, 10*time.Millisecond)
	_, ok := m.get(def, network)
	require.True(t, ok)
	require.Zero(t, w.Errors())
}

func TestDataplaneUnknownTunnel(t *testing.T) {
	d := &Dataplane{Map: &memMap{routes: map[[2]netip.Prefix]loader.Nexthop{}},
		Tunnel: func(string, netip.Addr) (uint32, bool) { return 0, false }}
	err := d.Replace(Route{Dst: netip.MustParsePrefix("2001:db8::/48"), Interface: "x", NextHop: netip.MustParseAddr("fe80::1")})
	require.ErrorContains(t, err, "no tunnel")
	require.NoError(t, d.Delete(netip.MustParsePrefix("2001:db8::/48"), netip.Prefix{}))
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
