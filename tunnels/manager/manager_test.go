package manager

import (
	"sync/atomic"
	"time"

	"errors"
	"net/netip"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBootstrapFromCache: nobody reaches us yet, so the node makes at
// most 2 outgoing tunnels (re6st's NAT cap), to cached peers, and tells
// each peer our network version.
func TestBootstrapFromCache(t *testing.T) {
	h := newHarness(t, 5, 10)
	h.startWith(2, 3, 4)
	require.Len(t, h.outgoing(), 2)
	assert.Equal(t, 2, h.backend.count())
	assert.Len(t, h.babel.attached, 2)
	assert.ElementsMatch(t, h.outgoing(), h.proto.calls(&h.proto.gossiped))
	assert.Zero(t, h.reg.asked, "the cache had peers")
	for _, i := range h.m.Tunnels() {
		assert.Equal(t, Endpoint{Encap: "fou", Local: netip.MustParseAddr("192.0.2.1"),
			Remote: i.Endpoint.Remote}, i.Endpoint)
		assert.Equal(t, uint16(4326), i.Endpoint.Remote.Port())
	}

	// Once a peer has set a tunnel up to us, the full client count applies.
	p9, bits9 := peer(t, 9)
	reply := h.m.Accept(nodeproto.Peer{Prefix: p9, Bits: bits9, Via: netip.MustParseAddrPort("198.51.100.9:4326")},
		nodeproto.TunnelRequest{Encap: "fou", Endpoint: netip.MustParseAddrPort("198.51.100.9:4326")})
	require.True(t, reply.Accepted, reply.Reason)
	h.cachePeers(5, 6, 7)
	h.step(5)
	h.idle()
	assert.Len(t, h.outgoing(), 5)
}

// TestBootstrapFromRegistry: with an empty cache the registry gives a
// peer, which goes into the cache.
func TestBootstrapFromRegistry(t *testing.T) {
	h := newHarness(t, 1, 10)
	p2, bits2 := peer(t, 2)
	h.reg.bits, h.reg.addrs = bits2, addressOf(2)
	h.start()
	h.step(1)
	h.idle()
	assert.Equal(t, []netip.Prefix{p2}, h.outgoing())
	_, cached := h.cache.Get(bits2)
	assert.True(t, cached)
}

// TestBootstrapRetriesFailedPeers: peers that failed before are tried
// again when neither the cache's untried peers nor the registry help.
func TestBootstrapRetriesFailedPeers(t *testing.T) {
	h := newHarness(t, 1, 10)
	p2, bits2 := peer(t, 2)
	h.cachePeers(2)
	h.cache.MarkTried(bits2)
	h.start()
	h.step(1)
	h.idle()
	assert.Equal(t, []netip.Prefix{p2}, h.outgoing())
	assert.Equal(t, 1, h.reg.asked)
}

// TestExtendMesh: peers Babel routes to through a tunnel are distant; the
// node asks them their addresses over the overlay and tunnels to them,
// --neighbour peers first.
func TestExtendMesh(t *testing.T) {
	h := newHarness(t, 3, 10)
	p2, bits2 := peer(t, 2)
	p3, _ := peer(t, 3)
	p4, bits4 := peer(t, 4)
	p9, bits9 := peer(t, 9)
	h.cfg.Neighbours = []string{wire.CommonName(bits4)}
	h.start()
	// A peer reached us: the full client count applies, one tunnel exists.
	reply := h.m.Accept(nodeproto.Peer{Prefix: p9, Bits: bits9, Via: netip.MustParseAddrPort("198.51.100.9:4326")},
		nodeproto.TunnelRequest{Encap: "fou", Endpoint: netip.MustParseAddrPort("198.51.100.9:4326")})
	require.True(t, reply.Accepted, reply.Reason)
	in, _ := h.tunnelTo(p9)
	for _, p := range []netip.Prefix{p2, p3, p4} {
		h.proto.addresses[p] = []nodeproto.Address{{IP: netip.MustParseAddr("198.51.100.20"), Port: 4326, Proto: "fou"}}
	}
	h.babel.setRoutes(
		Route{Prefix: p9, Interface: in.Interface()},
		Route{Prefix: p2, Interface: in.Interface(), Refmetric: 256},
		Route{Prefix: p3, Interface: in.Interface(), Refmetric: 256},
		Route{Prefix: p4, Interface: in.Interface(), Refmetric: 256},
		Route{Prefix: netip.MustParsePrefix("::/0"), Source: network, Interface: in.Interface()},
	)
	h.params.set(func(p *fakeParams) { p.clientCount = 1 })
	h.step(1)
	h.idle()
	assert.Equal(t, []netip.Prefix{p4}, h.outgoing(), "the --neighbour peer first")
	_, cached := h.cache.Get(bits4)
	assert.True(t, cached, "the addresses it gave are cached")

	// The client count is read at each tick.
	h.params.set(func(p *fakeParams) { p.clientCount = 3 })
	h.step(5)
	h.idle()
	assert.ElementsMatch(t, []netip.Prefix{p2, p3, p4}, h.outgoing())
	_, cached = h.cache.Get(bits2)
	assert.True(t, cached)
}

// TestRefreshReplacesLeastUseful: at the limit, each refresh period the
// outgoing tunnel that routes nothing is drained (cost raised, the peer
// asked), removed, and replaced by one to a distant peer Babel knows.
// busyAndIdle starts a manager with tunnels to peers 2 and 3: t2 carries
// p2 and p7 (a distant peer), t3 routes nothing.
func busyAndIdle(t *testing.T) (h *harness, p2, p3, p7 netip.Prefix, t2, t3 Info) {
	h = newHarness(t, 2, 10)
	h.startWith(2, 3)
	require.Len(t, h.outgoing(), 2)
	p2, _ = peer(t, 2)
	p3, _ = peer(t, 3)
	p7, _ = peer(t, 7)
	t2, _ = h.tunnelTo(p2)
	t3, _ = h.tunnelTo(p3)
	h.babel.setRoutes(Route{Prefix: p2, Interface: t2.Interface()},
		Route{Prefix: p7, Interface: t2.Interface(), Refmetric: 256})
	return h, p2, p3, p7, t2, t3
}

func TestRefreshReplacesLeastUseful(t *testing.T) {
	// t2 carries p2 and another prefix, t3 routes nothing: t3 goes.
	h, _, p3, p7, _, t3 := busyAndIdle(t)
	h.proto.addresses[p7] = []nodeproto.Address{{IP: netip.MustParseAddr("198.51.100.7"), Port: 4326, Proto: "fou"}}
	h.step(19)
	assert.Empty(t, h.proto.calls(&h.proto.kills), "not before the refresh period")
	h.step(1) // 20 s
	assert.True(t, h.babel.isDraining(t3.Interface()))
	h.step(1)
	h.until(func() bool { _, ok := h.tunnelTo(p3); return !ok }, "drained tunnel removed")
	assert.Equal(t, []netip.Prefix{p3}, h.proto.calls(&h.proto.kills))
	assert.Contains(t, h.backend.removed, t3.ID)
	h.step(5)
	h.idle()
	_, replaced := h.tunnelTo(p7)
	assert.True(t, replaced, "replaced by a distant peer")
}

// TestRefreshDropsLANPeer: a tunnel to a peer that is also a Babel
// neighbour on a LAN is redundant: the refresh replaces it first, although
// it routes more than the other tunnel, and no new tunnel goes to that peer.
func TestRefreshDropsLANPeer(t *testing.T) {
	h, p2, _, p7, t2, t3 := busyAndIdle(t)
	h.babel.setLAN(p2)
	h.step(20)
	assert.True(t, h.babel.isDraining(t2.Interface()), "the LAN peer's tunnel drains")
	assert.False(t, h.babel.isDraining(t3.Interface()))
	// Babel moves the routes off it: p2 to the LAN, p7 to the other tunnel.
	h.babel.setRoutes(Route{Prefix: p2, Interface: "eth0"},
		Route{Prefix: p7, Interface: t3.Interface(), Refmetric: 256})
	h.step(1)
	h.until(func() bool { _, ok := h.tunnelTo(p2); return !ok }, "drained tunnel removed")
	h.step(10)
	h.idle()
	_, again := h.tunnelTo(p2)
	assert.False(t, again, "no new tunnel to a LAN neighbour")
}

// TestDrainAborts: routes that stay on a draining tunnel for 2 × timeout
// (8 hellos) keep it: the cost goes back to normal.
func TestDrainAborts(t *testing.T) {
	h := newHarness(t, 1, 10)
	p2, t2 := h.firstTunnel()
	h.babel.setRoutes(Route{Prefix: p2, Interface: t2.Interface()})
	h.m.do(func() { h.m.startDrain(h.m.tunnels[t2.ID], "test", h.clock.Now()) })
	assert.True(t, h.babel.isDraining(t2.Interface()))
	h.step(8)
	info, _ := h.tunnelTo(p2)
	assert.True(t, info.Draining)
	h.step(1)
	info, ok := h.tunnelTo(p2)
	require.True(t, ok)
	assert.False(t, info.Draining)
	assert.False(t, h.babel.isDraining(t2.Interface()))
	assert.Empty(t, h.proto.calls(&h.proto.kills))
}

// TestDrainWithoutPeer: a peer that never agrees does not keep the tunnel
// beyond the deadline.
func TestDrainWithoutPeer(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.proto.killErr = errors.New("timeout")
	p2, t2 := h.firstTunnel()
	h.m.do(func() { h.m.startDrain(h.m.tunnels[t2.ID], "test", h.clock.Now()) })
	for i := 0; i < 9; i++ {
		h.step(1)
		h.until(func() bool {
			asking := true
			h.m.do(func() { asking = h.m.tunnels[t2.ID] != nil && h.m.tunnels[t2.ID].drain.asking })
			return !asking
		}, "kill answered")
	}
	_, ok := h.tunnelTo(p2)
	assert.False(t, ok, "removed at the deadline")
	assert.GreaterOrEqual(t, len(h.proto.calls(&h.proto.kills)), 7, "asked each second")
}

// TestReapSilent: a tunnel without a usable Babel link for 4 hellos goes;
// one with a link stays.
func TestReapSilent(t *testing.T) {
	h := newHarness(t, 2, 10)
	h.startWith(2, 3)
	p2, _ := peer(t, 2)
	p3, _ := peer(t, 3)
	t2, _ := h.tunnelTo(p2)
	h.babel.setUsable(map[string]bool{t2.Interface(): true})
	h.params.set(func(p *fakeParams) { p.clientCount = 0 }) // no replacement
	h.step(5)
	_, ok := h.tunnelTo(p3)
	assert.False(t, ok, "silent peer reaped")
	_, ok = h.tunnelTo(p2)
	assert.True(t, ok)
}

// TestRevocation: a revoked peer's tunnel goes at once; once our own
// certificate is revoked every tunnel goes and none is made.
func TestRevocation(t *testing.T) {
	h := newHarness(t, 2, 10)
	h.start()
	p2, bits2 := peer(t, 2)
	p3, bits3 := peer(t, 3)
	for i, p := range []nodeproto.Peer{{Prefix: p2, Bits: bits2}, {Prefix: p3, Bits: bits3}} {
		p.Via = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 2)}), 4326)
		require.True(t, h.m.Accept(p, nodeproto.TunnelRequest{Encap: "fou", Endpoint: p.Via}).Accepted)
	}
	h.m.do(func() { h.m.tunnelTo(bits2).Serial = 42 })
	require.NoError(t, h.cache.Put(bits2, "198.51.100.2,4326,fou"))
	require.NoError(t, h.cache.Put(bits3, "198.51.100.3,4326,fou"))
	h.params.set(func(p *fakeParams) { p.revoked[42] = true })
	h.m.CheckRevoked()
	_, ok := h.tunnelTo(p2)
	assert.False(t, ok)
	assert.Equal(t, []netip.Prefix{p2}, h.proto.calls(&h.proto.forgotten))
	_, cached := h.cache.Get(bits2)
	assert.False(t, cached, "a revoked peer leaves the cache")
	_, cached = h.cache.Get(bits3)
	assert.True(t, cached)

	h.params.set(func(p *fakeParams) { p.self = true })
	h.cachePeers(4, 5)
	h.step(1)
	h.idle()
	assert.Empty(t, h.m.Tunnels())
	assert.Empty(t, h.proto.calls(&h.proto.setups))
}

