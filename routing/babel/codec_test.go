package babel

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	idA = RouterID{1, 2, 3, 4, 5, 6, 7, 8}
	idB = RouterID{8, 7, 6, 5, 4, 3, 2, 1}
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func encodeAll(t *testing.T, msgs ...Message) []byte {
	t.Helper()
	e := NewEncoder(0)
	for _, m := range msgs {
		require.NoError(t, e.Append(m), "%#v", m)
	}
	return append([]byte{}, e.Bytes()...)
}

func TestCodecRoundTrip(t *testing.T) {
	msgs := []Message{
		Pad1{},
		PadN{N: 3},
		AckRequest{Opaque: 0xbeef, Interval: 200},
		Ack{Opaque: 7},
		Hello{Seqno: 65535, Interval: 400},
		Hello{Unicast: true, Seqno: 3, Interval: 0, HasTimestamp: true, Timestamp: 0xdeadbeef},
		IHU{Rxcost: 96, Interval: 1200},
		IHU{Address: addr("fe80::1:2:3:4"), Rxcost: 256, Interval: 1200, HasTimestamps: true, Origin: 1, Receive: 2},
		IHU{Address: addr("2001:db8::1"), Rxcost: Infinity, Interval: 1},
		IHU{Address: addr("192.0.2.1"), Rxcost: 96, Interval: 1},
		Update{Prefix: pfx("2001:db8:1::/48"), RouterID: idA, Interval: 1600, Seqno: 10, Metric: 96},
		Update{Prefix: pfx("2001:db8:1:2::/64"), RouterID: idA, Interval: 1600, Seqno: 10, Metric: 192},
		Update{Prefix: pfx("2001:db8:1:2::/64"), Source: pfx("2001:db8::/32"), RouterID: idA, Interval: 1600, Seqno: 11, Metric: 192},
		Update{Prefix: pfx("::/0"), Source: pfx("2001:db8::/32"), RouterID: idB, Interval: 1600, Seqno: 1, Metric: 0},
		Update{Prefix: pfx("2001:db8:9::0102:0304:0506:0708/128"), RouterID: idA, Interval: 1600, Seqno: 2, Metric: 5},
		Update{Prefix: pfx("2001:db8:9::/64"), RouterID: idA, NextHop: addr("fe80::99"), Interval: 1600, Seqno: 2, Metric: 5},
		Update{Prefix: pfx("2001:db8:a::/64"), RouterID: idA, NextHop: addr("2001:db8::99"), Interval: 1600, Seqno: 2, Metric: Infinity},
		Update{Prefix: pfx("10.1.0.0/16"), RouterID: idB, NextHop: addr("10.0.0.1"), Interval: 1600, Seqno: 4, Metric: 300},
		Update{Prefix: pfx("10.1.2.0/24"), RouterID: idB, NextHop: addr("10.0.0.1"), Interval: 1600, Seqno: 4, Metric: 300},
		Update{RouterID: idB, Interval: 1600, Seqno: 4, Metric: Infinity},
		RouteRequest{},
		RouteRequest{Prefix: pfx("2001:db8:1::/48")},
		RouteRequest{Prefix: pfx("::/0"), Source: pfx("2001:db8::/32")},
		SeqnoRequest{Prefix: pfx("2001:db8:1::/48"), Seqno: 9, HopCount: 127, RouterID: idA},
		SeqnoRequest{Prefix: pfx("::/0"), Source: pfx("2001:db8::/33"), Seqno: 9, HopCount: 1, RouterID: idB},
		PC{Counter: 42, Index: []byte{1, 2, 3, 4}},
		ChallengeRequest{Nonce: []byte("0123456789")},
		ChallengeReply{Nonce: []byte("0123456789")},
	}
	pkt := encodeAll(t, msgs...)
	p, err := ParsePacket(pkt)
	require.NoError(t, err)
	require.Zero(t, p.Ignored)
	require.Equal(t, msgs, p.Messages)
	// Re-encoding the parsed packet gives the same octets.
	require.Equal(t, pkt, encodeAll(t, p.Messages...))
}

