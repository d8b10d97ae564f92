package loader

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// The IPv4 side of the fixture world: this node is 10.42.1.1, 10.42.N.0/24
// is behind tunnel N (N = 2..5) as 2001:db8:N::/48 is.
var (
	nodeAddr4      = netip.MustParseAddr("10.42.1.1")
	fixtureRoutes4 = map[string]Nexthop{
		"10.42.1.0/24": {Local: true},
		"10.42.2.0/24": {Tunnel: 2},
		"10.42.3.0/24": {Tunnel: 3},
		"10.42.4.0/24": {Tunnel: 4},
		"10.42.5.0/24": {Tunnel: 5},
	}
)

func loadFixtureDatapath4(t *testing.T) (*Datapath, *datapathPrograms) {
	d, progs := loadFixtureDatapath(t)
	for p, nh := range fixtureRoutes4 {
		require.NoError(t, d.AddRoute(netip.MustParsePrefix(p), netip.Prefix{}, nh))
	}
	require.NoError(t, d.maps.Ipv4Self.Put(uint32(0), be32(nodeAddr4)))
	return d, progs
}

// inner4 builds an IPv4 UDP packet of size bytes (at least 28).
func inner4(t *testing.T, src, dst string, ttl uint8, size int, df bool) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	u := &layers.UDP{SrcPort: 4000, DstPort: 9000}
	require.NoError(t, u.SetNetworkLayerForChecksum(ip))
	payload := make([]byte, size-28)
	for i := range payload {
		payload[i] = byte(i)
	}
	return serialize(t, ip, u, gopacket.Payload(payload))
}

// withTTL is pkt with another TTL and its header checksum computed anew
// (the data plane updates it incrementally).
func withTTL(pkt []byte, ttl uint8) []byte {
	out := append([]byte(nil), pkt...)
	out[8] = ttl
	out[10], out[11] = 0, 0
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(out[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(out[10:], ^uint16(sum))
	return out
}

// icmp4Err is the ICMPv4 "destination unreachable" the egress program
// builds about pkt: mtu is the next-hop MTU of "fragmentation needed".
func icmp4Err(t *testing.T, code uint8, mtu uint16, pkt []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: nodeAddr4.AsSlice(), DstIP: net.IP(pkt[12:16])}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, code), Seq: mtu}
	return serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv4), ip, ic, gopacket.Payload(pkt[:min(len(pkt), 548)]))
}

func egress4Cases(t *testing.T) []progCase {
	ov := func(p []byte) []byte {
		return serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv4), gopacket.Payload(p))
	}
	toFOU := inner4(t, "10.42.1.1", "10.42.2.5", 64, 100, true)
	toGRE := inner4(t, "10.42.1.1", "10.42.3.5", 64, 100, true)
	toGRENoKey := inner4(t, "10.42.1.1", "10.42.4.5", 64, 100, true)
	noRoute := inner4(t, "10.42.1.1", "10.99.0.1", 64, 100, true)
	bigQuote := inner4(t, "10.42.1.1", "10.99.0.1", 64, 1000, true)
	missing := inner4(t, "10.42.1.1", "10.42.1.9", 64, 100, true)
	tooBig := inner4(t, "10.42.1.1", "10.42.5.5", 64, 1300, true)
	tooBigNoDF := inner4(t, "10.42.1.1", "10.42.5.5", 64, 1300, false)
	broadcast := inner4(t, "10.42.1.1", "255.255.255.255", 64, 100, false)
	// An ICMPv4 error without a route gets no error of its own.
	errNoRoute := icmp4Err(t, 1, 0, inner4(t, "10.99.0.1", "10.42.1.1", 64, 100, true))[14:]
	key := uint32(7)
	return []progCase{
		{name: "encap4-fou", in: ov(toFOU), tc: tcRedirect, anySport: true, reasons: []string{"encap"},
			out: fouFrame(t, overlayMAC, overlayMAC, "10.0.2.1", "10.0.2.2", 0, toFOU)},
		{name: "encap4-gre-key", in: ov(toGRE), tc: tcRedirect, reasons: []string{"encap"},
			out: greFrame(t, overlayMAC, overlayMAC, "10.0.3.1", "10.0.3.2", &key, toGRE)},
		{name: "encap4-gre", in: ov(toGRENoKey), tc: tcRedirect, reasons: []string{"encap"},
			out: greFrame(t, overlayMAC, overlayMAC, "10.0.4.1", "10.0.4.2", nil, toGRENoKey)},
		{name: "egress4-no-route", in: ov(noRoute), tc: tcRedirect, out: icmp4Err(t, 0, 0, noRoute), reasons: []string{"no-route", "icmp-sent"}},
		{name: "egress4-no-route-quote-truncated", in: ov(bigQuote), tc: tcRedirect, out: icmp4Err(t, 0, 0, bigQuote), reasons: []string{"no-route", "icmp-sent"}},
		{name: "egress4-local-address-missing", in: ov(missing), tc: tcRedirect, out: icmp4Err(t, 1, 0, missing), reasons: []string{"no-route", "icmp-sent"}},
		{name: "egress4-too-big", in: ov(tooBig), tc: tcRedirect, out: icmp4Err(t, 4, 1280, tooBig), reasons: []string{"too-big", "icmp-sent"}},
		{name: "egress4-too-big-may-fragment", in: ov(tooBigNoDF), tc: tcShot, reasons: []string{"too-big"}},
		{name: "egress4-broadcast", in: ov(broadcast), tc: tcShot, reasons: []string{"drop-not-routable"}},
		{name: "egress4-no-error-about-error", in: ov(errNoRoute), tc: tcShot, reasons: []string{"no-route"}},
		{name: "egress4-malformed-ihl", in: ov(append([]byte{0x44}, toFOU[1:]...)), tc: tcShot, reasons: []string{"drop-malformed"}},
	}
}

