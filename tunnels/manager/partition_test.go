package manager

import (
	"net/netip"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPartitionRejoin: Babel knows other nodes but not the registry's, so
// this part of the overlay is cut from the registry's: the node asks the
// registry for a bootstrap peer besides extending its mesh, and stops
// asking once Babel routes to the registry's node again.
func TestPartitionRejoin(t *testing.T) {
	h := newHarness(t, 3, 10)
	p2, _ := peer(t, 2)
	p7, bits7 := peer(t, 7)
	p9, bits9 := peer(t, 9)
	_, registryBits := peer(t, 5)
	h.cfg.RegistryBits = func() string { return registryBits }
	h.reg.bits, h.reg.addrs = bits7, addressOf(7)
	h.start()
	reply := h.m.Accept(nodeproto.Peer{Prefix: p9, Bits: bits9, Via: netip.MustParseAddrPort("198.51.100.9:4326")},
		nodeproto.TunnelRequest{Encap: "fou", Endpoint: netip.MustParseAddrPort("198.51.100.9:4326")})
	require.True(t, reply.Accepted, reply.Reason)
	in, _ := h.tunnelTo(p9)
	h.proto.addresses[p2] = []nodeproto.Address{{IP: netip.MustParseAddr("198.51.100.2"), Port: 4326, Proto: "fou"}}
	h.babel.setRoutes(Route{Prefix: p9, Interface: in.Interface()}, Route{Prefix: p2, Interface: in.Interface(), Refmetric: 256})
	h.step(5)
	h.idle()
	assert.Equal(t, 1, h.reg.asked, "no route to the registry's node: ask it")
	assert.ElementsMatch(t, []netip.Prefix{p2, p7}, h.outgoing(), "the registry's peer and the mesh")

	// Routed to the registry's node again: no more asking.
	p5, _ := peer(t, 5)
	h.babel.setRoutes(Route{Prefix: p9, Interface: in.Interface()}, Route{Prefix: p5, Interface: in.Interface(), Refmetric: 256})
	h.proto.addresses[p5] = []nodeproto.Address{{IP: netip.MustParseAddr("198.51.100.5"), Port: 4326, Proto: "fou"}}
	h.step(5)
	h.idle()
	assert.Equal(t, 1, h.reg.asked)
}