// TestCloseIf: the tunnels CloseIf picks go at once, from the table and
// the backend; the others stay.
func TestCloseIf(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.start()
	p2, bits2 := peer(t, 2)
	p3, bits3 := peer(t, 3)
	for i, tc := range []struct {
		peer  nodeproto.Peer
		encap string
	}{{nodeproto.Peer{Prefix: p2, Bits: bits2}, "fou"}, {nodeproto.Peer{Prefix: p3, Bits: bits3}, "gre"}} {
		tc.peer.Via = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 2)}), 4326)
		require.True(t, h.m.Accept(tc.peer, nodeproto.TunnelRequest{Encap: tc.encap, Endpoint: tc.peer.Via, Key: uint32(i + 7)}).Accepted)
	}
	fou, ok := h.tunnelTo(p2)
	require.True(t, ok)
	assert.Equal(t, 1, h.m.CloseIf("in clear", func(t Tunnel) bool { return t.Endpoint.Encap == "fou" }))
	_, ok = h.tunnelTo(p2)
	assert.False(t, ok, "the FOU tunnel went")
	_, ok = h.tunnelTo(p3)
	assert.True(t, ok, "the GRE tunnel stayed")
	assert.Equal(t, []uint32{fou.ID}, h.backend.removed)
	assert.Zero(t, h.m.CloseIf("in clear", func(Tunnel) bool { return false }))
}

