package node

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

func testClasses(t *testing.T) []netparams.TrafficClass {
	var out []netparams.TrafficClass
	for _, s := range []string{"keepalive,fd00:1::/32,dscp=46,priority=7,metric=latency", "bulk,fd00:2::/32,dscp=10,priority=0"} {
		c, err := netparams.ParseTrafficClass(s)
		require.NoError(t, err)
		out = append(out, c)
	}
	return out
}

// Class ids follow the registry's order; the node's prefix and address in
// each range come from its subnet bits; routes map to the class of their
// destination's range.
func TestDeriveClassesAndClassOf(t *testing.T) {
	network, prefix := netip.MustParsePrefix("2001:db8:42::/48"), netip.MustParsePrefix("2001:db8:42:7::/64")
	cs, err := deriveClasses(network, prefix, testClasses(t))
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Equal(t, uint8(1), cs[0].ID)
	require.Equal(t, "fd00:1:7::/48", cs[0].Prefix.String())
	require.Equal(t, "fd00:1:7::1", cs[0].Address.String())
	require.Equal(t, "fd00:2:7::/48", cs[1].Prefix.String())
	for dst, want := range map[string]uint8{"fd00:1:9::/48": 1, "fd00:2::/32": 2, "fd00::/16": 0, "2001:db8:42:9::/64": 0, "::/0": 0} {
		require.Equal(t, want, classOf(cs, netip.MustParsePrefix(dst)), dst)
	}

	none, err := deriveClasses(network, prefix, nil)
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = deriveClasses(network, prefix, append(testClasses(t), netparams.TrafficClass{Name: "x", Range: netip.MustParsePrefix("fd00:1:8000::/33"), Metric: netparams.MetricDefault}))
	require.ErrorContains(t, err, "overlap")
}

func TestClassStatusJSONRoundTrip(t *testing.T) {
	s := Status{Classes: []ClassStatus{{ID: 1, TrafficClass: testClasses(t)[0], Prefix: netip.MustParsePrefix("fd00:1:7::/48"),
		Address: netip.MustParseAddr("fd00:1:7::1"), Traffic: loader.ClassStats{Packets: 5, Bytes: 500},
		Routes: []RouteStatus{{Prefix: "fd00:1:9::/48", Via: "re6st-t3", Installed: true}}}}}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(b), `"traffic_classes":[{"id":1,"name":"keepalive","range":"fd00:1::/32"`)
	var back Status
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, s.Classes, back.Classes)
}

// --class-peer: the tunnels to the named peers (by CN or bits) are the
// class's own; the class is then restricted in Babel, its metric follows
// the network's; a class without --class-peer may use every tunnel.
func TestClassRoutingPolicy(t *testing.T) {
	network, prefix := netip.MustParsePrefix("2001:db8:42::/48"), netip.MustParsePrefix("2001:db8:42:7::/64")
	cs, err := deriveClasses(network, prefix, testClasses(t))
	require.NoError(t, err)
	router, err := babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID()})
	require.NoError(t, err)
	defer router.Close()
	log := zerolog.Nop()
	n := &Node{router: router, log: log, cfg: &Config{ClassPeers: map[string][]string{
		"keepalive": {wire.CommonName("0000000000001001"), "0000000000000011"},
		"missing":   {"0000000000000011"},
	}}}
	require.NoError(t, n.routeClasses(cs))
	require.Equal(t, []string{"keepalive"}, n.ownClasses("0000000000001001"), "by CN")
	require.Equal(t, []string{"keepalive", "missing"}, n.ownClasses("0000000000000011"), "by bits")
	require.Empty(t, n.ownClasses("0000000000000100"))

	require.Equal(t, []babel.Class{
		{Name: "keepalive", Range: netip.MustParsePrefix("fd00:1::/32"), Latency: true, Restricted: true},
		{Name: "bulk", Range: netip.MustParsePrefix("fd00:2::/32")},
	}, router.Classes())
}
