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

// ovpnHarness is a harness of one outgoing tunnel whose backend carries
// OpenVPN over TCP, with the preference list types, and peer 2, whose
// addresses are addrs, in the peer cache.
func ovpnHarness(t *testing.T, addrs string, types ...string) (*harness, netip.Prefix, string) {
	h := newHarness(t, 1, 10)
	h.cfg.Backend = ovpnBackend{h.backend}
	h.cfg.Types = types
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, addrs))
	return h, p2, bits2
}

// TestUnannouncedType: the peer offers FOU and OpenVPN over TCP, and its
// answers never come (a firewall drops UDP). The FOU set-up times out; the
// OpenVPN tunnel is made with no set-up exchange, to the peer's advertised
// TCP port, with the peer's bits for the client to check its certificate;
// FOU's failure is remembered (the refresh replaces the tunnel by a FOU
// one only once that failure is a refresh period old).
func TestUnannouncedType(t *testing.T) {
	h, p2, bits2 := ovpnHarness(t, "198.51.100.2,4326,fou;198.51.100.2,1194,tcp", nodeproto.ProtoFOU, nodeproto.ProtoOpenVPNTCP)
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

// TestUnannouncedOverIPv6: the peer offers OpenVPN over TCP on IPv4 and
// IPv6 (re6st's tcp and tcp6 items), and FOU on both families. FOU's IPv6
// item is never used (the data plane's underlay is IPv4); OpenVPN's IPv4
// item is tried first (the peer's order), and when no Babel hello comes
// through it (a firewall drops that family), the IPv6 one at once: the
// failure is remembered for OpenVPN over IPv4, not for the type.
func TestUnannouncedOverIPv6(t *testing.T) {
	h, p2, bits2 := ovpnHarness(t, "2001:db8::2,4326,fou;198.51.100.2,1194,tcp;2001:db8::2,1194,tcp6",
		nodeproto.ProtoOpenVPNTCP, nodeproto.ProtoFOU)
	h.babel.block(nodeproto.ProtoOpenVPNTCP, true) // over IPv4
	h.start()
	h.step(1)
	h.idle()
	info, ok := h.tunnelTo(p2)
	require.True(t, ok, "a tunnel to the peer")
	require.Equal(t, netip.MustParseAddrPort("198.51.100.2:1194"), info.Endpoint.Remote, "IPv4 first, as the peer lists it")

	h.step(5) // past the timeout: reaped, replaced at once
	h.idle()
	info, ok = h.tunnelTo(p2)
	require.True(t, ok, "a tunnel to the peer")
	require.Equal(t, nodeproto.ProtoOpenVPNTCP, info.Endpoint.Encap)
	require.Equal(t, netip.MustParseAddrPort("[2001:db8::2]:1194"), info.Endpoint.Remote, "then OpenVPN over IPv6")
	h.step(5)
	require.Equal(t, nodeproto.ProtoOpenVPNTCP, h.m.TypeOf(bits2))
	fouOverIPv6, err := nodeproto.ParseAddresses("2001:db8::2,4326,fou")
	require.NoError(t, err)
	var failed4, failed6 bool
	var candidates []nodeproto.Address
	h.m.do(func() {
		failed4 = h.m.failedRecently(bits2, pathOf(nodeproto.ProtoOpenVPNTCP, netip.MustParseAddr("198.51.100.2")), h.clock.Now())
		failed6 = h.m.failedRecently(bits2, pathOf(nodeproto.ProtoOpenVPNTCP, netip.MustParseAddr("2001:db8::2")), h.clock.Now())
		candidates = h.m.order(bits2, fouOverIPv6, h.clock.Now())
	})
	require.True(t, failed4, "OpenVPN over IPv4 failed")
	require.False(t, failed6, "OpenVPN over IPv6 worked")
	require.Empty(t, candidates, "FOU over IPv6 is never a candidate")
}
