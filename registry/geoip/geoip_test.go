package geoip_test

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
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

// TestMMDB: a GeoLite2-Country-shaped database, built here with MaxMind's
// writer, is read as re6st reads GEOIP2_MMDB.
func TestMMDB(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	require.NoError(t, err)
	country := func(iso, continent string) mmdbtype.Map {
		return mmdbtype.Map{
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(iso)},
			"continent": mmdbtype.Map{"code": mmdbtype.String(continent)},
		}
	}
	// In order: the writer's Insert replaces what a network covers, so the
	// more specific one goes in last.
	for _, r := range []struct {
		network  string
		location mmdbtype.Map
	}{
		{"192.0.2.0/24", country("FR", "EU")},
		{"192.0.2.128/25", country("DE", "EU")},
		{"2001:db8::/32", country("JP", "AS")},
	} {
		_, n, err := net.ParseCIDR(r.network)
		require.NoError(t, err)
		require.NoError(t, tree.Insert(n, r.location))
	}
	path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = tree.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	db, err := geoip.Load(path)
	require.NoError(t, err)
	for ip, want := range map[string]geoip.Location{
		"192.0.2.1":        {"FR", "EU"},
		"192.0.2.200":      {"DE", "EU"},
		"::ffff:192.0.2.1": {"FR", "EU"},
		"2001:db8::1":      {"JP", "AS"},
	} {
		location, ok := db.Lookup(netip.MustParseAddr(ip))
		require.True(t, ok, ip)
		require.Equal(t, want, location, ip)
	}
	_, ok := db.Lookup(netip.MustParseAddr("198.51.100.1"))
	require.False(t, ok)

	csvPath := filepath.Join(t.TempDir(), "geoip.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("192.0.2.0/24,FR,EU\n"), 0o644))
	db, err = geoip.Load(csvPath)
	require.NoError(t, err)
	location, ok := db.Lookup(netip.MustParseAddr("192.0.2.1"))
	require.True(t, ok)
	require.Equal(t, "FR", location.Country)
}
