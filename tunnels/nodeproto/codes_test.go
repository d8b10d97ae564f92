package nodeproto_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/relay"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

func TestVersionGossip(t *testing.T) {
	_, a, b := pair(t)
	authority := ourCA(t)
	v7 := signedVersion(t, authority, 7)
	b.handler.set(func(h *handler) { h.version = v7 })
	// a (version 5) gossips: b answers with its newer version, which a
	// is told about; b is not.
	a.node.Gossip(b.prefix)
	require.Eventually(t, func() bool {
		var n int
		a.handler.get(func(h *handler) { n = len(h.newer) })
		return n > 0
	}, 5*time.Second, 5*time.Millisecond)
	a.handler.get(func(h *handler) { require.Equal(t, v7, h.newer[0]) })
	b.handler.get(func(h *handler) { require.Empty(t, h.newer) })

	// Now b gossips version 9 on the open session: a is told.
	v9 := signedVersion(t, authority, 9)
	b.handler.set(func(h *handler) { h.version = v9 })
	b.node.Gossip(a.prefix)
	require.Eventually(t, func() bool {
		var last []byte
		a.handler.get(func(h *handler) { last = h.newer[len(h.newer)-1] })
		return string(last) == string(v9)
	}, 5*time.Second, 5*time.Millisecond)

	// A version not signed by the CA is dropped.
	forged := signedVersion(t, rogueCA(t), 20)
	b.handler.set(func(h *handler) { h.version = forged })
	b.node.Gossip(a.prefix)
	require.Eventually(t, func() bool { return a.node.Stats().Dropped[nodeproto.DropBadPayload] == 1 }, 5*time.Second, 5*time.Millisecond)
	a.handler.get(func(h *handler) { require.NotContains(t, h.newer, forged) })
}

func TestTunnelSetupDirectSeesNAT(t *testing.T) {
	tn, a, b := pair(t)
	b.handler.reply = nodeproto.TunnelReply{Accepted: true, Endpoint: netip.MustParseAddrPort("203.0.113.2:5555"), Key: 77, Reason: "welcome"}
	// a believes it is at 10.0.0.1:5555 (behind a NAT); b sees a.public.
	req := nodeproto.TunnelRequest{Encap: "gre", Endpoint: netip.MustParseAddrPort("10.0.0.1:5555"), Key: 42}
	bEndpoint := netip.MustParseAddrPort("203.0.113.2:5555")
	reply, err := a.node.SetupTunnel(ctxTimeout(t, 5*time.Second), b.prefix, bEndpoint, req)
	require.NoError(t, err)
	require.Equal(t, nodeproto.TunnelReply{Accepted: true, Reason: "welcome", Endpoint: bEndpoint, Key: 77, Observed: a.public}, reply)
	b.handler.get(func(h *handler) {
		require.Equal(t, []nodeproto.TunnelRequest{req}, h.setups)
		require.Equal(t, []netip.AddrPort{a.public}, h.setupVia)
	})
	// Everything, handshake included, went directly: a's requests to b's
	// endpoint, its answers to where b's frames came from (b's own NAT
	// mapping in this net), b's frames back to a's NAT mapping.
	for _, p := range tn.sent() {
		if p.from == a {
			require.Contains(t, []netip.AddrPort{bEndpoint, b.public}, p.via)
		} else {
			require.Equal(t, a.public, p.via)
		}
	}
	// Over the overlay nothing is observed.
	reply, err = a.node.SetupTunnel(ctxTimeout(t, 5*time.Second), b.prefix, netip.AddrPort{}, req)
	require.NoError(t, err)
	require.False(t, reply.Observed.IsValid())
}

func TestTunnelSetupRetransmissionAnsweredOnce(t *testing.T) {
	tn, a, b := pair(t)
	b.handler.reply = nodeproto.TunnelReply{Reason: "full"}
	// Lose b's first tunnel reply: a retransmits, b answers from memory.
	lost := false
	tn.setFilter(func(p *packet) bool {
		if p.from == b && !lost && len(p.payload) > 4+32 && binary.BigEndian.Uint32(p.payload) > 3 {
			lost = true
			return false
		}
		return true
	})
	reply, err := a.node.SetupTunnel(ctxTimeout(t, 5*time.Second), b.prefix, netip.AddrPort{}, nodeproto.TunnelRequest{Encap: "fou", Endpoint: netip.MustParseAddrPort("[2001:db8::1]:5555")})
	require.NoError(t, err)
	require.True(t, lost)
	require.Equal(t, nodeproto.TunnelReply{Reason: "full"}, reply)
	b.handler.get(func(h *handler) { require.Len(t, h.setups, 1) })

	_, err = a.node.SetupTunnel(ctxTimeout(t, time.Second), b.prefix, netip.AddrPort{}, nodeproto.TunnelRequest{Encap: "ipip"})
	require.Error(t, err)
}

func TestKillTunnelWaitsUntilReady(t *testing.T) {
	_, a, b := pair(t)
	done := make(chan error, 1)
	go func() { done <- a.node.KillTunnel(ctxTimeout(t, 5*time.Second), b.prefix) }()
	require.Eventually(t, func() bool {
		var kills int
		b.handler.get(func(h *handler) { kills = h.kills })
		return kills >= 2 // asked again while not ready
	}, 5*time.Second, 5*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("KillTunnel returned before the peer was ready: %v", err)
	default:
	}
	b.handler.set(func(h *handler) { h.ready = true })
	require.NoError(t, <-done)

	err := a.node.KillTunnel(ctxTimeout(t, 5*time.Second), a.prefix)
	require.Error(t, err, "not a peer: ourselves")
}

