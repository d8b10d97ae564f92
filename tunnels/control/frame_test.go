package control

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDatagramMatchesGopacket(t *testing.T) {
	d := datagram{Src: netip.MustParseAddr("fe80::1:2"), Dst: netip.MustParseAddr("ff02::1:6"),
		SrcPort: 6696, DstPort: 6696, Payload: []byte("babel packet!")}
	b := d.marshal()

	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 255,
		SrcIP: net.ParseIP("fe80::1:2"), DstIP: net.ParseIP("ff02::1:6")}
	u := &layers.UDP{SrcPort: 6696, DstPort: 6696}
	require.NoError(t, u.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, u, gopacket.Payload(d.Payload)))
	assert.Equal(t, buf.Bytes(), b)

	got, err := parseDatagram(append(b, 0, 0)) // trailing bytes beyond the payload length are ignored
	require.NoError(t, err)
	assert.Equal(t, d, got)
}

func TestParseDatagramRejects(t *testing.T) {
	good := (&datagram{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("fe80::1"),
		SrcPort: 326, DstPort: 326, Payload: []byte{1, 2, 3, 4, 5}}).marshal()
	corrupt := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	for name, b := range map[string][]byte{
		"short":        good[:47],
		"ipv4":         corrupt(0, 0x45),
		"tcp":          corrupt(6, 6),
		"bad checksum": corrupt(len(good)-1, 0xff),
		"long payload": corrupt(5, 200),
		"udp length":   corrupt(45, 9),
	} {
		_, err := parseDatagram(b)
		assert.Error(t, err, name)
	}
}

func TestGRE(t *testing.T) {
	inner := []byte{0x60, 1, 2, 3}
	for _, tc := range []struct {
		hasKey bool
		key    uint32
	}{{false, 0}, {true, 0xdeadbeef}} {
		f, err := parseGRE(marshalGRE(tc.hasKey, tc.key, inner))
		require.NoError(t, err)
		assert.Equal(t, greFrame{Key: tc.key, HasKey: tc.hasKey, Inner: inner}, f)
	}
	_, err := parseGRE([]byte{0x80, 0, 0x86, 0xdd, 0, 0}) // checksum flag
	assert.Error(t, err)
	_, err = parseGRE([]byte{0x20, 0, 0x86, 0xdd, 0}) // key flag, no key
	assert.Error(t, err)
	_, err = parseGRE([]byte{0, 0, 0x08, 0x00}) // IPv4 inside
	assert.Error(t, err)
}
