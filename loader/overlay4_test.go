package loader_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// A — B — C carrying IPv4 over the overlay, for each encapsulation (and a
// chain whose shape changes at B, where TCP's GSO packets take the
// segmentation detour) at each underlay hook: ping, a TCP transfer checked
// by SHA-256 with B's kernel forwarding nothing, traceroute showing B,
// "network unreachable" from the data plane, and "fragmentation needed"
// from the transit node for a packet larger than its next tunnel's MTU.
func TestOverlayIPv4ThroughTransitNode(t *testing.T) {
	netns.RequireRoot(t)
	fou, greKey, gre := chain.Shape{Encap: loader.FOU}, chain.Shape{Encap: loader.GRE, GREKey: true}, chain.Shape{Encap: loader.GRE}
	for _, tc := range []struct {
		name   string
		shapes []chain.Shape
		hook   loader.Hook
	}{
		{"fou/tc", []chain.Shape{fou, fou}, loader.HookTC},
		{"gre-key/tc", []chain.Shape{greKey, greKey}, loader.HookTC},
		{"fou-to-gre/tc", []chain.Shape{fou, gre}, loader.HookTC},
		{"fou/xdp", []chain.Shape{fou, fou}, loader.HookXDP},
		{"gre-to-fou/xdp", []chain.Shape{gre, fou}, loader.HookXDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Shapes: tc.shapes, Hook: tc.hook, IPv4: true})
			a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]

			out, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", cc.Overlay4.String())
			require.NoError(t, err, out)
			require.Contains(t, out, "3 received")

			forwBefore := snmp4(t, b.NS, "ForwDatagrams")
			transitBefore := reason(t, b.Datapath, "transit")
			tcpTransfer(t, a.NS, cc.NS, cc.Overlay4, 8<<20)
			rs, err := b.Datapath.Reasons()
			require.NoError(t, err)
			require.Equal(t, forwBefore, snmp4(t, b.NS, "ForwDatagrams"),
				"B's kernel forwarded overlay traffic; B's data plane counted %v", rs)
			require.Greater(t, reason(t, b.Datapath, "transit"), transitBefore+100)
			require.Zero(t, reason(t, b.Datapath, "drop-malformed"))

			out, err = a.NS.Run("traceroute", "-n", "-q1", "-w1", cc.Overlay4.String())
			require.NoError(t, err, out)
			require.Regexp(t, `(?m)^ 1\s+`+regexp.QuoteMeta(b.Overlay4.String())+`\s`, out)
			require.Regexp(t, `(?m)^ 2\s+`+regexp.QuoteMeta(cc.Overlay4.String())+`\s`, out)

			// In the IPv4 overlay, without a route: A's data plane answers.
			out, _ = a.NS.Run("ping", "-c", "1", "-W", "2", "10.42.9.1")
			require.Contains(t, out, "From "+a.Overlay4.String())
			require.Contains(t, out, "Destination Net Unreachable")

			// B's tunnel to C narrower than the overlay: B's data plane
			// tells A, which does not fragment (DF), the tunnel's MTU.
			tn, err := b.Datapath.Tunnel(2)
			require.NoError(t, err)
			tn.MTU = 1300
			require.NoError(t, b.Datapath.UpdateTunnel(tn))
			out, _ = a.NS.Run("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1400", cc.Overlay4.String())
			require.Contains(t, out, "From "+b.Overlay4.String())
			require.Contains(t, out, "Frag needed and DF set (mtu = 1300)")
		})
	}
}

// snmp4 reads an "Ip:" counter of /proc/net/snmp.
func snmp4(t *testing.T, ns *netns.NS, key string) uint64 {
	out, err := ns.Run("cat", "/proc/net/snmp")
	require.NoError(t, err)
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == key && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				require.NoError(t, err)
				return v
			}
		}
	}
	t.Fatalf("%s not in /proc/net/snmp", key)
	return 0
}
