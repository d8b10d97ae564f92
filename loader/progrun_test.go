package loader

import (
	"encoding/hex"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

var update = flag.Bool("update", false, "rewrite the packet fixtures in testdata/dataplane")

// Fixture world: this node is 2001:db8:1::1 behind tunnels 1 (FOU from
// 10.0.1.2), 2 (FOU to 10.0.2.2), 3 (GRE key 7 with 10.0.3.2), 4 (GRE with
// 10.0.4.2), 5 (FOU to 10.0.5.2, MTU 1280).
var (
	overlayMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	peerMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	myMAC      = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	l2MAC      = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x22} // learnt for tunnel 2
	nodeAddr   = netip.MustParseAddr("2001:db8:1::1")
)

const (
	overlayIfindex = 41
	peerIfindex    = 42
	fouPort        = 5555

	tcRedirect = 7
	tcShot     = 2
	tcxNext    = 0xffffffff
	xdpDrop    = 1
	xdpPass    = 2
	xdpRedir   = 4
)

var fixtureTunnels = []Tunnel{
	{ID: 1, Type: FOU, Local: v4("10.0.1.1"), Remote: v4("10.0.1.2"), Port: fouPort, MTU: 1472, NextHop: v4("10.0.1.2"), Ifindex: 11},
	{ID: 2, Type: FOU, Local: v4("10.0.2.1"), Remote: v4("10.0.2.2"), Port: fouPort, MTU: 1472, NextHop: v4("10.0.2.2"), Ifindex: 12},
	{ID: 3, Type: GRE, Local: v4("10.0.3.1"), Remote: v4("10.0.3.2"), HasKey: true, Key: 7, MTU: 1472, NextHop: v4("10.0.3.2"), Ifindex: 13},
	{ID: 4, Type: GRE, Local: v4("10.0.4.1"), Remote: v4("10.0.4.2"), MTU: 1476, NextHop: v4("10.0.4.254"), Ifindex: 14},
	{ID: 5, Type: FOU, Local: v4("10.0.5.1"), Remote: v4("10.0.5.2"), Port: fouPort, MTU: 1280, NextHop: v4("10.0.5.2"), Ifindex: 15},
	{ID: 6, Type: FOU, Local: v4("10.0.6.1"), Remote: v4("10.0.6.2"), Port: fouPort, MTU: 1472, NextHop: v4("10.0.6.2"), Ifindex: 16, FixedSourcePort: true},
}

var fixtureRoutes = map[string]Nexthop{
	"2001:db8:1::/48": {Local: true},
	"2001:db8:2::/48": {Tunnel: 2},
	"2001:db8:3::/48": {Tunnel: 3},
	"2001:db8:4::/48": {Tunnel: 4},
	"2001:db8:5::/48": {Tunnel: 5},
	"2001:db8:6::/48": {Tunnel: 6},
}

// learntMAC is the link-layer address XDP knows for a tunnel's next hop:
// tunnels 3 and 4 also receive frames (from peerMAC), which teach it.
func learntMAC(tunnel uint32) net.HardwareAddr {
	if tunnel == 2 {
		return l2MAC
	}
	return peerMAC
}

func v4(s string) netip.Addr { return netip.MustParseAddr(s) }

// unpinnedSpec is the object with pinning turned off: a test's maps live
// only as long as the test.
func unpinnedSpec(t *testing.T) *ebpf.CollectionSpec {
	spec, err := loadDatapath()
	require.NoError(t, err)
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	return spec
}

// loadFixtureDatapath loads the programs with the fixture configuration
// and fills the maps.
func loadFixtureDatapath(t *testing.T) (*Datapath, *datapathPrograms) {
	return loadFixtureDatapathWith(t, config{})
}

