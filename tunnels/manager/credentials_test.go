package manager

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// credBackend carries WireGuard besides FOU and GRE: its tunnels take a
// credential, ours "ours"; a peer's is good when it is "good".
type credBackend struct{ *fakeBackend }

func (b credBackend) Carries(encap string) bool {
	return encap == nodeproto.ProtoWireGuard || b.fakeBackend.Carries(encap)
}

func (b credBackend) Credential(encap string) ([]byte, error) {
	if encap == nodeproto.ProtoWireGuard {
		return []byte("ours"), nil
	}
	return nil, nil
}

var errBadCredential = errors.New("not signed by the peer's certificate")

func (b credBackend) CheckCredential(encap string, _ netip.Prefix, _ *x509.Certificate, c []byte) error {
	switch {
	case encap != nodeproto.ProtoWireGuard && len(c) == 0:
		return nil
	case encap == nodeproto.ProtoWireGuard && string(c) == "good":
		return nil
	}
	return errBadCredential
}

func wireguardOnly(i int) string { return fmt.Sprintf("198.51.100.%d,51820,wireguard", i) }

// TestCredentialsExchanged: a WireGuard set-up sends our credential and
// keeps the peer's, which the backend gets; a peer whose credential does
// not verify gets no tunnel, and is told to drop its side.
func TestCredentialsExchanged(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Backend = credBackend{h.backend}
	h.proto.binding = []byte("good")
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, wireguardOnly(2)))
	h.start()
	h.step(1)
	h.idle()
	info, ok := h.tunnelTo(p2)
	require.True(t, ok)
	assert.Equal(t, "good", info.Endpoint.PeerCredential)
	eps, _ := h.backend.List()
	assert.Equal(t, "good", eps[info.ID].PeerCredential, "the backend got the peer's credential")
	h.proto.mu.Lock()
	defer h.proto.mu.Unlock()
	require.Len(t, h.proto.requests, 1)
	assert.Equal(t, []byte("ours"), h.proto.requests[0].Binding)
}

func TestCredentialRefused(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Backend = credBackend{h.backend}
	h.proto.binding = []byte("forged")
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, wireguardOnly(2)))
	h.start()
	h.step(1)
	h.idle()
	_, ok := h.tunnelTo(p2)
	assert.False(t, ok)
	assert.Contains(t, h.proto.calls(&h.proto.kills), p2)
}

// TestAcceptChecksCredential: an incoming WireGuard request is accepted
// only with a good credential, and answered with ours; a FOU request
// carries none.
func TestAcceptChecksCredential(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.cfg.Backend = credBackend{h.backend}
	h.start()
	p2, bits2 := peer(t, 2)
	via := netip.MustParseAddrPort("198.51.100.2:51820")
	from := nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}
	r := h.m.Accept(from, nodeproto.TunnelRequest{Encap: nodeproto.ProtoWireGuard, Endpoint: via, Binding: []byte("forged")})
	assert.False(t, r.Accepted)
	assert.Contains(t, r.Reason, errBadCredential.Error())
	r = h.m.Accept(from, nodeproto.TunnelRequest{Encap: nodeproto.ProtoWireGuard, Endpoint: via, Binding: []byte("good")})
	require.True(t, r.Accepted, r.Reason)
	assert.Equal(t, []byte("ours"), r.Binding)
	info, _ := h.tunnelTo(p2)
	assert.Equal(t, "good", info.Endpoint.PeerCredential)

	// Without credentials in the backend, a request carrying one is refused.
	h2 := newHarness(t, 0, 10)
	h2.start()
	r = h2.m.Accept(from, nodeproto.TunnelRequest{Encap: "fou", Endpoint: via, Binding: []byte("x")})
	assert.False(t, r.Accepted)
	assert.Contains(t, r.Reason, errUnexpectedCredential.Error())
}
