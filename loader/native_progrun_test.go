package loader

import (
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// The fixture gateway's native routes: 2a00:1::/32 through an upstream of
// MTU 1500, 2a00:2::/32 through one of MTU 1280.
var (
	upstreamMAC         = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	fixtureNativeRoutes = []NativeRoute{
		{Dst: netip.MustParsePrefix("2a00:1::/32"), NextHop: netip.MustParseAddr("fd00:ffff::1"), Ifindex: 17, MTU: 1500},
		{Dst: netip.MustParsePrefix("2a00:2::/32"), NextHop: netip.MustParseAddr("fd00:ffff::2"), Ifindex: 18, MTU: 1280},
	}
)

// nativeOutCases: overlay traffic to the internet arriving at a gateway.
// At tc it leaves decapsulated, one hop less, for the upstream (the kernel
// fills in the link layer: the frame keeps its Ethernet addresses); XDP
// has no neighbour resolution and hands it to the kernel.
func nativeOutCases(t *testing.T) []progCase {
	key := uint32(7)
	out := inner(t, "2001:db8:9::1", "2a00:1::5", 64, 9000, 100)
	hop1 := inner(t, "2001:db8:9::1", "2a00:1::5", 1, 9000, 100)
	tooBig := inner(t, "2001:db8:9::1", "2a00:2::5", 64, 9000, 1300)
	upstream := func(p []byte) []byte {
		return serialize(t, eth(peerMAC, myMAC, layers.EthernetTypeIPv6), gopacket.Payload(withHop(p, 63)))
	}
	slow := []string{"native-slow", "slow-path"}
	return []progCase{
		{name: "native-out-fou", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, out), tc: tcRedirect, xdp: xdpRedir,
			out: upstream(out), xdpOut: toOverlay(t, out), reasons: []string{"native-out"}, xdpReasons: slow},
		{name: "native-out-gre-key", in: gre(t, "10.0.3.2", "10.0.3.1", &key, out), tc: tcRedirect, xdp: xdpRedir,
			out: upstream(out), xdpOut: toOverlay(t, out), reasons: []string{"native-out"}, xdpReasons: slow},
		{name: "native-out-gre", in: gre(t, "10.0.4.2", "10.0.4.1", nil, out), tc: tcRedirect, xdp: xdpRedir,
			out: upstream(out), xdpOut: toOverlay(t, out), reasons: []string{"native-out"}, xdpReasons: slow},
		{name: "native-out-hop-limit-1", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, hop1), tc: tcRedirect, xdp: xdpRedir,
			out: toOverlay(t, hop1), reasons: []string{"hop-limit", "slow-path"}},
		{name: "native-out-too-big", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, tooBig), tc: tcRedirect, xdp: xdpRedir,
			out: toOverlay(t, tooBig), reasons: []string{"too-big", "slow-path"}},
	}
}

func TestProgRunNativeOutTC(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	runCases(t, d, progs.UnderlayTc, nativeOutCases(t), false)
}

// The same frames by the decapsulation of kernels before 6.3.
func TestProgRunNativeOutTCBefore63(t *testing.T) {
	d, progs := loadFixtureDatapathWith(t, config{decapCompat: true})
	runCases(t, d, progs.UnderlayTc, nativeOutCases(t), false)
}

func TestProgRunNativeOutXDP(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	runCases(t, d, progs.UnderlayXdp, nativeOutCases(t), true)
}

// nativeInCases: traffic from the internet at a gateway's upstream
// interface. To an overlay destination it is encapsulated into the tunnel
// of its route, one hop less; the rest goes on to the stack.
func nativeInCases(t *testing.T) []progCase {
	key := uint32(7)
	toFOU := inner(t, "2a00:1::5", "2001:db8:2::5", 64, 9000, 100)
	toGRE := inner(t, "2a00:1::5", "2001:db8:3::5", 64, 9000, 100)
	local := inner(t, "2a00:1::5", "2001:db8:1::1", 64, 9000, 100)
	outside := inner(t, "2a00:1::5", "2a00:1::9", 64, 9000, 100)
	hop1 := inner(t, "2a00:1::5", "2001:db8:2::5", 1, 9000, 100)
	tooBig := inner(t, "2a00:1::5", "2001:db8:5::5", 64, 9000, 1300)
	noTunnel := inner(t, "2a00:1::5", "2001:db8:7::5", 64, 9000, 100)
	mcast := inner(t, "fe80::1", "ff02::1", 255, 9000, 100)
	from := func(p []byte) []byte {
		return serialize(t, eth(upstreamMAC, myMAC, layers.EthernetTypeIPv6), gopacket.Payload(p))
	}
	tn := func(i int) (string, string) {
		return fixtureTunnels[i].Local.String(), fixtureTunnels[i].Remote.String()
	}
	l2, r2 := tn(1)
	l3, r3 := tn(2)
	plainIP := outerIPv4("10.9.9.9", "10.0.1.1", layers.IPProtocolUDP, 0)
	plain := serialize(t, eth(upstreamMAC, myMAC, layers.EthernetTypeIPv4), plainIP, gopacket.Payload(make([]byte, 30)))
	slow := func(r string) []string { return []string{r, "native-slow"} }
	return []progCase{
		{name: "native-in-fou", in: from(toFOU), tc: tcRedirect, anySport: true, reasons: []string{"encap", "native-in"},
			out: fouFrame(t, upstreamMAC, myMAC, l2, r2, 0, withHop(toFOU, 63))},
		{name: "native-in-gre-key", in: from(toGRE), tc: tcRedirect, reasons: []string{"encap", "native-in"},
			out: greFrame(t, upstreamMAC, myMAC, l3, r3, &key, withHop(toGRE, 63))},
		{name: "native-in-local", in: from(local), tc: tcxNext, reasons: []string{"pass-not-tunnel"}},
		{name: "native-in-not-overlay", in: from(outside), tc: tcxNext, reasons: []string{"pass-not-tunnel"}},
		{name: "native-in-multicast", in: from(mcast), tc: tcxNext, reasons: []string{"pass-not-tunnel"}},
		{name: "native-in-hop-limit-1", in: from(hop1), tc: tcxNext, reasons: slow("hop-limit")},
		{name: "native-in-too-big", in: from(tooBig), tc: tcxNext, reasons: slow("too-big")},
		{name: "native-in-no-tunnel", in: from(noTunnel), tc: tcxNext, reasons: slow("no-route")},
		{name: "native-in-ipv4", in: plain, tc: tcxNext},
	}
}

func TestProgRunNativeIngress(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	// A route whose tunnel is gone.
	k := routeKey(netip.MustParsePrefix("2001:db8:7::/48"))
	require.NoError(t, d.maps.Routes.Update(&k, &datapathRoute{Tunnel: 99}, ebpf.UpdateAny))
	runCases(t, d, progs.NativeIngress, nativeInCases(t), false)
}
