package nodeproto_test

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

func TestCertificateFromAnotherCA(t *testing.T) {
	tn := newNet(t)
	authority := ourCA(t)
	a := tn.add("a", authority, 1, nil)
	rogue := tn.add("c", rogueCA(t), 3, nil) // same network, CA key not ours
	a.handler.version = signedVersion(t, authority, 5)
	a.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.1"), Port: 326, Proto: "fou"}}
	_, err := rogue.node.AskAddresses(ctxTimeout(t, 300*time.Millisecond), a.prefix)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	stats := a.node.Stats()
	require.GreaterOrEqual(t, stats.Dropped[nodeproto.DropWrongCA], uint64(2)) // hello0 retransmitted
	require.Zero(t, stats.Sent)
	require.Zero(t, stats.Sessions)
	require.Equal(t, "map[] map[] 0", a.node.State())
	// Nor does a accept the rogue node's answer when a asks it.
	_, err = a.node.AskAddresses(ctxTimeout(t, 300*time.Millisecond), rogue.prefix)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Positive(t, a.node.Stats().Dropped[nodeproto.DropWrongCA]-stats.Dropped[nodeproto.DropWrongCA])
	require.Zero(t, a.node.Stats().Sessions)
}

func TestRevokedCertificate(t *testing.T) {
	tn, a, b := pair(t)
	c := tn.add("c", ourCA(t), 3, nil)
	tn.revoked.Store(uint64(3), true)
	_, err := c.node.AskAddresses(ctxTimeout(t, 300*time.Millisecond), a.prefix)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Positive(t, a.node.Stats().Dropped[nodeproto.DropRevoked])
	require.Zero(t, a.node.Stats().Sent)

	// b is revoked while its session with a is open: its next message is
	// dropped, the session forgotten, and the tunnel request never seen.
	b.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.2"), Port: 326, Proto: "fou"}}
	_, err = a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
	require.Equal(t, 1, a.node.Stats().Sessions)
	tn.revoked.Store(uint64(2), true)
	_, err = b.node.SetupTunnel(ctxTimeout(t, 300*time.Millisecond), a.prefix, netip.AddrPort{}, nodeproto.TunnelRequest{Encap: "gre"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	a.handler.get(func(h *handler) { require.Empty(t, h.setups) })
	require.Zero(t, a.node.Stats().Sessions)
	require.GreaterOrEqual(t, a.node.Stats().Dropped[nodeproto.DropRevoked], uint64(2))
}

// established opens a session from a to b and returns the packets sent.
func established(t *testing.T, tn *testNet, a, b *testNode) []packet {
	b.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.2"), Port: 326, Proto: "fou"}}
	_, err := a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.queued.Load() == 0 && a.queued.Load() == 0 }, time.Second, time.Millisecond,
		"every packet received")
	return tn.sent()
}

func lastFrom(packets []packet, n *testNode, seq func(uint32) bool) []byte {
	var last []byte
	for _, p := range packets {
		if p.from == n && seq(binary.BigEndian.Uint32(p.payload)) {
			last = p.payload
		}
	}
	return last
}

func TestReplayedAndForgedMessagesAreDropped(t *testing.T) {
	tn, a, b := pair(t)
	packets := established(t, tn, a, b)
	src := nodeproto.NodeAddr(a.prefix)
	message := lastFrom(packets, a, func(s uint32) bool { return s >= 3 })
	hello := lastFrom(packets, a, func(s uint32) bool { return s == 2 })
	require.NotNil(t, message)
	require.NotNil(t, hello)
	before := b.node.State()
	stats := b.node.Stats()

	b.node.Receive(src, netip.AddrPort{}, message)
	forged := append([]byte(nil), message...)
	forged[len(forged)-1] ^= 1
	b.node.Receive(src, netip.AddrPort{}, forged)
	// A higher seqno does not help without the key.
	forged = append([]byte(nil), message...)
	binary.BigEndian.PutUint32(forged, 1000)
	b.node.Receive(src, netip.AddrPort{}, forged)
	// A replayed hello carries an old secret.
	b.node.Receive(src, netip.AddrPort{}, hello)
	// The same message from another node's address has no session there.
	b.node.Receive(nodeproto.NodeAddr(netip.MustParsePrefix("2001:db8:42:3::/64")), netip.AddrPort{}, message)

	after := b.node.Stats()
	require.Equal(t, stats.Dropped[nodeproto.DropReplay]+1, after.Dropped[nodeproto.DropReplay])
	require.Equal(t, stats.Dropped[nodeproto.DropBadMAC]+2, after.Dropped[nodeproto.DropBadMAC])
	require.Equal(t, stats.Dropped[nodeproto.DropStaleSecret]+1, after.Dropped[nodeproto.DropStaleSecret])
	require.Equal(t, stats.Dropped[nodeproto.DropNoSession]+1, after.Dropped[nodeproto.DropNoSession])
	require.Equal(t, stats.Accepted, after.Accepted)
	require.Equal(t, stats.Sent, after.Sent)
	require.Equal(t, before, b.node.State())
	// The session still works.
	_, err := a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
}