// loadFixtureDatapathWith is loadFixtureDatapath with the test-only
// settings of cfg.
func loadFixtureDatapathWith(t *testing.T, cfg config) (*Datapath, *datapathPrograms) {
	netns.RequireRoot(t)
	spec := unpinnedSpec(t)
	cfg = config{fouPort: fouPort, overlayIfindex: overlayIfindex, peerIfindex: peerIfindex,
		nodeAddr: nodeAddr, unknownPeerPPS: 100, icmpPPS: 100, decapCompat: cfg.decapCompat}
	copy(cfg.overlayMAC[:], overlayMAC)
	require.NoError(t, cfg.apply(spec))
	var objs datapathObjects
	require.NoError(t, spec.LoadAndAssign(&objs, nil))
	t.Cleanup(func() { objs.Close() })
	d := &Datapath{maps: objs.datapathMaps}
	for _, tn := range fixtureTunnels {
		require.NoError(t, d.AddTunnel(tn))
	}
	for p, nh := range fixtureRoutes {
		require.NoError(t, d.AddRoute(netip.MustParsePrefix(p), netip.Prefix{}, nh))
	}
	for _, r := range fixtureNativeRoutes {
		require.NoError(t, d.SetNativeRoute(r))
	}
	for _, id := range []uint32{2, 3, 4} {
		l2 := datapathTunnelL2{Ifindex: 10 + id}
		copy(l2.Smac[:], myMAC)
		copy(l2.Dmac[:], learntMAC(id))
		require.NoError(t, d.maps.TunnelL2s.Put(&id, &l2))
	}
	return d, &objs.datapathPrograms
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...))
	return buf.Bytes()
}

// inner builds an IPv6 UDP packet of size bytes (at least 48).
func inner(t *testing.T, src, dst string, hop uint8, dport uint16, size int) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: hop,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	u := &layers.UDP{SrcPort: 4000, DstPort: layers.UDPPort(dport)}
	require.NoError(t, u.SetNetworkLayerForChecksum(ip))
	payload := make([]byte, size-48)
	for i := range payload {
		payload[i] = byte(i)
	}
	return serialize(t, ip, u, gopacket.Payload(payload))
}

func eth(src, dst net.HardwareAddr, typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: typ}
}

func outerIPv4(src, dst string, proto layers.IPProtocol, flags layers.IPv4Flag) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, Flags: flags,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

// fouFrame is an Ethernet frame carrying in over FOU, outer UDP checksum 0
// as the data plane writes it.
func fouFrame(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst string, sport uint16, in []byte) []byte {
	ip := outerIPv4(src, dst, layers.IPProtocolUDP, 0)
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: fouPort}
	require.NoError(t, u.SetNetworkLayerForChecksum(ip))
	f := serialize(t, eth(srcMAC, dstMAC, layers.EthernetTypeIPv4), ip, u, gopacket.Payload(in))
	f[14+20+6], f[14+20+7] = 0, 0
	return f
}

func fou(t *testing.T, src, dst string, sport uint16, in []byte) []byte {
	return fouFrame(t, peerMAC, myMAC, src, dst, sport, in)
}

// innerType is the Ethernet type of an inner packet, by its version.
func innerType(in []byte) layers.EthernetType {
	if len(in) > 0 && in[0]>>4 == 4 {
		return layers.EthernetTypeIPv4
	}
	return layers.EthernetTypeIPv6
}

func greFrame(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst string, key *uint32, in []byte) []byte {
	g := &layers.GRE{Protocol: innerType(in)}
	if key != nil {
		g.KeyPresent, g.Key = true, *key
	}
	return serialize(t, eth(srcMAC, dstMAC, layers.EthernetTypeIPv4), outerIPv4(src, dst, layers.IPProtocolGRE, 0), g, gopacket.Payload(in))
}

func gre(t *testing.T, src, dst string, key *uint32, in []byte) []byte {
	return greFrame(t, peerMAC, myMAC, src, dst, key, in)
}

func toOverlay(t *testing.T, in []byte) []byte {
	return serialize(t, eth(overlayMAC, overlayMAC, innerType(in)), gopacket.Payload(in))
}

