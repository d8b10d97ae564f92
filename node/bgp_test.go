package node

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
	"github.com/stretchr/testify/require"
)

// bgpMetrics collects collectBGP for a status.
type bgpMetrics struct{ s *BGPStatus }

func (m bgpMetrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }
func (m bgpMetrics) Collect(ch chan<- prometheus.Metric) { collectBGP(m.s, ch) }

// TestBGPMetrics: a gateway's BGP status as Prometheus metrics.
func TestBGPMetrics(t *testing.T) {
	s := &BGPStatus{ASN: 65000,
		Sessions: []bgp.Session{
			{Peer: netip.MustParseAddr("2001:db8:ffff::1"), ASN: 65001, State: "established", Uptime: 90 * time.Second, Received: 4, Accepted: 2, Advertised: 2},
			{Peer: netip.MustParseAddr("192.0.2.1"), ASN: 65002, State: "active"},
		},
		Announced: []AnnouncedInfo{{Prefix: netip.MustParsePrefix("2001:db8:42::/48"), Community: "65000:1:0"}},
		Learned:   1, Rejected: 2, Default: true, Native: fib.NativeStats{Installed: 1, Errors: 3},
	}
	require.NoError(t, testutil.CollectAndCompare(bgpMetrics{s}, strings.NewReader(`
# HELP re6st_bgp_announced A prefix the gateway announces, with its large community.
# TYPE re6st_bgp_announced gauge
re6st_bgp_announced{community="65000:1:0",prefix="2001:db8:42::/48"} 1
# HELP re6st_bgp_babel_default 1 while the gateway exports ::/0 from the network into Babel.
# TYPE re6st_bgp_babel_default gauge
re6st_bgp_babel_default 1
# HELP re6st_bgp_learned_routes Best routes learned from the BGP peers.
# TYPE re6st_bgp_learned_routes gauge
re6st_bgp_learned_routes 1
# HELP re6st_bgp_native_errors_total Writes of learned routes the kernel or the data plane refused.
# TYPE re6st_bgp_native_errors_total counter
re6st_bgp_native_errors_total 3
# HELP re6st_bgp_native_routes Learned routes written into the kernel and the data plane.
# TYPE re6st_bgp_native_routes gauge
re6st_bgp_native_routes 1
# HELP re6st_bgp_prefixes Prefixes of a BGP session by kind: received, accepted (after the import policy), advertised.
# TYPE re6st_bgp_prefixes gauge
re6st_bgp_prefixes{asn="65001",kind="accepted",peer="2001:db8:ffff::1"} 2
re6st_bgp_prefixes{asn="65001",kind="advertised",peer="2001:db8:ffff::1"} 2
re6st_bgp_prefixes{asn="65001",kind="received",peer="2001:db8:ffff::1"} 4
re6st_bgp_prefixes{asn="65002",kind="accepted",peer="192.0.2.1"} 0
re6st_bgp_prefixes{asn="65002",kind="advertised",peer="192.0.2.1"} 0
re6st_bgp_prefixes{asn="65002",kind="received",peer="192.0.2.1"} 0
# HELP re6st_bgp_rejected_routes Routes the peers give inside the re6st network, rejected by the import policy.
# TYPE re6st_bgp_rejected_routes gauge
re6st_bgp_rejected_routes 2
# HELP re6st_bgp_session_established 1 if the BGP session with the peer is established.
# TYPE re6st_bgp_session_established gauge
re6st_bgp_session_established{asn="65001",peer="2001:db8:ffff::1"} 1
re6st_bgp_session_established{asn="65002",peer="192.0.2.1"} 0
# HELP re6st_bgp_session_uptime_seconds How long the BGP session has been established.
# TYPE re6st_bgp_session_uptime_seconds gauge
re6st_bgp_session_uptime_seconds{asn="65001",peer="2001:db8:ffff::1"} 90
re6st_bgp_session_uptime_seconds{asn="65002",peer="192.0.2.1"} 0
`)))
}

// TestBGPConfigCheck: BGP only on a gateway, with an IPv4 router id.
func TestBGPConfigCheck(t *testing.T) {
	require.NoError(t, (&BGPConfig{}).check(false))
	require.NoError(t, (&BGPConfig{ASN: 65000}).check(true))
	require.ErrorContains(t, (&BGPConfig{ASN: 65000}).check(false), "--gateway")
	require.ErrorContains(t, (&BGPConfig{Peers: []bgp.Peer{{ASN: 1}}}).check(true), "--bgp-asn")
	require.ErrorContains(t, (&BGPConfig{ASN: 65000, RouterID: netip.MustParseAddr("::1")}).check(true), "IPv4")
	require.ErrorContains(t, (&BGPConfig{ASN: 65000, CommunityBits: 40}).check(true), "0 to 31")
}

// TestBGPAnnouncements: the community prefix comes from --bgp-announce,
// else --bgp-community-bits, else the communities of the network
// parameters; the aggregate is always announced, last.
func TestBGPAnnouncements(t *testing.T) {
	network := netip.MustParsePrefix("2001:db8:42::/48")
	prefix := netip.MustParsePrefix("2001:db8:42:4a00::/56") // bits 0100 1010 after the network
	published := &netparams.Params{Communities: []string{"00", "01", "1"}}
	p := netip.MustParsePrefix
	for _, c := range []struct {
		name   string
		cfg    BGPConfig
		params *netparams.Params
		want   []netip.Prefix
	}{
		{"published", BGPConfig{}, published, []netip.Prefix{p("2001:db8:42:4000::/50"), network}},
		{"override", BGPConfig{CommunityBits: 3}, published, []netip.Prefix{p("2001:db8:42:4000::/51"), network}},
		{"announce", BGPConfig{Announce: []netip.Prefix{p("2001:db8:42:4a00::/56")}, CommunityBits: 3}, published, []netip.Prefix{p("2001:db8:42:4a00::/56"), network}},
		{"none published", BGPConfig{}, &netparams.Params{}, []netip.Prefix{network}},
		{"outside every community", BGPConfig{}, &netparams.Params{Communities: []string{"1"}}, []netip.Prefix{network}},
		{"community longer than the prefix", BGPConfig{}, &netparams.Params{Communities: []string{"010010100"}}, []netip.Prefix{network}},
	} {
		require.Equal(t, c.want, announcements(&c.cfg, c.params, network, prefix), c.name)
	}
}
