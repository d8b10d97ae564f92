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

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func pair(t *testing.T) (*testNet, *testNode, *testNode) {
	tn := newNet(t)
	authority := ourCA(t)
	a := tn.add("a", authority, 1, nil)
	b := tn.add("b", authority, 2, nil)
	for _, n := range []*testNode{a, b} {
		n.handler.version = signedVersion(t, authority, 5)
	}
	return tn, a, b
}

func seqnos(packets []packet, from *testNode) []uint32 {
	var s []uint32
	for _, p := range packets {
		if p.from == from {
			s = append(s, binary.BigEndian.Uint32(p.payload))
		}
	}
	return s
}

func TestHandshakeAndAddresses(t *testing.T) {
	tn, a, b := pair(t)
	b.handler.addresses = []nodeproto.Address{
		{IP: netip.MustParseAddr("192.0.2.7"), Port: 5555, Proto: "fou"},
		{IP: netip.MustParseAddr("2001:db8::7"), Proto: "gre", Country: "FR"},
	}
	got, err := a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
	require.NoError(t, err)
	require.Equal(t, b.handler.addresses, got)
	// a had no certificate of b: hello0, then hello (2), then messages;
	// b answered hello1 and, once keyed, its version (code 0).
	require.Equal(t, []uint32{0, 2, 3}, seqnos(tn.sent(), a)[:3])
	require.Equal(t, []uint32{1, 3}, seqnos(tn.sent(), b)[:2])
	require.Equal(t, 1, a.node.Stats().Sessions)
	require.Equal(t, 1, b.node.Stats().Sessions)
	// Over the overlay, between the nodes' <subnet>::1 (where the daemon
	// listens); no underlay endpoint.
	for _, p := range tn.sent() {
		require.False(t, p.via.IsValid())
		if p.from == a {
			require.Equal(t, nodeproto.NodeAddr(b.prefix), p.dst)
		} else {
			require.Equal(t, nodeproto.NodeAddr(a.prefix), p.dst)
		}
	}
	require.Empty(t, a.node.Stats().Dropped)
	require.Empty(t, b.node.Stats().Dropped)
}

func TestSecondRequestReusesSession(t *testing.T) {
	tn, a, b := pair(t)
	b.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.7"), Port: 5555, Proto: "fou"}}
	for range 3 {
		_, err := a.node.AskAddresses(ctxTimeout(t, 5*time.Second), b.prefix)
		require.NoError(t, err)
	}
	require.Equal(t, uint64(1), a.node.Stats().Handshakes+b.node.Stats().Handshakes)
	var hellos int
	for _, p := range tn.sent() {
		if binary.BigEndian.Uint32(p.payload) <= 2 {
			hellos++
		}
	}
	require.Equal(t, 3, hellos)
}
