package geoip_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/geoip"
)

func TestMostSpecificNetworkWins(t *testing.T) {
	db, err := geoip.Parse(strings.NewReader("# net,country,continent\n192.0.2.0/24,fr,eu\n192.0.2.128/25,DE,EU\n2001:db8::/32,JP,AS\n"))
	require.NoError(t, err)
	location, ok := db.Lookup(netip.MustParseAddr("192.0.2.200"))
	require.True(t, ok)
	require.Equal(t, geoip.Location{Country: "DE", Continent: "EU"}, location)
	location, ok = db.Lookup(netip.MustParseAddr("::ffff:192.0.2.1"))
	require.True(t, ok)
	require.Equal(t, "FR", location.Country)
	_, ok = db.Lookup(netip.MustParseAddr("198.51.100.1"))
	require.False(t, ok)
	_, err = geoip.Parse(strings.NewReader("not-a-network,FR,EU\n"))
	require.Error(t, err)
}