func TestForeignCertificateFromWrongAddress(t *testing.T) {
	tn, a, b := pair(t)
	packets := established(t, tn, a, b)
	hello0 := lastFrom(packets, a, func(s uint32) bool { return s == 0 })
	require.NotNil(t, hello0)
	before := b.node.State()
	// a's certificate from an address of prefix 3.
	b.node.Receive(nodeproto.NodeAddr(netip.MustParsePrefix("2001:db8:42:3::/64")), netip.AddrPort{}, hello0)
	require.Equal(t, uint64(1), b.node.Stats().Dropped[nodeproto.DropPrefixMismatch])
	require.Equal(t, before, b.node.State())
}

func TestUnansweredSessionHandshakesAgain(t *testing.T) {
	tn, a, b := pair(t)
	established(t, tn, a, b)
	require.Equal(t, uint64(1), a.node.Stats().Handshakes+b.node.Stats().Handshakes)
	// b goes silent: a's request stays unanswered.
	tn.setFilter(func(p *packet) bool { return p.from != b })
	_, err := a.node.AskAddresses(ctxTimeout(t, 150*time.Millisecond), b.prefix)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	tn.setFilter(nil)
	a.advance(59 * time.Second)
	sent := len(tn.sent())
	_, err = a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
	require.Greater(t, seqOf(tn.sent()[sent]), uint32(2), "still within 60 s: no handshake")
	require.Equal(t, uint64(1), a.node.Stats().Handshakes+b.node.Stats().Handshakes)

	tn.setFilter(func(p *packet) bool { return p.from != b })
	_, err = a.node.AskAddresses(ctxTimeout(t, 150*time.Millisecond), b.prefix)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	tn.setFilter(nil)
	a.advance(61 * time.Second)
	sent = len(tn.sent())
	_, err = a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
	// a has b's certificate: hello1, then b's hello (new secret).
	require.Equal(t, uint32(1), seqOf(tn.sent()[sent]))
	require.Equal(t, uint64(2), a.node.Stats().Handshakes+b.node.Stats().Handshakes)
}

func seqOf(p packet) uint32 { return binary.BigEndian.Uint32(p.payload) }

func TestGarbageIsCounted(t *testing.T) {
	_, a, b := pair(t)
	src := nodeproto.NodeAddr(b.prefix)
	cases := map[nodeproto.Reason][][]byte{
		nodeproto.DropShort:       {nil, {0, 0, 0, 3}, {0, 0, 0, 1, 0xff}, {0, 0, 0, 9, 1, 2, 3}},
		nodeproto.DropBadCert:     {{0, 0, 0, 0, 0x30, 0x82}},
		nodeproto.DropOldProtocol: {{0, 0, 0, 2, 9, 1, 2}},
		nodeproto.DropNoSession:   {append([]byte{0, 0, 0, 2, 10}, make([]byte, 600)...), append([]byte{0, 0, 0, 5}, make([]byte, 100)...)},
	}
	for reason, payloads := range cases {
		for _, payload := range payloads {
			before := a.node.Stats().Dropped[reason]
			a.node.Receive(src, netip.AddrPort{}, payload)
			require.Equal(t, before+1, a.node.Stats().Dropped[reason], "%s: %x", reason, payload)
		}
	}
	require.Equal(t, "map[] map[] 0", a.node.State())
}
