package babel

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzSeeds are well-formed packets the fuzzers start from.
func fuzzSeeds(f *testing.F) {
	e := NewEncoder(0)
	for _, m := range []Message{
		Hello{Seqno: 1, Interval: 400, HasTimestamp: true, Timestamp: 5},
		IHU{Address: addr("fe80::1"), Rxcost: 96, Interval: 1200, HasTimestamps: true, Origin: 1, Receive: 2},
		Update{Prefix: pfx("2001:db8:1::/48"), RouterID: idA, Interval: 1600, Seqno: 10, Metric: 96},
		Update{Prefix: pfx("2001:db8:1:2::/64"), RouterID: idA, Interval: 1600, Seqno: 10, Metric: 192},
		Update{Prefix: pfx("::/0"), Source: pfx("2001:db8::/32"), RouterID: idB, Seqno: 1},
		Update{Prefix: pfx("10.0.0.0/8"), RouterID: idB, NextHop: addr("10.0.0.1"), Seqno: 1},
		RouteRequest{},
		SeqnoRequest{Prefix: pfx("2001:db8:1::/48"), Seqno: 9, HopCount: 127, RouterID: idA},
		PC{Counter: 42, Index: []byte{1, 2}},
		ChallengeRequest{Nonce: []byte("nonce")},
		AckRequest{Opaque: 1, Interval: 2},
	} {
		if err := e.Append(m); err != nil {
			f.Fatal(err)
		}
	}
	pkt := append([]byte{}, e.Bytes()...)
	f.Add(pkt)
	f.Add(AppendTrailerMAC(append([]byte{}, pkt...), make([]byte, 16)))
	f.Add([]byte{42, 2, 0, 0})
}

// FuzzParsePacket checks that the parser never panics and that whatever it
// accepts survives an encode/parse round trip unchanged.
func FuzzParsePacket(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePacket(data)
		if err != nil {
			return
		}
		e := NewEncoder(0)
		for _, m := range p.Messages {
			require.NoError(t, e.Append(m), "%#v", m)
		}
		again, err := ParsePacket(e.Bytes())
		require.NoError(t, err)
		require.Zero(t, again.Ignored)
		require.Equal(t, p.Messages, again.Messages)
	})
}