func underlay4Cases(t *testing.T) []progCase {
	key := uint32(7)
	local := inner4(t, "10.42.9.1", "10.42.1.1", 64, 100, true)
	// An echo request without payload: shorter than an IPv6 header (and
	// its decapsulated frame shorter than Ethernet's minimum, which
	// serialize would pad).
	short := serialize(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.ParseIP("10.42.9.1").To4(), DstIP: nodeAddr4.AsSlice()},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1})
	ttl1 := inner4(t, "10.42.9.1", "10.42.2.5", 1, 100, true)
	tooBig := inner4(t, "10.42.9.1", "10.42.5.5", 64, 1300, true)
	noRoute := inner4(t, "10.42.9.1", "10.99.0.1", 64, 100, true)
	// A GRE packet that says IPv4 but carries IPv6.
	v6 := inner(t, "2001:db8:9::1", "2001:db8:1::1", 64, 9000, 100)
	mislabelled := serialize(t, eth(peerMAC, myMAC, layers.EthernetTypeIPv4), outerIPv4("10.0.4.2", "10.0.4.1", layers.IPProtocolGRE, 0),
		&layers.GRE{Protocol: layers.EthernetTypeIPv4}, gopacket.Payload(v6))

	cases := []progCase{
		{name: "decap4-fou", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, local), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, local), reasons: []string{"decap"}},
		{name: "decap4-fou-short", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, short), tc: tcRedirect, xdp: xdpRedir, out: append(toOverlay(t, short)[:14], short...), reasons: []string{"decap"}},
		{name: "decap4-gre-key", in: gre(t, "10.0.3.2", "10.0.3.1", &key, local), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, local), reasons: []string{"decap"}},
		{name: "decap4-gre", in: gre(t, "10.0.4.2", "10.0.4.1", nil, local), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, local), reasons: []string{"decap"}},
		{name: "transit4-ttl-1-slow-path", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, ttl1), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, ttl1), reasons: []string{"hop-limit", "slow-path"}},
		{name: "transit4-too-big-slow-path", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, tooBig), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, tooBig), reasons: []string{"too-big", "slow-path"}},
		{name: "transit4-no-route-slow-path", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, noRoute), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, noRoute), reasons: []string{"no-route", "slow-path"}},
		{name: "malformed4-ihl", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, append([]byte{0x44}, local[1:]...)), tc: tcShot, xdp: xdpDrop, reasons: []string{"drop-malformed"}},
		{name: "malformed4-gre-says-ipv4", in: mislabelled, tc: tcShot, xdp: xdpDrop, reasons: []string{"drop-malformed"}},
		// Not from an endpoint: a GRE tunnel of the host's own, left to
		// the stack without the unknown-peer rate limit.
		{name: "gre4-not-endpoint", in: gre(t, "10.9.9.9", "10.0.4.1", nil, local), tc: tcxNext, xdp: xdpPass, reasons: []string{"pass-not-tunnel"}},
	}
	// Transit between shapes: in over tunnel 1 (FOU) or 3 (GRE with key),
	// out of tunnel 2 (FOU), 3 or 4 (GRE), TTL decremented.
	type hop struct {
		name string
		in   func(pkt []byte) []byte
		fou  bool
	}
	froms := []hop{
		{"fou", func(p []byte) []byte { return fou(t, "10.0.1.2", "10.0.1.1", 0xc123, p) }, true},
		{"gre-key", func(p []byte) []byte { return gre(t, "10.0.3.2", "10.0.3.1", &key, p) }, false},
	}
	for _, from := range froms {
		for _, to := range []int{1, 2, 3} { // index in fixtureTunnels
			tn := fixtureTunnels[to]
			pkt := inner4(t, "10.42.9.1", fmt.Sprintf("10.42.%d.5", tn.ID), 64, 100, true)
			out := func(srcMAC, dstMAC net.HardwareAddr) []byte {
				if tn.Type == FOU {
					return fouFrame(t, srcMAC, dstMAC, tn.Local.String(), tn.Remote.String(), 0xc123, withTTL(pkt, 63))
				}
				var k *uint32
				if tn.HasKey {
					k = &tn.Key
				}
				return greFrame(t, srcMAC, dstMAC, tn.Local.String(), tn.Remote.String(), k, withTTL(pkt, 63))
			}
			cases = append(cases, progCase{
				name: "transit4-" + from.name + "-to-" + tn.Type.String() + map[bool]string{true: "-key"}[tn.HasKey],
				in:   from.in(pkt), tc: tcRedirect, xdp: xdpRedir, reasons: []string{"transit"},
				out: out(peerMAC, myMAC), xdpOut: out(myMAC, learntMAC(tn.ID)),
				anySport: tn.Type == FOU && !from.fou,
			})
		}
	}
	return cases
}

func TestProgRunOverlayEgressIPv4(t *testing.T) {
	d, progs := loadFixtureDatapath4(t)
	runCases(t, d, progs.OverlayEgress, egress4Cases(t), false)
}

func TestProgRunUnderlayTCIPv4(t *testing.T) {
	d, progs := loadFixtureDatapath4(t)
	runCases(t, d, progs.UnderlayTc, underlay4Cases(t), false)
}

func TestProgRunUnderlayXDPIPv4(t *testing.T) {
	d, progs := loadFixtureDatapath4(t)
	runCases(t, d, progs.UnderlayXdp, underlay4Cases(t), true)
}
