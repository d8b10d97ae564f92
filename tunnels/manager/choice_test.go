package manager

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// fouAndGRE is node i's address list offering both types.
func fouAndGRE(i int) string {
	return fmt.Sprintf("198.51.100.%d,4326,fou;198.51.100.%d,0,gre", i, i)
}

func (h *harness) encapTo(p netip.Prefix) string {
	info, ok := h.tunnelTo(p)
	if !ok {
		return ""
	}
	return info.Endpoint.Encap
}

// TestFallbackToNextType: a firewall drops FOU. The FOU tunnel gets no
// Babel hello through for the timeout (4 hellos), so the node sets a GRE
// tunnel up at once, and remembers that GRE works with that peer. Once the
// firewall is gone and FOU's failure is older than the refresh period, the
// next set-up with the peer tries FOU first again.
func TestFallbackToNextType(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Types = []string{nodeproto.ProtoFOU, nodeproto.ProtoGRE}
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, fouAndGRE(2)))
	h.babel.block(nodeproto.ProtoFOU, true)
	h.start()
	h.step(1)
	h.idle()
	require.Equal(t, "fou", h.encapTo(p2), "the preferred type first")

	// Reaped at the first tick past the timeout, replaced at once.
	h.step(5)
	h.idle()
	require.Equal(t, "gre", h.encapTo(p2), "fell back to GRE")
	h.step(5)
	assert.Equal(t, "gre", h.m.TypeOf(bits2), "GRE worked")

	// The firewall goes; the GRE tunnel dies later (the peer restarts):
	// past the refresh period, FOU is tried first again, and works.
	h.babel.block(nodeproto.ProtoFOU, false)
	h.step(20)
	h.babel.block(nodeproto.ProtoGRE, true)
	h.until(func() bool {
		h.step(1)
		return h.encapTo(p2) == "fou"
	}, "back to FOU")
	h.babel.block(nodeproto.ProtoGRE, false)
	h.step(5)
	assert.Equal(t, "fou", h.m.TypeOf(bits2))
}

// TestTypesPreferenceList: only the types of the list are used, in its
// order, whatever the peer's order.
func TestTypesPreferenceList(t *testing.T) {
	h := newHarness(t, 2, 10)
	h.cfg.Types = []string{nodeproto.ProtoGRE}
	p2, bits2 := peer(t, 2)
	p3, bits3 := peer(t, 3)
	require.NoError(t, h.cache.Put(bits2, fouAndGRE(2)))
	require.NoError(t, h.cache.Put(bits3, addressOf(3))) // FOU only
	h.start()
	h.step(1)
	h.idle()
	assert.Equal(t, "gre", h.encapTo(p2))
	_, ok := h.tunnelTo(p3)
	assert.False(t, ok, "no type in common")
}

// TestAcceptPeerFallingBack: an incoming tunnel that never got a usable
// Babel link is replaced by the peer's request for another type once the
// peer can have given up on it; a fresh one, or one that works, is not.
func TestAcceptPeerFallingBack(t *testing.T) {
	h := newHarness(t, 0, 10)
	h.start()
	p2, bits2 := peer(t, 2)
	via := netip.MustParseAddrPort("198.51.100.2:4326")
	from := nodeproto.Peer{Prefix: p2, Bits: bits2, Via: via}
	fou := nodeproto.TunnelRequest{Encap: "fou", Endpoint: via}
	gre := nodeproto.TunnelRequest{Encap: "gre", Endpoint: via, Key: 9}
	h.babel.block("fou", true)
	require.True(t, h.m.Accept(from, fou).Accepted)
	assert.Contains(t, h.m.Accept(from, gre).Reason, "exists", "too early")
	h.step(3) // the first step is at once: 2 s, half the timeout
	r := h.m.Accept(from, gre)
	require.True(t, r.Accepted, r.Reason)
	assert.Equal(t, "gre", h.encapTo(p2))

	h.step(5) // GRE is usable
	assert.Contains(t, h.m.Accept(from, fou).Reason, "exists", "a working tunnel stays")
}

// TestUpgradeAtRefresh: the firewall that made a peer's tunnel fall back
// to GRE goes; at the next refresh past the refresh period after FOU's
// failure, the GRE tunnel is the one replaced, and the new one is FOU.
func TestUpgradeAtRefresh(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Types = []string{nodeproto.ProtoFOU, nodeproto.ProtoGRE}
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, fouAndGRE(2)))
	h.babel.block(nodeproto.ProtoFOU, true)
	h.start()
	h.step(1)
	h.idle()
	h.step(5)
	h.idle()
	require.Equal(t, "gre", h.encapTo(p2))
	fellBack := h.clock.Now()

	h.babel.block(nodeproto.ProtoFOU, false)
	h.until(func() bool {
		h.step(1)
		h.idle()
		return h.encapTo(p2) == "fou"
	}, "back to FOU at a refresh")
	assert.GreaterOrEqual(t, h.clock.Now().Sub(fellBack), h.params.RefreshPeriod(), "not before FOU's failure is a refresh period old")
	assert.Contains(t, h.proto.calls(&h.proto.kills), p2, "the GRE tunnel was drained with the peer")
	h.step(5)
	assert.Equal(t, "fou", h.m.TypeOf(bits2))
}

// TestNoFallbackWithoutAnotherType: with one type in common, a silent
// tunnel is only reaped (the usual loop picks peers again); the failure is
// remembered but no immediate set-up with the same peer follows.
func TestNoFallbackWithoutAnotherType(t *testing.T) {
	h := newHarness(t, 1, 10)
	h.cfg.Types = []string{nodeproto.ProtoFOU, nodeproto.ProtoGRE}
	p2, bits2 := peer(t, 2)
	require.NoError(t, h.cache.Put(bits2, addressOf(2))) // FOU only
	h.babel.block(nodeproto.ProtoFOU, true)
	h.start()
	h.step(1)
	h.idle()
	require.Equal(t, "fou", h.encapTo(p2))
	h.m.do(func() {
		e := h.m.tunnelTo(bits2)
		h.m.close(e, "test")
		h.m.fallBack(e, h.clock.Now())
		assert.False(t, h.m.pending[bits2], "no immediate retry")
		assert.True(t, h.m.failedRecently(bits2, "fou", h.clock.Now()))
	})
}