// icmpErr is the ICMPv6 error the egress program builds about pkt.
func icmpErr(t *testing.T, typ, code uint8, info uint32, pkt []byte) []byte {
	src := net.IP(pkt[8:24])
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 64, SrcIP: nodeAddr.AsSlice(), DstIP: src}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	require.NoError(t, ic.SetNetworkLayerForChecksum(ip))
	quote := pkt[:min(len(pkt), 1232)]
	body := append([]byte{byte(info >> 24), byte(info >> 16), byte(info >> 8), byte(info)}, quote...)
	return serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6), ip, ic, gopacket.Payload(body))
}

func withHop(pkt []byte, hop uint8) []byte {
	out := append([]byte(nil), pkt...)
	out[7] = hop
	return out
}

type progCase struct {
	name     string
	in       []byte
	tc, xdp  uint32 // expected verdicts (0: program not run on this case)
	out      []byte // expected frame; nil: unchanged
	xdpOut   []byte // when XDP's frame differs from tc's
	anySport bool   // FOU source port is a flow hash: checked for 0xc000 only
	// reasons are the counters the case bumps, each by one; every other
	// counter stays. xdpReasons when XDP's differ.
	reasons, xdpReasons []string
}

func egressCases(t *testing.T) []progCase {
	ov := func(p []byte) []byte {
		return serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6), gopacket.Payload(p))
	}
	toFOU := inner(t, "2001:db8:1::1", "2001:db8:2::5", 64, 9000, 100)
	toGRE := inner(t, "2001:db8:1::1", "2001:db8:3::5", 64, 9000, 100)
	toFixed := inner(t, "2001:db8:1::1", "2001:db8:6::5", 64, 9000, 100)
	toGRENoKey := inner(t, "2001:db8:1::1", "2001:db8:4::5", 64, 9000, 100)
	noRoute := inner(t, "2001:db8:1::1", "2001:db9::1", 64, 9000, 100)
	tooBig := inner(t, "2001:db8:1::1", "2001:db8:5::5", 64, 9000, 1300)
	bigQuote := inner(t, "2001:db8:1::1", "2001:db9::1", 64, 9000, 1400)
	missing := inner(t, "2001:db8:1::1", "2001:db8:1::9", 64, 9000, 100)
	mcast := inner(t, "2001:db8:1::1", "ff02::1", 1, 9000, 100)
	key := uint32(7)
	greOut := func(p []byte, tn int, k *uint32) []byte {
		g := &layers.GRE{Protocol: layers.EthernetTypeIPv6}
		if k != nil {
			g.KeyPresent, g.Key = true, *k
		}
		return serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv4),
			outerIPv4(fixtureTunnels[tn].Local.String(), fixtureTunnels[tn].Remote.String(), layers.IPProtocolGRE, 0), g, gopacket.Payload(p))
	}
	return []progCase{
		{name: "encap-fou", in: ov(toFOU), tc: tcRedirect, anySport: true, reasons: []string{"encap"},
			out: fouFrame(t, overlayMAC, overlayMAC, "10.0.2.1", "10.0.2.2", 0, toFOU)},
		{name: "encap-fou-fixed-sport", in: ov(toFixed), tc: tcRedirect, reasons: []string{"encap"},
			out: fouFrame(t, overlayMAC, overlayMAC, "10.0.6.1", "10.0.6.2", fouPort, toFixed)},
		{name: "encap-gre-key", in: ov(toGRE), tc: tcRedirect, out: greOut(toGRE, 2, &key), reasons: []string{"encap"}},
		{name: "encap-gre", in: ov(toGRENoKey), tc: tcRedirect, out: greOut(toGRENoKey, 3, nil), reasons: []string{"encap"}},
		{name: "egress-no-route", in: ov(noRoute), tc: tcRedirect, out: icmpErr(t, 1, 0, 0, noRoute), reasons: []string{"no-route", "icmp-sent"}},
		{name: "egress-no-route-quote-truncated", in: ov(bigQuote), tc: tcRedirect, out: icmpErr(t, 1, 0, 0, bigQuote), reasons: []string{"no-route", "icmp-sent"}},
		{name: "egress-too-big", in: ov(tooBig), tc: tcRedirect, out: icmpErr(t, 2, 0, 1280, tooBig), reasons: []string{"too-big", "icmp-sent"}},
		{name: "egress-local-address-missing", in: ov(missing), tc: tcRedirect, out: icmpErr(t, 1, 3, 0, missing), reasons: []string{"no-route", "icmp-sent"}},
		{name: "egress-multicast", in: ov(mcast), tc: tcShot, reasons: []string{"drop-not-routable"}},
		{name: "egress-malformed-version", in: ov(append([]byte{0x45}, toFOU[1:]...)), tc: tcShot, reasons: []string{"drop-malformed"}},
		{name: "egress-segmented-transit-passes", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, toFOU), tc: tcxNext},
	}
}

