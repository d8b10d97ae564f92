package server_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/stretchr/testify/require"
)

// A registry with a community file publishes its communities in the
// network parameters; a node derives its community's prefix from them and
// its own prefix (what a border gateway announces, docs/gateway.md).
func TestCommunitiesPublished(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		var err error
		cfg.Communities, err = alloc.ParseCommunities(strings.NewReader("00 *\n01 FR\n1 @AS\n"))
		require.NoError(t, err)
	})
	n := r.enrol(t, "", 0)
	require.True(t, strings.HasPrefix(n.prefix, "00"), "prefix %s: the default community is 00", n.prefix)
	params, err := n.session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"00", "01", "1"}, params.Communities)

	network := netip.MustParsePrefix("2001:db8:42::/48")
	subnet, err := wire.Subnet(r.cfg.Authority.Network, n.prefix)
	require.NoError(t, err)
	community, ok := params.CommunityPrefix(network, subnet)
	require.True(t, ok)
	require.Equal(t, netip.MustParsePrefix("2001:db8:42::/50"), community)
}

// Without a community file the parameters carry no communities, and stay
// what they were (no new version for existing networks).
func TestNoCommunitiesPublished(t *testing.T) {
	r := startRegistry(t, nil)
	n := r.enrol(t, "", 0)
	params, err := n.session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Empty(t, params.Communities)
	subnet, err := wire.Subnet(r.cfg.Authority.Network, n.prefix)
	require.NoError(t, err)
	_, ok := params.CommunityPrefix(netip.MustParsePrefix("2001:db8:42::/48"), subnet)
	require.False(t, ok)
}