// TestAccept covers the answers to tunnel requests.
func TestAccept(t *testing.T) {
	h := newHarness(t, 0, 1)
	h.start()
	p2, bits2 := peer(t, 2)
	p3, bits3 := peer(t, 3)
	via := netip.MustParseAddrPort("198.51.100.2:4326")
	behindNAT := nodeproto.Peer{Prefix: p2, Bits: bits2, Via: netip.MustParseAddrPort("203.0.113.1:40000")}
	for _, tc := range []struct {
		name   string
		peer   nodeproto.Peer
		req    nodeproto.TunnelRequest
		reason string
	}{
		{"over the overlay", nodeproto.Peer{Prefix: p2, Bits: bits2}, nodeproto.TunnelRequest{Encap: "fou"}, "must come from the endpoint"},
		{"unknown encapsulation", nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}, nodeproto.TunnelRequest{Encap: "ipip"}, "encapsulation"},
		{"GRE through a NAT", behindNAT, nodeproto.TunnelRequest{Encap: "gre", Endpoint: via, Key: 5}, "does not cross the NAT"},
		{"GRE without key", nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}, nodeproto.TunnelRequest{Encap: "gre", Endpoint: via}, "need a key"},
	} {
		r := h.m.Accept(tc.peer, tc.req)
		assert.False(t, r.Accepted, tc.name)
		assert.Contains(t, r.Reason, tc.reason, tc.name)
	}

	// FOU through a NAT: the tunnel goes to where the request came from,
	// and our packets leave from our FOU port.
	req := nodeproto.TunnelRequest{Encap: "fou", Endpoint: netip.MustParseAddrPort("10.0.0.2:4326")}
	r := h.m.Accept(behindNAT, req)
	require.True(t, r.Accepted, r.Reason)
	assert.Equal(t, behindNAT.Via, r.Observed)
	assert.Equal(t, netip.MustParseAddrPort("192.0.2.1:4326"), r.Endpoint)
	info, _ := h.tunnelTo(p2)
	assert.Equal(t, Endpoint{Encap: "fou", Local: netip.MustParseAddr("192.0.2.1"), Remote: behindNAT.Via, NAT: true}, info.Endpoint)
	assert.False(t, info.Outgoing)

	// A retried request gets the same answer; another is refused.
	assert.True(t, h.m.Accept(behindNAT, req).Accepted)
	r = h.m.Accept(behindNAT, nodeproto.TunnelRequest{Encap: "gre", Endpoint: behindNAT.Via, Key: 3})
	assert.Contains(t, r.Reason, "exists")
	r = h.m.Accept(nodeproto.Peer{Prefix: p3, Bits: bits3, Via: via}, nodeproto.TunnelRequest{Encap: "fou", Endpoint: via})
	assert.Contains(t, r.Reason, "no room")
	assert.Len(t, h.m.Tunnels(), 1)
}

