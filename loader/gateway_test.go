package loader_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// A —tunnel— G —native IPv6— U: G is a border gateway whose native route
// to U's network (2a00:1::/32, through U's address on the upstream link)
// is in its data plane, with native_ingress on its upstream interface and
// its kernel's IPv6 forwarding off. Ping and TCP both ways arrive whole,
// every packet through G's BPF programs: its Ip6OutForwDatagrams stays
// flat, its native counters grow. With forwarding on again, G's kernel
// answers the hop limits the data plane leaves it: traceroute6 both ways.
func TestGatewayForwardsNativeInBPF(t *testing.T) {
	netns.RequireRoot(t)
	// The legacy attachment stands for older kernels, with their
	// decapsulation (no DECAP_L3_IPV6 before Linux 6.3).
	for _, tc := range []struct {
		encap  loader.TunnelType
		attach loader.AttachMode
	}{{loader.FOU, loader.AttachTCX}, {loader.GRE, loader.AttachLegacy}} {
		t.Run(fmt.Sprintf("%s/%s", tc.encap, tc.attach), func(t *testing.T) {
			if tc.attach == loader.AttachLegacy {
				loader.DecapAsBefore63(t)
			}
			c := chain.Build(t, chain.Options{Nodes: 2, Overlay: true, Encap: tc.encap, GREKey: tc.encap == loader.GRE,
				Hook: loader.HookTC, Attach: tc.attach})
			a, g := c.Nodes[0], c.Nodes[1]
			u := netns.ForTest(t, "gwu")
			gwLink, uLink := netip.MustParsePrefix("fd42::1/64"), netip.MustParsePrefix("fd42::2/64")
			exterior := netip.MustParseAddr("2a00:1::1")
			require.NoError(t, netns.Veth(g.NS, "up0", u, "u0"))
			require.NoError(t, g.NS.AddrAdd("up0", gwLink))
			require.NoError(t, u.AddrAdd("u0", uLink))
			require.NoError(t, u.AddrAdd("u0", netip.PrefixFrom(exterior, 128)))
			_, err := u.Run("ip", "-6", "route", "add", chain.Network.String(), "via", gwLink.Addr().String())
			require.NoError(t, err)

			// G: the native route, the upstream program, no kernel forwarding.
			up0, err := g.NS.Ifindex("up0")
			require.NoError(t, err)
			require.NoError(t, g.Datapath.SetNativeRoute(loader.NativeRoute{Dst: netip.MustParsePrefix("2a00:1::/32"),
				NextHop: uLink.Addr(), Ifindex: uint32(up0), MTU: 1500}))
			att, err := g.Datapath.AttachNative("up0")
			require.NoError(t, err)
			t.Cleanup(func() { att.Close() })
			require.NoError(t, g.NS.Sysctl("net.ipv6.conf.all.forwarding", "0"))

			// A: ::/0 from the network through G, as Babel gives it.
			require.NoError(t, a.Datapath.SetRoute(netip.MustParsePrefix("::/0"), chain.Network, loader.Nexthop{Tunnel: 2}))
			_, err = a.NS.Run("ip", "-6", "route", "add", "2a00:1::/32", "dev", loader.DefaultOverlay, "src", a.Overlay.String())
			require.NoError(t, err)

			out, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", exterior.String())
			require.NoError(t, err, out)
			require.Contains(t, out, "3 received")

			forwBefore := snmp6(t, g.NS, "Ip6OutForwDatagrams")
			outBefore, inBefore := reason(t, g.Datapath, "native-out"), reason(t, g.Datapath, "native-in")
			tcpTransfer(t, a.NS, u, exterior, 8<<20)
			tcpTransfer(t, u, a.NS, a.Overlay, 8<<20)
			rs, err := g.Datapath.Reasons()
			require.NoError(t, err)
			t.Logf("G: native-out %d, native-in %d, segment %d, slow-path %d", rs["native-out"], rs["native-in"], rs["segment"], rs["slow-path"])
			require.Equal(t, forwBefore, snmp6(t, g.NS, "Ip6OutForwDatagrams"), "G's kernel forwarded; its data plane counted %v", rs)
			require.Greater(t, rs["native-out"], outBefore+100, "%v", rs)
			require.Greater(t, rs["native-in"], inBefore+100, "%v", rs)

			counters, err := g.Datapath.NativeCounters()
			require.NoError(t, err)
			require.Len(t, counters, 1)
			require.Equal(t, uint32(up0), counters[0].Ifindex)
			require.Greater(t, counters[0].RxBytes, uint64(8<<20))
			require.Greater(t, counters[0].TxBytes, uint64(8<<20))

			// The slow path: with its IPv6 forwarding on again and the
			// native route in its table too (as fib.Native writes it),
			// G's kernel answers what the data plane leaves it (hop
			// limit 1), and traceroute6 shows G in both directions.
			require.NoError(t, g.NS.Sysctl("net.ipv6.conf.all.forwarding", "1"))
			_, err = g.NS.Run("ip", "-6", "route", "add", "2a00:1::/32", "via", uLink.Addr().String(), "dev", "up0")
			require.NoError(t, err)
			out, err = a.NS.Run("traceroute6", "-n", "-q1", "-w1", exterior.String())
			require.NoError(t, err, out)
			require.Regexp(t, `(?m)^ 1\s+`+g.Overlay.String()+`\s`, out)
			require.Regexp(t, `(?m)^ 2\s+`+exterior.String()+`\s`, out)
			out, err = u.Run("traceroute6", "-n", "-q1", "-w1", a.Overlay.String())
			require.NoError(t, err, out)
			require.Regexp(t, `(?m)^ 1\s+`+gwLink.Addr().String()+`\s`, out)
			require.Regexp(t, `(?m)^ 2\s+`+a.Overlay.String()+`\s`, out)
		})
	}
}
