package bgp

import (
	"context"
	"encoding/binary"
	"flag"
	"net/netip"
	"runtime"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// tableSize defaults to about the size of the global IPv6 table.
var tableSize = flag.Int("table-size", 230_000, "prefixes the feeder of BenchmarkFullTable holds")

// feeder is a GoBGP server (AS 65001, on ::1 port 1790) holding n
// synthetic /48s under 2a00::/16, which it sends to whoever peers with it.
func feeder(tb testing.TB, n int) *server.BgpServer {
	tb.Helper()
	ctx := context.Background()
	f := server.NewBgpServer(server.LoggerOption(&zlog{log: zerolog.Nop()}))
	go f.Serve()
	require.NoError(tb, f.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65001, RouterId: "10.255.0.9", ListenPort: 1790, ListenAddresses: []string{"::1"},
	}}))
	tb.Cleanup(func() { _ = f.StopBgp(ctx, &api.StopBgpRequest{}) })
	for i := range n {
		a := [16]byte{0x2a}
		binary.BigEndian.PutUint32(a[2:], uint32(i)) // 2a00:xxxx:xxxx::/48
		nlri := bgp.NewIPv6AddrPrefix(48, netip.AddrFrom16(a).String())
		nh := bgp.NewPathAttributeMpReachNLRI("::1", []bgp.AddrPrefixInterface{nlri})
		p, err := apiutil.NewPath(nlri, false, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh}, time.Now())
		require.NoError(tb, err)
		_, err = f.AddPath(ctx, &api.AddPathRequest{Path: p})
		require.NoError(tb, err)
	}
	require.NoError(tb, f.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "::1", PeerAsn: 65000},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
		Transport: &api.Transport{PassiveMode: true},
	}}))
	return f
}

// BenchmarkFullTable: a speaker peers with a GoBGP feeder holding a full
// IPv6 table (230,000 prefixes): the time from the session up to every route in
// Learned, the routes learned per second and the heap it takes. The
// feeder is filled before the timer starts. Run with -benchtime 1x.
func BenchmarkFullTable(b *testing.B) {
	netns.RequireRoot(b)
	fullTable := *tableSize
	feeder(b, fullTable)
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan struct{})
		var s *Speaker
		s, err := Start(Config{ASN: 65000, RouterID: netip.MustParseAddr("10.255.0.8"), Network: network,
			Peers:  []Peer{{Address: netip.MustParseAddr("::1"), ASN: 65001, Port: 1790}},
			Logger: zerolog.Nop(), ConnectRetry: time.Second,
			Changed: func() {
				if s != nil && s.LearnedCount() == fullTable {
					select {
					case <-done:
					default:
						close(done)
					}
				}
			}})
		require.NoError(b, err)
		// The clock starts when the session is up.
		for len(s.Sessions()) == 0 || !s.Sessions()[0].Established() {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d of %d routes after 5 min", s.LearnedCount(), fullTable)
		}
		elapsed := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		s.Stop()
		b.ReportMetric(elapsed.Seconds(), "s/full-table")
		b.ReportMetric(float64(fullTable)/elapsed.Seconds(), "routes/s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-heap")
	}
}
