package bgp

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePeer(t *testing.T) {
	p, err := ParsePeer("2001:db8::1,65001,password=s3cret,multihop=2,port=1179")
	require.NoError(t, err)
	require.Equal(t, Peer{Address: netip.MustParseAddr("2001:db8::1"), ASN: 65001, Password: "s3cret", Multihop: 2, Port: 1179}, p)
	require.Equal(t, "2001:db8::1,65001,password=s3cret,multihop=2,port=1179", p.String())

	p, err = ParsePeer("192.0.2.1,1.10")
	require.NoError(t, err)
	require.Equal(t, Peer{Address: netip.MustParseAddr("192.0.2.1"), ASN: 1<<16 | 10}, p)

	for _, bad := range []string{"192.0.2.1", "nope,65001", "192.0.2.1,0", "192.0.2.1,x", "192.0.2.1,65001,ttl=3",
		"192.0.2.1,65001,multihop=0", "192.0.2.1,65001,port=70000", "192.0.2.1,65001,password"} {
		_, err := ParsePeer(bad)
		require.Error(t, err, bad)
	}
}

func TestCommunityNumber(t *testing.T) {
	network := netip.MustParsePrefix("2001:db8:42::/48")
	for prefix, want := range map[string]uint32{
		"2001:db8:42::/48":      0,
		"2001:db8:42::/49":      0b10,
		"2001:db8:42:8000::/49": 0b11,
		"2001:db8:42:4000::/50": 0b101,
		"2001:db8:43::/49":      0,
	} {
		require.Equal(t, want, CommunityNumber(network, netip.MustParsePrefix(prefix)), prefix)
	}
	require.NotEqual(t, NetworkID(network), NetworkID(netip.MustParsePrefix("2001:db8:43::/48")))
	require.Equal(t, "65000:"+strconv.FormatUint(uint64(NetworkID(network)), 10)+":5", Tag(65000, network, netip.MustParsePrefix("2001:db8:42:4000::/50")).String())
}
