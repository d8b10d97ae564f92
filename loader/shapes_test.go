package loader_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

var (
	shapeFOU    = chain.Shape{Encap: loader.FOU}
	shapeGRE    = chain.Shape{Encap: loader.GRE}
	shapeGREKey = chain.Shape{Encap: loader.GRE, GREKey: true}
)

// A —x— B —y— C for every ordered pair of different tunnel shapes x, y,
// each underlay hook and each attachment mode: B forwards between the two encapsulations in BPF (its
// kernel forwards nothing), a TCP transfer arrives whole, and the slow path
// still does what needs the kernel across the shape change: Time Exceeded
// (traceroute), Packet Too Big from a smaller next tunnel, no route.
func TestTransitAcrossShapes(t *testing.T) {
	shapes := []chain.Shape{shapeFOU, shapeGRE, shapeGREKey}
	for _, hm := range hookModes() {
		for _, in := range shapes {
			for _, out := range shapes {
				if in == out {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/%s-%s", hm.hook, hm.attach, in, out), func(t *testing.T) {
					transitAcrossShapes(t, hm, in, out)
				})
			}
		}
	}
}

func transitAcrossShapes(t *testing.T, hm hookMode, in, out chain.Shape) {
	c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Shapes: []chain.Shape{in, out}, Hook: hm.hook, Attach: hm.attach})
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	// The first packet through B in XDP finds no learnt link layer for
	// the tunnel to C: it takes the slow path, out of B's overlay device
	// and back into a tunnel.
	slowBefore := reason(t, b.Datapath, "slow-path")
	out1, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", cc.Overlay.String())
	require.NoError(t, err, out1)
	require.Contains(t, out1, "3 received")
	if hm.hook == loader.HookXDP {
		require.Greater(t, reason(t, b.Datapath, "slow-path"), slowBefore, "the first packet did not take the slow path")
	}

	forwBefore := snmp6(t, b.NS, "Ip6OutForwDatagrams")
	transitBefore := reason(t, b.Datapath, "transit")
	tcpTransfer(t, a.NS, cc.NS, cc.Overlay, 8<<20)
	tcpTransfer(t, cc.NS, a.NS, a.Overlay, 8<<20)
	rs, err := b.Datapath.Reasons()
	require.NoError(t, err)
	require.Equal(t, forwBefore, snmp6(t, b.NS, "Ip6OutForwDatagrams"),
		"B's kernel forwarded overlay traffic; B's data plane counted %v", rs)
	require.Greater(t, rs["transit"], transitBefore+100)
	require.Zero(t, rs["drop-malformed"], "B dropped packets as malformed: %v", rs)

	// Hop limit: B's kernel answers Time Exceeded from B's address.
	tr, err := a.NS.Run("traceroute6", "-n", "-q1", "-w1", cc.Overlay.String())
	require.NoError(t, err, tr)
	require.Regexp(t, `(?m)^ 1\s+`+b.Overlay.String()+`\s`, tr)
	require.Regexp(t, `(?m)^ 2\s+`+cc.Overlay.String()+`\s`, tr)

	// No route: an address of the network nobody announces.
	nowhere := netip.MustParseAddr("2001:db8:ff::1")
	nr, _ := a.NS.Run("ping", "-c", "1", "-W", "2", nowhere.String())
	require.Contains(t, nr, "No route", nr)

	// Too big: B's tunnel to C carries less than A's tunnel to B. The error
	// goes back from B across the shape change.
	tc, err := b.Datapath.Tunnel(2)
	require.NoError(t, err)
	tc.MTU = 1300
	require.NoError(t, b.Datapath.UpdateTunnel(tc))
	ptb, _ := a.NS.Run("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1400", cc.Overlay.String())
	require.True(t, strings.Contains(ptb, "mtu = 1300") || strings.Contains(ptb, "mtu=1300"),
		"no Packet Too Big with the next tunnel's MTU: %s", ptb)
	small, err := a.NS.Run("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1200", cc.Overlay.String())
	require.NoError(t, err, small)
}
