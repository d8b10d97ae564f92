package control

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

const (
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	protoUDP      = 17
	greProtoIPv6  = 0x86dd
	greFlagKey    = 0x2000
	greOtherFlags = 0xd007 // checksum, routing, sequence, version
)

// datagram is a UDP datagram inside an IPv6 packet, as control traffic
// travels inside the tunnels.
type datagram struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Payload          []byte
}

var errNotDatagram = errors.New("not an IPv6 UDP datagram")

// marshal builds the IPv6 packet (hop limit 255, as link-local control
// traffic, and a UDP checksum, mandatory over IPv6).
func (d *datagram) marshal() []byte {
	n := ipv6HeaderLen + udpHeaderLen + len(d.Payload)
	b := make([]byte, n)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(udpHeaderLen+len(d.Payload)))
	b[6] = protoUDP
	b[7] = 255
	src, dst := d.Src.As16(), d.Dst.As16()
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	u := b[ipv6HeaderLen:]
	binary.BigEndian.PutUint16(u[0:], d.SrcPort)
	binary.BigEndian.PutUint16(u[2:], d.DstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeaderLen+len(d.Payload)))
	copy(u[udpHeaderLen:], d.Payload)
	binary.BigEndian.PutUint16(u[6:], udpChecksum(b))
	return b
}

// parseDatagram reads an IPv6 packet carrying UDP directly (control
// traffic never has extension headers) and checks its UDP checksum.
func parseDatagram(b []byte) (datagram, error) {
	if len(b) < ipv6HeaderLen+udpHeaderLen || b[0]>>4 != 6 || b[6] != protoUDP {
		return datagram{}, errNotDatagram
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if plen < udpHeaderLen || ipv6HeaderLen+plen > len(b) {
		return datagram{}, errNotDatagram
	}
	b = b[:ipv6HeaderLen+plen]
	u := b[ipv6HeaderLen:]
	if int(binary.BigEndian.Uint16(u[4:])) != plen || udpChecksum(b) != 0 {
		return datagram{}, errNotDatagram
	}
	return datagram{
		Src:     netip.AddrFrom16([16]byte(b[8:24])),
		Dst:     netip.AddrFrom16([16]byte(b[24:40])),
		SrcPort: binary.BigEndian.Uint16(u[0:]),
		DstPort: binary.BigEndian.Uint16(u[2:]),
		Payload: u[udpHeaderLen:],
	}, nil
}

// udpChecksum is the UDP checksum over the IPv6 pseudo-header and the
// datagram of packet b: the value to store when the checksum field is
// zero, and 0 when a packet with its checksum in place is correct.
func udpChecksum(b []byte) uint16 {
	u := b[ipv6HeaderLen:]
	var sum uint32
	add := func(p []byte) {
		for len(p) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(p))
			p = p[2:]
		}
		if len(p) == 1 {
			sum += uint32(p[0]) << 8
		}
	}
	add(b[8:40])
	sum += uint32(len(u)) + protoUDP
	add(u)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 && binary.BigEndian.Uint16(u[6:]) == 0 {
		return 0xffff
	}
	return c
}

// greFrame is a GRE packet as a raw "ip4:gre" socket reads it (the IPv4
// header removed).
type greFrame struct {
	Key    uint32
	HasKey bool
	Inner  []byte
}

// parseGRE reads GRE carrying IPv6.
func parseGRE(g []byte) (greFrame, error) {
	if len(g) < 4 {
		return greFrame{}, errors.New("truncated GRE")
	}
	flags := binary.BigEndian.Uint16(g)
	if flags&greOtherFlags != 0 || binary.BigEndian.Uint16(g[2:]) != greProtoIPv6 {
		return greFrame{}, errors.New("not plain GRE over IPv6")
	}
	g = g[4:]
	var f greFrame
	if flags&greFlagKey != 0 {
		if len(g) < 4 {
			return greFrame{}, errors.New("truncated GRE key")
		}
		f.HasKey, f.Key = true, binary.BigEndian.Uint32(g)
		g = g[4:]
	}
	f.Inner = g
	return f, nil
}

// marshalGRE builds the GRE header and payload a raw socket sends (the
// kernel adds the IPv4 header).
func marshalGRE(hasKey bool, key uint32, inner []byte) []byte {
	h := 4
	if hasKey {
		h = 8
	}
	b := make([]byte, h+len(inner))
	binary.BigEndian.PutUint16(b[2:], greProtoIPv6)
	if hasKey {
		binary.BigEndian.PutUint16(b, greFlagKey)
		binary.BigEndian.PutUint32(b[4:], key)
	}
	copy(b[h:], inner)
	return b
}
