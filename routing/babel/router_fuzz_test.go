package babel

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzRouterReceive feeds arbitrary packets to a router that has a
// neighbour and a route: a packet the parser rejects must leave every
// piece of state (neighbours, routes, exported prefixes) unchanged, and no
// packet may panic.
func FuzzRouterReceive(f *testing.F) {
	fuzzSeeds(f)
	peer := netip.MustParseAddr("fe80::2")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewRouter(Config{RouterID: idA, Clock: NewRealClock()})
		require.NoError(t, err)
		defer r.Close()
		p2p := NewPointToPoint(netip.MustParseAddr("fe80::1"), func(netip.Addr, []byte) error { return nil })
		require.NoError(t, r.AddInterface("t0", DefaultInterfaceConfig(LinkTunnel), p2p))
		require.NoError(t, r.Export(pfx("2001:db8:1::/48"), netip.Prefix{}, 0))
		setup := NewEncoder(0)
		for _, m := range []Message{
			Hello{Seqno: 1, Interval: 400}, Hello{Seqno: 2, Interval: 400},
			IHU{Rxcost: 96, Interval: 1200},
			Update{Prefix: pfx("2001:db8:2::/48"), RouterID: idB, Interval: 1600, Seqno: 1, Metric: 0},
		} {
			require.NoError(t, setup.Append(m))
		}
		p2p.Deliver(peer, MulticastGroup, setup.Bytes())
		before := stateOf(r)
		require.Len(t, before.Routes, 1)

		p2p.Deliver(peer, MulticastGroup, data)
		if _, err := ParsePacket(data); err != nil {
			require.Equal(t, before, stateOf(r))
		}
	})
}

// stateOf is the router's dump without traffic counters.
func stateOf(r *Router) Dump {
	d := r.Dump()
	for i := range d.Interfaces {
		d.Interfaces[i].Stats = IfaceStats{}
	}
	return d
}
