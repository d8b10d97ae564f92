package nodeproto_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// FuzzReceive gives a fresh node (b) one datagram: it must not panic, and
// unless the datagram is a well-formed handshake frame with a valid
// certificate, it is dropped, counted, and leaves no state and sends
// nothing. No single datagram can install a session key.
//
// The committed seeds (testdata/fuzz/FuzzReceive) are the frames of a real
// handshake between a and b plus some garbage; NODEPROTO_WRITE_CORPUS=1
// rewrites them.
func FuzzReceive(f *testing.F) {
	authority := ourCA(f)
	key := loadKey(f, "b")
	cert := issue(f, authority, key, prefixBits["b"], 2)
	net := network(f)
	version := signedVersion(f, authority, 5)
	a, err := nodeproto.PrefixOf(net, prefixBits["a"])
	require.NoError(f, err)
	sources := []netip.Addr{
		nodeproto.NodeAddr(a),
		netip.MustParseAddr("2001:db8:42:3::1"),
		netip.MustParseAddr("2001:db8:43::1"),
		netip.MustParseAddr("2001:db8:42:2::1"), // b itself
		netip.MustParseAddr("192.0.2.1"),
	}
	fresh := func(t testing.TB) (*nodeproto.Node, *int) {
		sent := new(int)
		node, err := nodeproto.New(nodeproto.Config{
			Identity: nodeproto.Identity{CA: authority.Cert, Cert: cert, Key: key},
			Network:  net,
			Send:     func(netip.Addr, netip.AddrPort, []byte) error { *sent++; return nil },
			Handler:  &handler{version: version},
			Now:      func() time.Time { return testNow },
			Logger:   zerolog.Nop(),
		})
		require.NoError(t, err)
		return node, sent
	}

	seeds := handshakeFrames(f)
	seeds = append(seeds, nil, []byte{0, 0, 0, 0}, []byte{0, 0, 0, 1, 0x2a}, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	if os.Getenv("NODEPROTO_WRITE_CORPUS") == "1" {
		writeCorpus(f, seeds)
	}
	for i, seed := range seeds {
		f.Add(byte(i%2), i%3 == 0, seed)
	}

	f.Fuzz(func(t *testing.T, source byte, direct bool, payload []byte) {
		node, sent := fresh(t)
		via := netip.AddrPort{}
		if direct {
			via = netip.MustParseAddrPort("198.51.100.9:4000")
		}
		empty := node.State()
		node.Receive(sources[int(source)%len(sources)], via, payload)
		stats := node.Stats()
		require.Equal(t, uint64(1), stats.Received)
		require.Zero(t, stats.Accepted)
		require.Zero(t, stats.Sessions)
		var dropped uint64
		for _, n := range stats.Dropped {
			dropped += n
		}
		if dropped > 0 {
			require.Equal(t, uint64(1), dropped)
			require.Equal(t, empty, node.State())
			require.Zero(t, *sent)
		} else {
			require.Equal(t, 1, *sent) // a handshake answer
		}
	})
}

// handshakeFrames returns what a sends b while they set up a session and
// exchange a few messages.
func handshakeFrames(t testing.TB) [][]byte {
	tn := newNet(t)
	authority := ourCA(t)
	a := tn.add("a", authority, 1, nil)
	b := tn.add("b", authority, 2, nil)
	for _, n := range []*testNode{a, b} {
		n.handler.version = signedVersion(t, authority, 5)
		n.handler.addresses = []nodeproto.Address{{IP: netip.MustParseAddr("192.0.2.1"), Port: 326, Proto: "fou"}}
	}
	ctx, cancel := contextTimeout(5 * time.Second)
	defer cancel()
	_, err := a.node.AskAddresses(ctx, b.prefix)
	require.NoError(t, err)
	_, err = a.node.SetupTunnel(ctx, b.prefix, netip.AddrPort{}, nodeproto.TunnelRequest{Encap: "fou", Endpoint: netip.MustParseAddrPort("192.0.2.1:5555")})
	require.NoError(t, err)
	var frames [][]byte
	for _, p := range tn.sent() {
		if p.from == a {
			frames = append(frames, p.payload)
		}
	}
	return frames
}

func writeCorpus(t testing.TB, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReceive")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, seed := range seeds {
		content := fmt.Sprintf("go test fuzz v1\nbyte(%q)\nbool(%v)\n[]byte(%q)\n", byte(i%2), i%3 == 0, seed)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644))
	}
}
