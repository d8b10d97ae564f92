package simnet

import (
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/stretchr/testify/require"
)

// TestKeyRotationLive runs re6st's three-step key rotation (sign k0 →
// sign k0 accept k1 → sign k1 accept k0 → sign k1) on running routers,
// one end at a time, and checks that each keeps its route to the other
// and that no packet is refused for its MAC.
func TestKeyRotationLive(t *testing.T) {
	k0, k1 := key(t, key1), key(t, "blake2s128:0f0e0d0c0b0a09080706050403020100")
	steady := &babel.Auth{Sign: []babel.Key{k0}}
	s, _ := pairWithAuth(t, steady, steady)
	s.Run(10 * time.Second)
	require.True(t, hasRoute(s, 0, 1))
	require.True(t, hasRoute(s, 1, 0))
	dropped := func() uint64 {
		var n uint64
		for _, node := range s.Nodes {
			n += node.Router.Dump().Interfaces[0].Stats.Dropped
		}
		return n
	}
	before := dropped()
	for _, phase := range []*babel.Auth{
		{Sign: []babel.Key{k0}, Accept: []babel.Key{k1}},
		{Sign: []babel.Key{k1}, Accept: []babel.Key{k0}},
		{Sign: []babel.Key{k1}},
	} {
		for i := range s.Nodes {
			cfg := s.opts.Interface
			cfg.Auth = phase
			require.NoError(t, s.Nodes[i].Router.Reconfigure("t0", cfg))
			s.Run(3 * time.Second) // the other end is still in the previous phase
			require.True(t, hasRoute(s, 0, 1))
			require.True(t, hasRoute(s, 1, 0))
		}
	}
	require.Equal(t, before, dropped(), "packets refused during the rotation")

	// The last phase no longer accepts k0: a router left on it is cut off.
	cfg := s.opts.Interface
	cfg.Auth = steady
	require.NoError(t, s.Nodes[0].Router.Reconfigure("t0", cfg))
	s.Run(30 * time.Second)
	require.False(t, hasRoute(s, 1, 0))
	require.Error(t, s.Nodes[0].Router.Reconfigure("nope", cfg))
}