// TestOutgoingNAT: a peer that saw us from another address means a NAT:
// FOU then leaves from our FOU port.
func TestOutgoingNAT(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.proto.observed = netip.MustParseAddrPort("203.0.113.1:40000")
	_, info := h.firstTunnel()
	assert.True(t, info.Endpoint.NAT)
}

// TestPeerKill: a peer draining our tunnel gets "not ready" while our
// routes use it, then "ready"; the tunnel goes a second later.
func TestPeerKill(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.start()
	p2, bits2 := peer(t, 2)
	np := nodeproto.Peer{Prefix: p2, Bits: bits2, Via: netip.MustParseAddrPort("198.51.100.2:4326")}
	require.True(t, h.m.Accept(np, nodeproto.TunnelRequest{Encap: "fou", Endpoint: np.Via}).Accepted)
	info, _ := h.tunnelTo(p2)
	h.babel.setRoutes(Route{Prefix: p2, Interface: info.Interface()})
	assert.False(t, h.m.Kill(np))
	assert.True(t, h.babel.isDraining(info.Interface()))
	h.babel.setRoutes()
	assert.True(t, h.m.Kill(np))
	_, ok := h.tunnelTo(p2)
	assert.True(t, ok, "still there for the answer to leave")
	h.step(2)
	_, ok = h.tunnelTo(p2)
	assert.False(t, ok)
	assert.True(t, h.m.Kill(np), "no tunnel: ready")
}