func underlayCases(t *testing.T) []progCase {
	key := uint32(7)
	wrongKey := uint32(8)
	local := inner(t, "2001:db8:9::1", "2001:db8:1::1", 64, 9000, 100)
	transit := inner(t, "2001:db8:9::1", "2001:db8:2::5", 64, 9000, 100)
	transitFixed := inner(t, "2001:db8:9::1", "2001:db8:6::5", 64, 9000, 100)
	babel := inner(t, "fe80::2", "fe80::1", 1, 6696, 60)
	hop1 := inner(t, "2001:db8:9::1", "2001:db8:2::5", 1, 9000, 100)
	tooBig := inner(t, "2001:db8:9::1", "2001:db8:5::5", 64, 9000, 1300)
	noRoute := inner(t, "2001:db8:9::1", "2001:db9::1", 64, 9000, 100)

	// IPv6 with a hop-by-hop options header, and a fragment.
	hbh := serialize(t, &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6HopByHop, HopLimit: 64,
		SrcIP: net.ParseIP("2001:db8:9::1"), DstIP: net.ParseIP("2001:db8:1::1")},
		gopacket.Payload([]byte{59, 0, 1, 4, 0, 0, 0, 0})) // no next header; PadN
	frag := serialize(t, &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6Fragment, HopLimit: 64,
		SrcIP: net.ParseIP("2001:db8:9::1"), DstIP: net.ParseIP("2001:db8:2::5")},
		&layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: 0, MoreFragments: true, Identification: 1}, gopacket.Payload(make([]byte, 64)))

	transitOut := func(in []byte, srcMAC, dstMAC net.HardwareAddr) []byte {
		return fouFrame(t, srcMAC, dstMAC, "10.0.2.1", "10.0.2.2", 0xc123, withHop(in, 63))
	}
	outerFrag := fou(t, "10.0.1.2", "10.0.1.1", 0xc123, local)
	outerFrag[14+6] |= 0x20 // more fragments
	plainIP := outerIPv4("10.0.1.2", "10.0.1.1", layers.IPProtocolTCP, 0)
	plainTCP := &layers.TCP{SrcPort: 1, DstPort: 2}
	require.NoError(t, plainTCP.SetNetworkLayerForChecksum(plainIP))
	plain := serialize(t, eth(peerMAC, myMAC, layers.EthernetTypeIPv4), plainIP, plainTCP, gopacket.Payload([]byte("x")))

	return append([]progCase{
		{name: "decap-fou", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, local), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, local), reasons: []string{"decap"}},
		{name: "decap-gre-key", in: gre(t, "10.0.3.2", "10.0.3.1", &key, local), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, local), reasons: []string{"decap"}},
		{name: "decap-gre", in: gre(t, "10.0.4.2", "10.0.4.1", nil, local), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, local), reasons: []string{"decap"}},
		{name: "decap-ipv6-extension-header", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, hbh), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, hbh), reasons: []string{"decap"}},
		{name: "transit-fou", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, transit), tc: tcRedirect, xdp: xdpRedir,
			out: transitOut(transit, peerMAC, myMAC), xdpOut: transitOut(transit, myMAC, l2MAC), reasons: []string{"transit"}},
		{name: "transit-fou-fixed-sport", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, transitFixed), tc: tcRedirect, xdp: xdpRedir,
			out:    fouFrame(t, peerMAC, myMAC, "10.0.6.1", "10.0.6.2", fouPort, withHop(transitFixed, 63)),
			xdpOut: toOverlay(t, transitFixed), reasons: []string{"transit"}, xdpReasons: []string{"no-neigh", "slow-path"}},
		{name: "transit-fragment", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, frag), tc: tcRedirect, xdp: xdpRedir,
			out: transitOut(frag, peerMAC, myMAC), xdpOut: transitOut(frag, myMAC, l2MAC), reasons: []string{"transit"}},
		{name: "control-babel", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, babel), tc: tcxNext, xdp: xdpPass, reasons: []string{"pass-control"}},
		{name: "unknown-peer", in: fou(t, "10.9.9.9", "10.0.1.1", 0xc123, local), tc: tcxNext, xdp: xdpPass, reasons: []string{"pass-unknown-peer"}},
		{name: "gre-wrong-key", in: gre(t, "10.0.3.2", "10.0.3.1", &wrongKey, local), tc: tcxNext, xdp: xdpPass, reasons: []string{"pass-unknown-peer"}},
		{name: "not-tunnel", in: plain, tc: tcxNext, xdp: xdpPass, reasons: []string{"pass-not-tunnel"}},
		{name: "outer-fragment", in: outerFrag, tc: tcxNext, xdp: xdpPass, reasons: []string{"outer-fragment", "pass-not-tunnel"}},
		{name: "truncated-inner", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, local)[:14+28+20], tc: tcShot, xdp: xdpDrop, reasons: []string{"drop-malformed"}},
		{name: "malformed-inner-version", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, append([]byte{0x55}, local[1:]...)), tc: tcShot, xdp: xdpDrop, reasons: []string{"drop-malformed"}},
		{name: "hop-limit-1-slow-path", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, hop1), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, hop1), reasons: []string{"hop-limit", "slow-path"}},
		{name: "too-big-slow-path", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, tooBig), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, tooBig), reasons: []string{"too-big", "slow-path"}},
		{name: "no-route-slow-path", in: fou(t, "10.0.1.2", "10.0.1.1", 0xc123, noRoute), tc: tcRedirect, xdp: xdpRedir, out: toOverlay(t, noRoute), reasons: []string{"no-route", "slow-path"}},
	}, shapeCases(t)...)
}

