package manager

import (
	"crypto/x509"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// deviceBackend gives each WireGuard tunnel a port of its own: 51820 + id.
type deviceBackend struct{ credBackend }

func (b deviceBackend) HasOwnPort(encap string) bool { return encap == nodeproto.ProtoWireGuard }

func (b deviceBackend) Port(id uint32) (uint16, error) { return 51820 + uint16(id), nil }

// CheckCredential: a peer's credential is good when it starts with "good".
func (b deviceBackend) CheckCredential(encap string, _ netip.Prefix, _ *x509.Certificate, c []byte) error {
	if encap == nodeproto.ProtoWireGuard && strings.HasPrefix(string(c), "good") || encap != nodeproto.ProtoWireGuard && len(c) == 0 {
		return nil
	}
	return errBadCredential
}

// TestDevicePortInReply: the server's reply to a WireGuard request gives
// its tunnel's own port, to a FOU request its FOU port.
func TestDevicePortInReply(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.cfg.Backend = deviceBackend{credBackend{h.backend}}
	h.start()
	p2, bits2 := peer(t, 2)
	via := netip.MustParseAddrPort("198.51.100.2:4326")
	r := h.m.Accept(nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via},
		nodeproto.TunnelRequest{Encap: nodeproto.ProtoWireGuard, Endpoint: via, Binding: []byte("good")})
	require.True(t, r.Accepted, r.Reason)
	info, ok := h.tunnelTo(p2)
	require.True(t, ok)
	assert.Equal(t, 51820+uint16(info.ID), r.Endpoint.Port())
	assert.Zero(t, info.Endpoint.DevicePort, "the server leaves the first handshake to the requester")

	p3, bits3 := peer(t, 3)
	via3 := netip.MustParseAddrPort("198.51.100.3:4326")
	r = h.m.Accept(nodeproto.Peer{Prefix: p3, Bits: bits3, Via: via3}, nodeproto.TunnelRequest{Encap: nodeproto.ProtoFOU, Endpoint: via3})
	require.True(t, r.Accepted, r.Reason)
	assert.Equal(t, uint16(4326), r.Endpoint.Port())
}

// TestDevicePortFromReply: the requester's WireGuard tunnel goes to the
// port the peer's reply gives, beside its FOU endpoint; a reply without a
// port gets no tunnel.
func TestDevicePortFromReply(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Backend = deviceBackend{credBackend{h.backend}}
	h.proto.binding = []byte("good")
	h.proto.endpoint = netip.MustParseAddrPort("10.0.0.2:51999")
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, wireguardOnly(2)))
	h.start()
	h.step(1)
	h.idle()
	info, ok := h.tunnelTo(p2)
	require.True(t, ok)
	assert.Equal(t, uint16(51999), info.Endpoint.DevicePort)
	assert.Equal(t, netip.MustParseAddr("198.51.100.2"), info.Endpoint.Remote.Addr())

	h2 := newHarness(t, 1, 10)
	h2.cfg.Backend = deviceBackend{credBackend{h2.backend}}
	h2.proto.binding = []byte("good")
	require.NoError(t, h2.cache.Put(bits2, wireguardOnly(2)))
	h2.start()
	h2.step(1)
	h2.idle()
	_, ok = h2.tunnelTo(p2)
	assert.False(t, ok)
	assert.Contains(t, h2.proto.calls(&h2.proto.kills), p2)
}

// TestNewCredentialReplacesTunnel: a peer that asks again with the same
// credential gets the same tunnel (a retransmission); with another one at
// once, a refusal (set-ups that crossed); with another one once the tunnel
// is settled (it restarted with a new key), a new tunnel, the old one
// removed.
func TestNewCredentialReplacesTunnel(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.cfg.Backend = deviceBackend{credBackend{h.backend}}
	h.start()
	p2, bits2 := peer(t, 2)
	via := netip.MustParseAddrPort("198.51.100.2:4326")
	from := nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}
	req := nodeproto.TunnelRequest{Encap: nodeproto.ProtoWireGuard, Endpoint: via, Binding: []byte("good-1")}
	require.True(t, h.m.Accept(from, req).Accepted)
	first, _ := h.tunnelTo(p2)
	require.True(t, h.m.Accept(from, req).Accepted)
	again, _ := h.tunnelTo(p2)
	assert.Equal(t, first.Created, again.Created, "the same tunnel")
	assert.Empty(t, h.backend.removed)

	// Another key at once: a request that crossed the tunnel's set-up (or
	// a rotation between the peer's request and its reply) is refused,
	// the tunnel kept; half a timeout later, the peer has restarted.
	req.Binding = []byte("good-2")
	r := h.m.Accept(from, req)
	assert.Contains(t, r.Reason, "exists", "too early")
	assert.Empty(t, h.backend.removed)
	h.step(3) // the first step is at once: 2 s, half the timeout
	require.True(t, h.m.Accept(from, req).Accepted)
	next, ok := h.tunnelTo(p2)
	require.True(t, ok)
	assert.Equal(t, "good-2", next.Endpoint.PeerCredential)
	assert.Equal(t, []uint32{first.ID}, h.backend.removed, "the old tunnel went")
}
