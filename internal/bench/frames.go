package bench

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

// smallPayload is the UDP payload of the small-packet workload (as iperf3
// -l 64).
const smallPayload = 64

// discardPort is where the generator's UDP goes: nothing listens, so the
// receiver counts each datagram in Udp6NoPorts (IPv4: Udp NoPorts) and
// drops it.
const discardPort = 9

func serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...)
	return buf.Bytes(), err
}

// udp is an IPv6 or IPv4 UDP datagram (the addresses' family) with a
// payload of n bytes.
func udp(src, dst netip.Addr, n int) ([]byte, error) {
	var ip interface {
		gopacket.SerializableLayer
		gopacket.NetworkLayer
	}
	if src.Is4() {
		ip = &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	} else {
		ip = &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	u := &layers.UDP{SrcPort: 4000, DstPort: discardPort}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	return serialize(ip, u, gopacket.Payload(make([]byte, n)))
}

// ethernet frames payload (IPv6 or IPv4 by its version nibble).
func ethernet(src, dst net.HardwareAddr, payload []byte) ([]byte, error) {
	typ := layers.EthernetTypeIPv6
	if payload[0]>>4 == 4 {
		typ = layers.EthernetTypeIPv4
	}
	return serialize(&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: typ}, gopacket.Payload(payload))
}

// encapsulate wraps an IPv6 or IPv4 packet as the data plane sends it through
// tunnel t: FOU (outer UDP to the tunnel's port, checksum 0) or GRE, with
// the tunnel's key if it has one.
func encapsulate(t loader.Tunnel, inner []byte) ([]byte, error) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, SrcIP: t.Local.AsSlice(), DstIP: t.Remote.AsSlice()}
	switch t.Type {
	case loader.FOU:
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: 0xc123, DstPort: layers.UDPPort(t.Port)}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		b, err := serialize(ip, u, gopacket.Payload(inner))
		if err == nil {
			b[26], b[27] = 0, 0 // UDP checksum
		}
		return b, err
	case loader.GRE:
		ip.Protocol = layers.IPProtocolGRE
		proto := layers.EthernetTypeIPv6
		if inner[0]>>4 == 4 {
			proto = layers.EthernetTypeIPv4
		}
		return serialize(ip, &layers.GRE{Protocol: proto, KeyPresent: t.HasKey, Key: t.Key}, gopacket.Payload(inner))
	}
	return nil, fmt.Errorf("unknown encapsulation %v", t.Type)
}
