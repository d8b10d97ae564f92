package loader

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// The fixture world's device tunnel: tunnel 7 is the layer-3 device 17,
// MTU 1400, towards 2001:db8:7::/48.
const (
	fixtureDeviceTunnel  = 7
	fixtureDeviceIfindex = 17
	fixtureDeviceMTU     = 1400
)

func addFixtureDevice(t *testing.T, d *Datapath) {
	require.NoError(t, d.AddTunnel(Tunnel{ID: fixtureDeviceTunnel, Type: DEVICE, Ifindex: fixtureDeviceIfindex, MTU: fixtureDeviceMTU}))
	require.NoError(t, d.AddRoute(netip.MustParsePrefix("2001:db8:7::/48"), netip.Prefix{}, Nexthop{Tunnel: fixtureDeviceTunnel}))
}

// Into a device tunnel from the overlay: the inner packet as it is (the
// kernel strips the Ethernet header at the redirect to a layer-3 device),
// or Packet Too Big with the device tunnel's MTU.
func TestProgRunOverlayEgressDevice(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	addFixtureDevice(t, d)
	toDevice := inner(t, "2001:db8:1::1", "2001:db8:7::5", 64, 9000, 100)
	tooBig := inner(t, "2001:db8:1::1", "2001:db8:7::5", 64, 9000, 1450)
	runCases(t, d, progs.OverlayEgress, []progCase{
		{name: "egress-device", in: toOverlay(t, toDevice), tc: tcRedirect, reasons: []string{"device-out"}},
		{name: "egress-device-too-big", in: toOverlay(t, tooBig), tc: tcRedirect,
			out: icmpErr(t, 2, 0, fixtureDeviceMTU, tooBig), reasons: []string{"too-big", "icmp-sent"}},
	}, false)
}

// From an underlay tunnel into a device tunnel: tcx strips the outer
// headers and sends the inner packet, one hop less, to the device; XDP
// leaves it to the slow path.
func TestProgRunUnderlayDevice(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	addFixtureDevice(t, d)
	pkt := inner(t, "2001:db8:9::1", "2001:db8:7::5", 64, 9000, 100)
	tooBig := inner(t, "2001:db8:9::1", "2001:db8:7::5", 64, 9000, 1450)
	cases := []progCase{
		{name: "transit-fou-to-device", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, pkt), tc: tcRedirect, xdp: xdpRedir,
			out:     serialize(t, eth(peerMAC, myMAC, layers.EthernetTypeIPv6), gopacket.Payload(withHop(pkt, 63))),
			xdpOut:  toOverlay(t, pkt),
			reasons: []string{"transit", "device-out"}, xdpReasons: []string{"device-slow", "slow-path"}},
		{name: "transit-to-device-too-big", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, tooBig), tc: tcRedirect, xdp: xdpRedir,
			out: toOverlay(t, tooBig), reasons: []string{"too-big", "slow-path"}},
	}
	t.Run("tc", func(t *testing.T) { runCases(t, d, progs.UnderlayTc, cases, false) })
	t.Run("xdp", func(t *testing.T) { runCases(t, d, progs.UnderlayXdp, cases, true) })
}