// shapeCases carry a packet from a tunnel of each shape (FOU: tunnel 1,
// GRE with key: 3, GRE: 4) into a tunnel of each shape (FOU: 2, GRE with
// key: 3, GRE: 4): the outer headers are resized and rewritten whole, the
// inner packet only loses one hop. Out of FOU, a packet that came in over
// FOU keeps its source port; one that came over GRE gets a flow hash.
func shapeCases(t *testing.T) []progCase {
	key := uint32(7)
	type shape struct {
		name   string
		tunnel int // index in fixtureTunnels
		dst    string
	}
	shapes := []shape{{"fou", 1, "2001:db8:2::5"}, {"gre-key", 2, "2001:db8:3::5"}, {"gre", 3, "2001:db8:4::5"}}
	in := func(s shape, pkt []byte) []byte {
		remote, local := fixtureTunnels[s.tunnel].Remote.String(), fixtureTunnels[s.tunnel].Local.String()
		switch s.name {
		case "fou":
			return fou(t, "10.0.1.2", "10.0.1.1", 0xc123, pkt)
		case "gre-key":
			return gre(t, remote, local, &key, pkt)
		}
		return gre(t, remote, local, nil, pkt)
	}
	out := func(s shape, srcMAC, dstMAC net.HardwareAddr, pkt []byte) []byte {
		tn := fixtureTunnels[s.tunnel]
		switch s.name {
		case "fou":
			return fouFrame(t, srcMAC, dstMAC, tn.Local.String(), tn.Remote.String(), 0xc123, pkt)
		case "gre-key":
			return greFrame(t, srcMAC, dstMAC, tn.Local.String(), tn.Remote.String(), &key, pkt)
		}
		return greFrame(t, srcMAC, dstMAC, tn.Local.String(), tn.Remote.String(), nil, pkt)
	}
	var cases []progCase
	for _, from := range shapes {
		for _, to := range shapes {
			pkt := inner(t, "2001:db8:9::1", to.dst, 64, 9000, 100)
			cases = append(cases, progCase{
				name: "transit-" + from.name + "-to-" + to.name, in: in(from, pkt),
				tc: tcRedirect, xdp: xdpRedir, reasons: []string{"transit"},
				out:    out(to, peerMAC, myMAC, withHop(pkt, 63)),
				xdpOut: out(to, myMAC, learntMAC(fixtureTunnels[to.tunnel].ID), withHop(pkt, 63)),
				// Out of FOU from GRE: a flow hash.
				anySport: to.name == "fou" && from.name != "fou",
			})
		}
	}
	return cases
}

