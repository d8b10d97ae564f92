package fib

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// upstreamNS is a namespace with an upstream interface (MTU 1500) whose
// subnet holds the next hop 2001:db8:ffff::1, and a data plane.
func upstreamNS(tb testing.TB, prefix string) (*netns.NS, *loader.Datapath) {
	ns := netns.ForTest(tb, prefix)
	require.NoError(tb, ns.Do(func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "upstream"}, PeerName: "peer"})
	}))
	require.NoError(tb, ns.LinkUp("peer"))
	require.NoError(tb, ns.AddrAdd("upstream", netip.MustParsePrefix("2001:db8:ffff::2/64")))
	require.NoError(tb, ns.LinkUp("upstream"))
	d, err := loader.Up(loader.Options{Instance: ns.Name, Netns: ns.Name, Underlays: []string{"upstream"}, Hook: loader.HookTC,
		Address: netip.MustParsePrefix("2001:db8:1::1/48")})
	require.NoError(tb, err)
	tb.Cleanup(func() { d.Close(); loader.Down(ns.Name) })
	return ns, d
}

// TestNativeSync: native routes into the kernel (proto bgp) and the data
// plane's native route map, through the interface that reaches their next
// hop; only changes are written; a next hop the kernel cannot reach is
// counted.
func TestNativeSync(t *testing.T) {
	ns, d := upstreamNS(t, "native")
	n := NewNative(&Kernel{Protocol: ProtoBGP, Priority: 512}, d, zerolog.Nop())
	nh := netip.MustParseAddr("2001:db8:ffff::1")
	sync := func(routes map[netip.Prefix]netip.Addr) string {
		t.Helper()
		require.NoError(t, ns.Do(func() error { n.Sync(routes); return nil }))
		out, err := ns.Run("ip", "-6", "route", "show", "proto", "bgp")
		require.NoError(t, err)
		return strings.TrimSpace(out)
	}
	out := sync(map[netip.Prefix]netip.Addr{netip.MustParsePrefix("::/0"): nh, netip.MustParsePrefix("2001:db8:100::/40"): nh})
	require.Contains(t, out, "default via 2001:db8:ffff::1 dev upstream metric 512")
	require.Contains(t, out, "2001:db8:100::/40 via 2001:db8:ffff::1 dev upstream metric 512")
	require.Equal(t, NativeStats{Installed: 2}, n.Stats())
	up, err := ns.Ifindex("upstream")
	require.NoError(t, err)
	inMap, err := d.NativeRoutes()
	require.NoError(t, err)
	require.ElementsMatch(t, []loader.NativeRoute{
		{Dst: netip.MustParsePrefix("::/0"), NextHop: nh, Ifindex: uint32(up), MTU: 1500},
		{Dst: netip.MustParsePrefix("2001:db8:100::/40"), NextHop: nh, Ifindex: uint32(up), MTU: 1500},
	}, inMap)
	require.Equal(t, []string{"upstream"}, n.Upstreams())

	out = sync(map[netip.Prefix]netip.Addr{netip.MustParsePrefix("::/0"): nh, netip.MustParsePrefix("2001:db8:200::/40"): netip.MustParseAddr("2001:db8:eeee::1")})
	require.Equal(t, "default via 2001:db8:ffff::1 dev upstream metric 512 pref medium", out)
	s := n.Stats()
	require.Equal(t, 1, s.Installed)
	require.EqualValues(t, 1, s.Errors)
	require.Contains(t, s.LastError, "2001:db8:eeee::1")

	require.Empty(t, sync(nil))
	require.Zero(t, n.Stats().Installed)
	inMap, err = d.NativeRoutes()
	require.NoError(t, err)
	require.Empty(t, inMap)
	require.Empty(t, n.Upstreams())

	// A run killed leaves its routes; the next one prunes them.
	require.NotEmpty(t, sync(map[netip.Prefix]netip.Addr{netip.MustParsePrefix("::/0"): nh, netip.MustParsePrefix("2001:db8:100::/40"): nh}))
	next := NewNative(&Kernel{Protocol: ProtoBGP, Priority: 512}, d, zerolog.Nop())
	var pruned int
	require.NoError(t, ns.Do(func() (err error) { pruned, err = next.Prune(); return err }))
	require.Equal(t, 2, pruned)
	out, err = ns.Run("ip", "-6", "route", "show", "proto", "bgp")
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(out))
	inMap, err = d.NativeRoutes()
	require.NoError(t, err)
	require.Empty(t, inMap)

	n = next
	require.NotEmpty(t, sync(map[netip.Prefix]netip.Addr{netip.MustParsePrefix("::/0"): nh}))
	require.NoError(t, ns.Do(func() error { n.Stop(); return nil }))
	require.Empty(t, sync(map[netip.Prefix]netip.Addr{netip.MustParsePrefix("::/0"): nh}), "written after Stop")
}

// BenchmarkNativeSync: a full IPv6 table (230,000 synthetic /48s) written
// into a namespace's kernel and its data plane's native route map by one
// Sync, then removed by Stop. Run with -benchtime 1x.
func BenchmarkNativeSync(b *testing.B) {
	ns, d := upstreamNS(b, "nativeb")
	const table = 230_000
	nh := netip.MustParseAddr("2001:db8:ffff::1")
	routes := make(map[netip.Prefix]netip.Addr, table)
	for i := range table {
		a := [16]byte{0x2a}
		binary.BigEndian.PutUint32(a[2:], uint32(i))
		routes[netip.PrefixFrom(netip.AddrFrom16(a), 48)] = nh
	}
	for b.Loop() {
		n := NewNative(&Kernel{Protocol: ProtoBGP, Priority: 512}, d, zerolog.Nop())
		var write, remove time.Duration
		require.NoError(b, ns.Do(func() error {
			start := time.Now()
			n.Sync(routes)
			write = time.Since(start)
			start = time.Now()
			n.Stop()
			remove = time.Since(start)
			return nil
		}))
		require.Zero(b, n.Stats().Errors, n.Stats().LastError)
		b.ReportMetric(write.Seconds(), "s/write-table")
		b.ReportMetric(table/write.Seconds(), "routes/s")
		b.ReportMetric(remove.Seconds(), "s/remove-table")
	}
}