func TestTopologyOnlyForRegistry(t *testing.T) {
	tn := newNet(t)
	authority := ourCA(t)
	registryPrefix := netip.Prefix{}
	a := tn.add("a", authority, 1, nil)
	b := tn.add("b", authority, 2, func(cfg *nodeproto.Config) {
		cfg.IsRegistry = func(p netip.Prefix) bool { return p == registryPrefix }
	})
	c := tn.add("c", authority, 3, nil)
	for _, n := range []*testNode{a, b, c} {
		n.handler.version = signedVersion(t, authority, 5)
		n.handler.topology = "1 " + n.name
	}
	registryPrefix = c.prefix
	conn := serveRelay(t, a)
	r := &relay.Relay{Address: conn, Timeout: time.Second}
	bits := func(n *testNode) string { return prefixBits[n.name] }
	// Through a's relay: a answers itself, c answers anyone, b only its
	// registry (c), so not a.
	answers, err := r.Query(context.Background(), []string{bits(a), bits(b), bits(c)}, relay.CodeTopology)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{bits(a): []byte("1 a"), bits(c): []byte("1 c")}, answers)
}

// serveRelay runs ServeRelay for n on a loopback socket and returns its
// address.
func serveRelay(t *testing.T, n *testNode) string {
	conn, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		conn, err = net.ListenPacket("udp", "127.0.0.1:0")
	}
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- n.node.ServeRelay(conn) }()
	t.Cleanup(func() {
		conn.Close()
		require.NoError(t, <-served)
	})
	return conn.LocalAddr().String()
}

func TestRelayRoundTrip(t *testing.T) {
	_, a, b := pair(t)
	b.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.9"), Port: 326, Proto: "fou"}}
	a.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.8"), Port: 326, Proto: "fou"}}
	r := &relay.Relay{Address: serveRelay(t, a), Timeout: time.Second}
	bitsA, bitsB := prefixBits["a"], prefixBits["b"]
	missing := "0000000000001111" // nobody: no answer, not an error
	answers, err := r.Query(context.Background(), []string{bitsA, bitsB, missing}, relay.CodeAddress)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{bitsA: []byte("192.0.2.8,326,fou"), bitsB: []byte("192.0.2.9,326,fou")}, answers)
	answers, err = r.Query(context.Background(), []string{bitsB}, relay.CodeVersion)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{bitsB: []byte(client.UserAgent)}, answers)
	// The relayed request carried the relay flag and did not disturb a's
	// own requests.
	got, err := a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
	require.Equal(t, b.handler.addresses, got)
	require.GreaterOrEqual(t, a.node.Stats().Relayed, uint64(4))
}

func TestQueryWithoutAnswerIsAcknowledged(t *testing.T) {
	tn, a, b := pair(t)
	_, err := a.node.AskAddresses(ctxTimeout(t, 200*time.Millisecond), b.prefix) // b has none: only acknowledged
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1, a.node.Stats().Sessions)
	sealed := tn.sent()
	// b's last frame is the empty acknowledgement: seqno and MAC only.
	var last packet
	for _, p := range sealed {
		if p.from == b {
			last = p
		}
	}
	require.Len(t, last.payload, 4+32)
}

func TestStatsJSON(t *testing.T) {
	_, a, _ := pair(t)
	a.node.Receive(netip.MustParseAddr("2001:db8:ffff::1"), netip.AddrPort{}, []byte("hello"))
	a.node.Receive(nodeproto.NodeAddr(a.prefix), netip.AddrPort{}, []byte("hello"))
	out, err := json.Marshal(a.node.Stats())
	require.NoError(t, err)
	require.JSONEq(t, `{"received":2,"accepted":0,"relayed":0,"sent":0,"send_errors":0,"handshakes":0,"dropped":{"bad_source":2},"sessions":0}`, string(out))
}

func TestTextAndUnknownCodesAreAcknowledged(t *testing.T) {
	tn, a, b := pair(t)
	established(t, tn, a, b)
	for _, payload := range [][]byte{
		append([]byte{nodeproto.CodeText}, "hello registry"...),
		{6, 1, 2},
		{nodeproto.CodeVersion | nodeproto.RelayFlag},
		{nodeproto.CodeKill | nodeproto.RelayFlag},
	} {
		sent := len(tn.sent())
		a.node.SendPayload(b.prefix, payload)
		require.Eventually(t, func() bool { return len(tn.sent()) == sent+2 }, 5*time.Second, time.Millisecond)
		ack := tn.sent()[sent+1]
		require.Equal(t, b, ack.from)
		require.Len(t, ack.payload, 4+32, "acknowledgement")
	}
	require.Equal(t, uint64(3), b.node.Stats().Dropped[nodeproto.DropUnknownCode])
	b.handler.get(func(h *handler) { require.Zero(t, h.kills) })
}

func TestHello1WithOldFingerprintGetsHello1(t *testing.T) {
	tn, a, b := pair(t)
	frame := []byte{0, 0, 0, 1, 10}
	frame = append(frame, make([]byte, 32)...) // not b's certificate
	frame = append(frame, a.cert.Raw...)
	b.node.Receive(nodeproto.NodeAddr(a.prefix), netip.AddrPort{}, frame)
	require.Eventually(t, func() bool { return len(tn.sent()) > 0 }, 5*time.Second, time.Millisecond)
	answer := tn.sent()[0]
	require.Equal(t, b, answer.from)
	require.Equal(t, uint32(1), seqOf(answer))
	// Answered once per Retry/2 only.
	b.node.Receive(nodeproto.NodeAddr(a.prefix), netip.AddrPort{}, frame)
	require.Equal(t, uint64(1), b.node.Stats().Dropped[nodeproto.DropRateLimited])
}