// TestRestore: the tunnels a previous run saved and the backend still has
// are taken over; the backend's others are removed.
func TestRestore(t *testing.T) {
	h := newHarness(t, 0, 10)
	p2, bits2 := peer(t, 2)
	ep := Endpoint{Encap: "fou", Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddrPort("198.51.100.2:4326")}
	h.backend.tunnels[3] = ep
	h.backend.tunnels[4] = ep
	h.backend.tunnels[5] = ep
	changed := ep
	changed.Remote = netip.MustParseAddrPort("198.51.100.9:4326")
	h.saved = []Tunnel{{ID: 3, Peer: p2, Bits: bits2, Endpoint: ep}, {ID: 5, Peer: p2, Bits: bits2, Endpoint: changed}}
	saved := make(chan []Tunnel, 1)
	h.cfg.Save = func(l []Tunnel) error { saved <- l; return nil }
	h.start()
	got := h.m.Tunnels()
	require.Len(t, got, 1)
	assert.Equal(t, uint32(3), got[0].ID)
	assert.ElementsMatch(t, []uint32{4, 5}, h.backend.removed)
	assert.Contains(t, h.babel.attached, "t3")

	// A new tunnel gets the first free id, and the table is saved.
	p3, bits3 := peer(t, 3)
	via := netip.MustParseAddrPort("198.51.100.3:4326")
	require.True(t, h.m.Accept(nodeproto.Peer{Prefix: p3, Bits: bits3, Via: via},
		nodeproto.TunnelRequest{Encap: "fou", Endpoint: via}).Accepted)
	list := <-saved
	require.Len(t, list, 2)
	assert.Equal(t, []uint32{1, 3}, []uint32{list[0].ID, list[1].ID})
}