func TestCodecCompression(t *testing.T) {
	u1 := Update{Prefix: pfx("2001:db8:1:1::/64"), RouterID: idA, Interval: 1600, Seqno: 1, Metric: 96}
	u2 := u1
	u2.Prefix = pfx("2001:db8:1:2::/64")
	one := encodeAll(t, u1)
	two := encodeAll(t, u1, u2)
	// The second update repeats neither the router-id nor the first 7 octets.
	require.Equal(t, 2+10+1, len(two)-len(one))

	// The router-id flag replaces the Router-Id TLV for a /128 whose
	// interface identifier is the router-id.
	host := Update{Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 8: 1, 2, 3, 4, 5, 6, 7, 8}), 128), RouterID: idA, Metric: 0}
	pkt := encodeAll(t, host)
	require.Equal(t, headerLen+2+10+16, len(pkt))
	p, err := ParsePacket(pkt)
	require.NoError(t, err)
	require.Equal(t, idA, p.Messages[0].(Update).RouterID)
}

func TestParseRejects(t *testing.T) {
	valid := encodeAll(t, Hello{Seqno: 1, Interval: 400})
	for name, data := range map[string][]byte{
		"short":      {42, 2},
		"magic":      {43, 2, 0, 0},
		"version":    {42, 1, 0, 0},
		"length":     {42, 2, 0, 10, 0},
		"truncated":  {42, 2, 0, 3, tlvHello, 6, 0},
		"trailer":    append(append([]byte{}, valid...), tlvMAC, 16, 1),
		"lonelytype": {42, 2, 0, 1, tlvHello},
	} {
		_, err := ParsePacket(data)
		require.Error(t, err, name)
	}
}

