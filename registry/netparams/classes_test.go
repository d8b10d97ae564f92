package netparams_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

var testNetwork = netip.MustParsePrefix("2001:db8::/32")

func TestParseTrafficClass(t *testing.T) {
	c, err := netparams.ParseTrafficClass("keepalive,fd00:1::/32,dscp=46,priority=7,rate=1M,metric=latency")
	require.NoError(t, err)
	require.Equal(t, netparams.TrafficClass{Name: "keepalive", Range: netip.MustParsePrefix("fd00:1::/32"),
		DSCP: 46, Priority: 7, Rate: 1_000_000, Metric: netparams.MetricLatency}, c)
	c, err = netparams.ParseTrafficClass("bulk,fd00:2::/32,dscp=10,priority=0")
	require.NoError(t, err)
	require.Equal(t, netparams.MetricDefault, c.Metric)
	require.Zero(t, c.Rate)

	for value, want := range map[string]string{
		"keepalive":                                    "want NAME,RANGE",
		"k,fd00:1::/32,priority=7":                     "dscp= and priority= are required",
		"k,fd00:1::1/32,dscp=46,priority=7":            "no host bits",
		"k,10.0.0.0/8,dscp=46,priority=7":              "not an IPv6 network",
		"k,fd00:1::/32,dscp=64,priority=7":             "0..63",
		"k,fd00:1::/32,dscp=46,priority=8":             "0..7",
		"k,fd00:1::/32,dscp=46,priority=7,metric=hops": "latency or default",
		"k,fd00:1::/32,dscp=46,priority=7,colour=blue": "unknown key",
		"k,fd00:1::/32,dscp=46,priority=7,rate=fast":   "rate",
		"k,fd00:1::/32,dscp=46,priority=7,justoneword": "KEY=VALUE",
	} {
		_, err := netparams.ParseTrafficClass(value)
		require.ErrorContains(t, err, want, value)
	}
}

func class(name, r string) netparams.TrafficClass {
	return netparams.TrafficClass{Name: name, Range: netip.MustParsePrefix(r), Metric: netparams.MetricDefault}
}

// Overlapping ranges, with each other or with the network, are refused.
func TestValidateClassesRefusesOverlaps(t *testing.T) {
	require.NoError(t, netparams.ValidateClasses(testNetwork, []netparams.TrafficClass{class("a", "fd00:1::/32"), class("b", "fd00:2::/32")}))
	require.ErrorContains(t, netparams.ValidateClasses(testNetwork, []netparams.TrafficClass{class("a", "fd00::/16"), class("b", "fd00:2::/32")}), "overlap")
	require.ErrorContains(t, netparams.ValidateClasses(testNetwork, []netparams.TrafficClass{class("a", "2001:db8:8000::/33")}), "overlaps the network")
	require.ErrorContains(t, netparams.ValidateClasses(testNetwork, []netparams.TrafficClass{class("a", "2001::/16")}), "overlaps the network")
	require.ErrorContains(t, netparams.ValidateClasses(testNetwork, []netparams.TrafficClass{class("a", "fd00:1::/32"), class("a", "fd00:2::/32")}), "twice")
}

// A node's prefix in a class range is the range followed by the node's
// subnet bits.
func TestClassPrefix(t *testing.T) {
	for _, c := range []struct{ node, rng, want string }{
		{"2001:db8:1200::/40", "fd00:7::/48", "fd00:7:0:1200::/56"},
		{"2001:db8:1::/48", "fd00:1::/32", "fd00:1:1::/48"},
		{"2001:db8:ffff::/48", "fd00:1::/32", "fd00:1:ffff::/48"},
		{"2001:db8::/32", "fd00:1::/32", "fd00:1::/32"}, // the registry's own prefix
		{"2001:db8:8000::/33", "fd00:1:2::/48", "fd00:1:2:8000::/49"},
	} {
		got, err := netparams.ClassPrefix(testNetwork, netip.MustParsePrefix(c.node), netip.MustParsePrefix(c.rng))
		require.NoError(t, err, c.node)
		require.Equal(t, c.want, got.String(), c.node)
	}
	_, err := netparams.ClassPrefix(testNetwork, netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("fd00::/120"))
	require.ErrorContains(t, err, "no room")
	_, err = netparams.ClassPrefix(testNetwork, netip.MustParsePrefix("2001:db9::/48"), netip.MustParsePrefix("fd00::/32"))
	require.ErrorContains(t, err, "not a subnet")
}

// The mapping keeps the prefix-free property of certificates: subnets that
// do not overlap in the network do not overlap in a class range, and
// distinct subnets map to distinct class prefixes.
func TestClassPrefixPreservesDisjointness(t *testing.T) {
	rng := netip.MustParsePrefix("fd00:7::/40")
	var nodes, mapped []netip.Prefix
	for i := 0; i < 64; i++ {
		// Subnets of various lengths: 2001:db8:<i>00::/40 and, below
		// one of them, longer ones.
		nodes = append(nodes, netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x00::/40", i+1)))
	}
	nodes = append(nodes, netip.MustParsePrefix("2001:db8:ff01::/48"), netip.MustParsePrefix("2001:db8:ff02::/48"))
	for _, n := range nodes {
		p, err := netparams.ClassPrefix(testNetwork, n, rng)
		require.NoError(t, err)
		require.True(t, rng.Contains(p.Addr()), p)
		mapped = append(mapped, p)
	}
	for i := range nodes {
		for j := range nodes[:i] {
			require.Equal(t, nodes[i].Overlaps(nodes[j]), mapped[i].Overlaps(mapped[j]), "%s %s → %s %s", nodes[i], nodes[j], mapped[i], mapped[j])
		}
	}
}

// Classes are published in the canonical parameters (so the signed version
// changes with them) in Python's json.dumps form; a network without classes
// publishes exactly what it did before; a node reads them back.
func TestCanonicalTrafficClasses(t *testing.T) {
	without := netparams.Canonical(defaults, nil, "")
	settings := defaults
	settings.TrafficClasses = []netparams.TrafficClass{}
	require.Equal(t, without, netparams.Canonical(settings, nil, ""), "empty classes change nothing")
	require.NotContains(t, without, "traffic_classes")

	ka, err := netparams.ParseTrafficClass("keepalive,fd00:1::/32,dscp=46,priority=7,rate=1M,metric=latency")
	require.NoError(t, err)
	bulk, err := netparams.ParseTrafficClass("bulk,fd00:2::/32,dscp=10,priority=0")
	require.NoError(t, err)
	settings.TrafficClasses = []netparams.TrafficClass{ka, bulk}
	with := netparams.Canonical(settings, nil, "")
	require.Contains(t, with, `"traffic_classes": [{"dscp": 46, "metric": "latency", "name": "keepalive", "priority": 7, "range": "fd00:1::/32", "rate": 1000000}, {"dscp": 10, "metric": "default", "name": "bulk", "priority": 0, "range": "fd00:2::/32", "rate": 0}]`)

	var p netparams.Params
	require.NoError(t, json.Unmarshal([]byte(with), &p))
	require.Equal(t, settings.TrafficClasses, p.TrafficClasses)
}
