package manager

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// ovpnBackend is the fake backend that also carries an unannounced type,
// as the node's OpenVPN.
type ovpnBackend struct{ *fakeBackend }

func (b ovpnBackend) Carries(encap string) bool {
	return encap == nodeproto.ProtoOpenVPNTCP || b.fakeBackend.Carries(encap)
}

func (b ovpnBackend) Unannounced(encap string) bool { return encap == nodeproto.ProtoOpenVPNTCP }

// TestUnannouncedType: the peer offers FOU and OpenVPN over TCP, and its
// answers never come (a firewall drops UDP). The FOU set-up times out; the
// OpenVPN tunnel is made with no set-up exchange, to the peer's advertised
// TCP port, with the peer's bits for the client to check its certificate;
// FOU's failure is remembered (the refresh replaces the tunnel by a FOU
// one only once that failure is a refresh period old).
func TestUnannouncedType(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Backend = ovpnBackend{h.backend}
	h.cfg.Types = []string{nodeproto.ProtoFOU, nodeproto.ProtoOpenVPNTCP}
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, "198.51.100.2,4326,fou;198.51.100.2,1194,tcp"))
	h.proto.silent[p2] = true
	h.start()
	h.step(1)
	h.idle()
	info, ok := h.tunnelTo(p2)
	require.True(t, ok, "a tunnel to the peer")
	require.Equal(t, nodeproto.ProtoOpenVPNTCP, info.Endpoint.Encap)
	require.Equal(t, netip.MustParseAddrPort("198.51.100.2:1194"), info.Endpoint.Remote)
	require.Equal(t, bits2, info.Endpoint.PeerBits)
	h.proto.mu.Lock()
	for _, req := range h.proto.requests {
		require.Equal(t, nodeproto.ProtoFOU, req.Encap, "no set-up request for OpenVPN")
	}
	h.proto.mu.Unlock()

	var failed bool
	h.m.do(func() { failed = h.m.failedRecently(bits2, nodeproto.ProtoFOU, h.clock.Now()) })
	require.True(t, failed, "FOU's unanswered set-up is remembered")
}

// A set-up request for an unannounced type is refused: its tunnels are made
// by connecting to the server, never requested.
func TestUnannouncedTypeNotRequested(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.cfg.Backend = ovpnBackend{h.backend}
	h.start()
	p2, _ := peer(t, 2)
	reply := h.m.Accept(nodeproto.Peer{Prefix: p2, Via: netip.MustParseAddrPort("198.51.100.2:4326")},
		nodeproto.TunnelRequest{Encap: nodeproto.ProtoOpenVPNTCP, Endpoint: netip.MustParseAddrPort("198.51.100.2:4326")})
	require.False(t, reply.Accepted)
	require.Empty(t, h.m.Tunnels())
}