// fixture writes (with -update) or reads a frame under testdata/dataplane.
func fixture(t *testing.T, name string, frame []byte) []byte {
	path := filepath.Join("..", "testdata", "dataplane", name+".hex")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(frame)+"\n"), 0o644))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err, "missing fixture; run go test ./loader -run ProgRun -update")
	out, err := hex.DecodeString(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return out
}

func runCases(t *testing.T, d *Datapath, prog *ebpf.Program, cases []progCase, xdp bool) {
	for _, c := range cases {
		want, expect, reasons := c.tc, c.out, c.reasons
		if xdp {
			want = c.xdp
			if c.xdpOut != nil {
				expect = c.xdpOut
			}
			if c.xdpReasons != nil {
				reasons = c.xdpReasons
			}
		}
		if want == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			in := fixture(t, c.name+".in", c.in)
			if expect == nil {
				expect = in
			}
			suffix := ".out"
			if xdp && c.xdpOut != nil {
				suffix = ".xdp.out"
			}
			expect = fixture(t, c.name+suffix, expect)
			before, err := d.Reasons()
			require.NoError(t, err)
			opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256)}
			ret, err := prog.Run(opts)
			require.NoError(t, err)
			require.Equal(t, want, ret, "verdict")
			after, err := d.Reasons()
			require.NoError(t, err)
			bumped := map[string]uint64{}
			for name, v := range after {
				if v != before[name] {
					bumped[name] = v - before[name]
				}
			}
			wantBumped := map[string]uint64{}
			for _, r := range reasons {
				wantBumped[r] = 1
			}
			require.Equal(t, wantBumped, bumped, "reason counters")
			got := opts.DataOut // trimmed to the frame's real length
			if c.anySport {
				require.Equal(t, uint8(0xc0), got[34]&0xc0, "FOU source port in the dynamic range")
				got = append([]byte(nil), got...)
				if len(got) > 35 && len(expect) > 35 {
					got[34], got[35] = expect[34], expect[35]
				}
			}
			require.Equal(t, hex.EncodeToString(expect), hex.EncodeToString(got))
		})
	}
}

func TestProgRunOverlayEgress(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	runCases(t, d, progs.OverlayEgress, egressCases(t), false)
}

func TestProgRunUnderlayTC(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	runCases(t, d, progs.UnderlayTc, underlayCases(t), false)
}

func TestProgRunUnderlayXDP(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	runCases(t, d, progs.UnderlayXdp, underlayCases(t), true)
}
