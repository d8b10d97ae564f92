package simnet

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/stretchr/testify/require"
)

func key(t *testing.T, s string) babel.Key {
	k, err := babel.ParseKey(s)
	require.NoError(t, err)
	return k
}

const (
	key1 = "blake2s128:00112233445566778899aabbccddeeff"
	key2 = "hmac-sha256:ffeeddccbbaa99887766554433221100"
)

// pairWithAuth links two routers whose interfaces use authA and authB.
func pairWithAuth(t *testing.T, authA, authB *babel.Auth) (*Sim, *Link) {
	s, err := New(2, Options{Seed: 9})
	require.NoError(t, err)
	l := s.Net.NewLink(time.Millisecond)
	for i, auth := range []*babel.Auth{authA, authB} {
		cfg := s.opts.Interface
		cfg.Auth = auth
		ep := l.Attach()
		s.owner[ep.LocalAddr()] = s.Nodes[i]
		s.links[ep.LocalAddr()] = l
		require.NoError(t, s.Nodes[i].Router.AddInterface("t0", cfg, ep))
	}
	return s, l
}

func hasRoute(s *Sim, from, to int) bool {
	_, ok := s.Nodes[from].Router.Selected(babel.KeyOf(NodePrefix(to), netip.Prefix{}))
	return ok
}

func TestMAC(t *testing.T) {
	k1, k2 := key(t, key1), key(t, key2)
	for _, tc := range []struct {
		name       string
		a, b       *babel.Auth
		aToB, bToA bool
	}{
		{"same key", &babel.Auth{Sign: []babel.Key{k1}}, &babel.Auth{Sign: []babel.Key{k1}}, true, true},
		{"hmac", &babel.Auth{Sign: []babel.Key{k2}}, &babel.Auth{Sign: []babel.Key{k2}}, true, true},
		{"wrong key", &babel.Auth{Sign: []babel.Key{k1}}, &babel.Auth{Sign: []babel.Key{k2}}, false, false},
		{"rotation", &babel.Auth{Sign: []babel.Key{k1}, Accept: []babel.Key{k2}}, &babel.Auth{Sign: []babel.Key{k2}, Accept: []babel.Key{k1}}, true, true},
		{"unsigned peer", &babel.Auth{Sign: []babel.Key{k1}}, nil, false, false},
		{"permissive", &babel.Auth{Sign: []babel.Key{k1}, Permissive: true}, nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := pairWithAuth(t, tc.a, tc.b)
			s.Run(10 * time.Second)
			require.Equal(t, tc.aToB, hasRoute(s, 0, 1), "route at A")
			require.Equal(t, tc.bToA, hasRoute(s, 1, 0), "route at B")
		})
	}
}

// TestMACReplay records a signed packet and plays it again: the packet
// counter must make the receiver drop it.
func TestMACReplay(t *testing.T) {
	auth := &babel.Auth{Sign: []babel.Key{key(t, key1)}}
	s, l := pairWithAuth(t, auth, auth)
	s.Run(5 * time.Second)
	require.True(t, hasRoute(s, 1, 0))

	from, to := l.Ends()[0], l.Ends()[1]
	var captured []byte
	var capturedDst netip.Addr
	deliver := to.receive
	to.receive = func(src, dst netip.Addr, pkt []byte) {
		if captured == nil {
			captured, capturedDst = bytes.Clone(pkt), dst
		}
		deliver(src, dst, pkt)
	}
	s.Run(2 * time.Second)
	require.NotNil(t, captured)
	dropped := s.Nodes[1].Router.Dump().Interfaces[0].Stats.Dropped
	deliver(from.LocalAddr(), capturedDst, captured)
	require.Equal(t, dropped+1, s.Nodes[1].Router.Dump().Interfaces[0].Stats.Dropped)

	// A tampered copy fails the MAC.
	captured[len(captured)-1] ^= 1
	deliver(from.LocalAddr(), capturedDst, captured)
	require.Equal(t, dropped+2, s.Nodes[1].Router.Dump().Interfaces[0].Stats.Dropped)
}