// TestRestoreStale: tunnels saved by a run that stopped longer ago than
// peers keep a silent tunnel are removed, not taken over; just under that,
// they are taken over.
func TestRestoreStale(t *testing.T) {
	p2, bits2 := peer(t, 2)
	ep := Endpoint{Encap: "fou", Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddrPort("198.51.100.2:4326")}
	for _, tc := range []struct {
		down  time.Duration
		taken bool
	}{{down: 0, taken: true}, {down: 24 * time.Second, taken: true}, {down: 26 * time.Second, taken: false}} {
		h := newHarness(t, 0, 10) // Hello 1 s, Tick 5 s: stale past 20 + 5 s
		h.backend.tunnels[3] = ep
		h.saved = []Tunnel{{ID: 3, Peer: p2, Bits: bits2, Endpoint: ep}}
		if tc.down > 0 {
			h.cfg.SavedAt = h.clock.Now().Add(-tc.down)
		}
		h.start()
		if tc.taken {
			assert.Len(t, h.m.Tunnels(), 1, "down %s", tc.down)
			assert.Empty(t, h.backend.removed, "down %s", tc.down)
		} else {
			assert.Empty(t, h.m.Tunnels(), "down %s", tc.down)
			assert.Equal(t, []uint32{3}, h.backend.removed, "down %s", tc.down)
		}
	}
}

func TestIDOf(t *testing.T) {
	assert.Equal(t, uint32(12), IDOf("t12"))
	assert.Zero(t, IDOf("eth0"))
	assert.Zero(t, IDOf("tx"))
	assert.Equal(t, "t7", Tunnel{ID: 7}.Interface())
}

// TestAcceptGRE: a GRE tunnel keeps the key the requester proposed and
// goes to the address the request came from.
func TestAcceptGRE(t *testing.T) {
	h := newHarness(t, 0, 1)
	h.start()
	p2, bits2 := peer(t, 2)
	via := netip.MustParseAddrPort("198.51.100.2:4326")
	r := h.m.Accept(nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}, nodeproto.TunnelRequest{Encap: "gre", Endpoint: via, Key: 77})
	require.True(t, r.Accepted, r.Reason)
	assert.Equal(t, uint32(77), r.Key)
	info, _ := h.tunnelTo(p2)
	assert.Equal(t, Endpoint{Encap: "gre", Local: netip.MustParseAddr("192.0.2.1"), Remote: via, Key: 77}, info.Endpoint)
	assert.Equal(t, info.Endpoint, h.backend.tunnels[info.ID])
}

// TestOtherIncomingCounted: the incoming tunnels outside the table (an
// OpenVPN server's clients) take places of max_clients.
func TestOtherIncomingCounted(t *testing.T) {
	h := newHarness(t, 0, 2)
	var others atomic.Int32
	others.Store(1)
	h.cfg.OtherIncoming = func() int { return int(others.Load()) }
	h.start()
	via := netip.MustParseAddrPort("198.51.100.2:4326")
	p2, bits2 := peer(t, 2)
	p3, bits3 := peer(t, 3)
	r := h.m.Accept(nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}, nodeproto.TunnelRequest{Encap: "fou", Endpoint: via})
	require.True(t, r.Accepted, r.Reason)
	via3 := netip.MustParseAddrPort("198.51.100.3:4326")
	req3 := nodeproto.TunnelRequest{Encap: "fou", Endpoint: via3}
	r = h.m.Accept(nodeproto.Peer{Prefix: p3, Bits: bits3, Via: via3}, req3)
	assert.Contains(t, r.Reason, "no room", "one in the table and one other fill the two places")
	others.Store(0)
	r = h.m.Accept(nodeproto.Peer{Prefix: p3, Bits: bits3, Via: via3}, req3)
	assert.True(t, r.Accepted, r.Reason)
}