func TestParseIgnores(t *testing.T) {
	for name, tlv := range map[string][]byte{
		"unknown type":        {99, 2, 0, 0},
		"short hello":         {tlvHello, 4, 0, 0, 0, 1},
		"update no router-id": {tlvUpdate, 12, aeIPv6, 0, 16, 0, 0, 100, 0, 1, 0, 96, 0x20, 0x01},
		"update bad omitted":  {tlvUpdate, 12, aeIPv6, 0, 32, 2, 0, 100, 0, 1, 0xff, 0xff, 0x20, 0x01},
		"update unknown ae":   {tlvUpdate, 10, 9, 0, 0, 0, 0, 100, 0, 1, 0xff, 0xff},
		"update plen":         {tlvUpdate, 10, aeIPv6, 0, 129, 0, 0, 100, 0, 1, 0xff, 0xff},
		"mandatory sub-TLV":   {tlvUpdate, 13, aeIPv6, 0, 0, 0, 0, 100, 0, 1, 0xff, 0xff, 200, 1, 0},
		"source plen 0":       {tlvUpdate, 13, aeIPv6, 0, 0, 0, 0, 100, 0, 1, 0xff, 0xff, 128, 1, 0},
		"finite wildcard":     {tlvUpdate, 10, aeWildcard, 0, 0, 0, 0, 100, 0, 1, 0, 1},
		"seqno request ae 0":  {tlvSeqnoRequest, 14, 0, 0, 0, 1, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		"seqno request short": {tlvSeqnoRequest, 12, 2, 0, 0, 1, 10, 0, 1, 2, 3, 4, 5, 6},
		"router-id all ones":  {tlvRouterID, 10, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"next hop ae 0":       {tlvNextHop, 2, 0, 0},
		"ipv4 update no nexthop": append([]byte{tlvRouterID, 10, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8},
			tlvUpdate, 11, aeIPv4, 0, 8, 0, 0, 100, 0, 1, 0, 96, 10),
	} {
		pkt := append([]byte{42, 2, 0, byte(len(tlv))}, tlv...)
		p, err := ParsePacket(pkt)
		require.NoError(t, err, name)
		require.Empty(t, p.Messages, name)
		require.Equal(t, 1, p.Ignored, name)
	}
}

// TestParseV4viaV6 checks AE 4 (RFC 9229) as babeld sends it: IPv4
// prefixes in Updates (whose next hop is the IPv6 one in effect, here the
// packet's source), Route and Seqno Requests; in a Next Hop TLV it is
// ignored, without touching the state of the TLVs that follow.
func TestParseV4viaV6(t *testing.T) {
	const ae4 = 4
	idV4 := RouterID{0, 0, 0, 0, 9, 9, 9, 9}
	var tlvs []byte
	tlvs = append(tlvs, tlvRouterID, 10, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	tlvs = append(tlvs, tlvNextHop, 18, ae4, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	tlvs = append(tlvs, tlvUpdate, 13, ae4, 0x80, 24, 0, 0, 100, 0, 1, 0, 96, 10, 1, 2)
	tlvs = append(tlvs, tlvUpdate, 11, ae4, 0, 24, 2, 0, 100, 0, 1, 0, 96, 3) // compressed: 10.1.3.0/24
	tlvs = append(tlvs, tlvUpdate, 14, ae4, 0x40, 32, 0, 0, 100, 0, 1, 0, 96, 9, 9, 9, 9)
	tlvs = append(tlvs, tlvRouteRequest, 5, ae4, 24, 10, 1, 2)
	tlvs = append(tlvs, tlvSeqnoRequest, 17, ae4, 24, 0, 1, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 1, 2)
	tlvs = append(tlvs, tlvUpdate, 18, aeIPv6, 0, 64, 0, 0, 100, 0, 1, 0, 96, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1)
	pkt := append([]byte{42, 2, 0, byte(len(tlvs))}, tlvs...)
	p, err := ParsePacket(pkt)
	require.NoError(t, err)
	require.Equal(t, 1, p.Ignored)
	require.Equal(t, []Message{
		Update{Prefix: pfx("10.1.2.0/24"), RouterID: idA, Interval: 100, Seqno: 1, Metric: 96},
		Update{Prefix: pfx("10.1.3.0/24"), RouterID: idA, Interval: 100, Seqno: 1, Metric: 96},
		Update{Prefix: pfx("9.9.9.9/32"), RouterID: idV4, Interval: 100, Seqno: 1, Metric: 96},
		RouteRequest{Prefix: pfx("10.1.2.0/24")},
		SeqnoRequest{Prefix: pfx("10.1.2.0/24"), Seqno: 1, HopCount: 10, RouterID: idA},
		Update{Prefix: pfx("2001:db8:0:1::/64"), RouterID: idV4, Interval: 100, Seqno: 1, Metric: 96},
	}, p.Messages)
}

// TestEncodeIPv4Updates: an IPv4 prefix goes AE 1 with an IPv4 next hop,
// and v4-via-v6 (AE 4, sent whole) with an IPv6 one or the packet's
// source; each decodes to what was encoded.
func TestEncodeIPv4Updates(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1")
	for _, tc := range []struct {
		name string
		u    Update
		ae   byte
	}{
		{"ipv4-next-hop", Update{Prefix: pfx("10.42.1.0/24"), NextHop: netip.MustParseAddr("10.0.0.1"), RouterID: idA, Interval: 400, Seqno: 7, Metric: 256}, aeIPv4},
		{"packet-source", Update{Prefix: pfx("10.42.1.0/24"), RouterID: idA, Interval: 400, Seqno: 7, Metric: 256}, aeV4viaV6},
		{"ipv6-next-hop", Update{Prefix: pfx("10.42.1.0/24"), NextHop: ll, RouterID: idA, Interval: 400, Seqno: 7, Metric: 256}, aeV4viaV6},
		{"retraction", Update{Prefix: pfx("10.42.0.0/16"), RouterID: idA, Interval: 400, Seqno: 7, Metric: Infinity}, aeV4viaV6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second is not compressed against the first.
			pkt := encodeAll(t, tc.u, tc.u)
			p, err := ParsePacket(pkt)
			require.NoError(t, err)
			require.Equal(t, []Message{tc.u, tc.u}, p.Messages)
			i := headerLen // the first Update TLV, after any Router-Id and Next Hop
			for pkt[i] != tlvUpdate {
				i += 2 + int(pkt[i+1])
			}
			require.Equal(t, tc.ae, pkt[i+2], "AE")
		})
	}
}

func TestSeqnoOrder(t *testing.T) {
	require.True(t, SeqnoLess(1, 2))
	require.False(t, SeqnoLess(2, 2))
	require.True(t, SeqnoLess(65535, 0))
	require.True(t, SeqnoLess(0, 32767))
	require.False(t, SeqnoLess(0, 32768))
	require.Equal(t, -1, seqnoMinus(65535, 0))
}

func TestEncoderLimit(t *testing.T) {
	e := NewEncoder(headerLen + 20)
	u := Update{Prefix: pfx("2001:db8:1::/48"), RouterID: idA, Metric: 1}
	require.NoError(t, e.Append(Hello{Seqno: 1}))
	before := append([]byte{}, e.Bytes()...)
	require.ErrorIs(t, e.Append(u), ErrPacketFull)
	require.Equal(t, before, e.Bytes())
}
