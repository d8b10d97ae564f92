package loader

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"
)

// skbContext is struct __sk_buff as BPF_PROG_TEST_RUN takes and returns
// it; priority is its 9th word.
type skbContext [192]byte

func (c *skbContext) priority() uint32 { return binary.NativeEndian.Uint32(c[32:]) }

// classFixture adds class 1 (queues 2-3, DSCP 46 = EF, priority 1:10) and
// puts the routes to tunnels 2 (FOU) and 5 (MTU 1280) into it.
func classFixture(t *testing.T, d *Datapath) Class {
	c := Class{ID: 1, QueueFirst: 2, QueueCount: 2, DSCP: 46, Priority: 0x10010, Rate: 1e9}
	require.NoError(t, d.SetClass(c))
	for _, p := range []string{"2001:db8:2::/48", "2001:db8:5::/48"} {
		nh := fixtureRoutes[p]
		nh.Class = c.ID
		require.NoError(t, d.SetRoute(netip.MustParsePrefix(p), netip.Prefix{}, nh))
	}
	return c
}

func runEgress(t *testing.T, prog *ebpf.Program, frame []byte) (uint32, []byte, *skbContext) {
	var ctxOut skbContext
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Context: skbContext{}, ContextOut: &ctxOut}
	ret, err := prog.Run(opts)
	require.NoError(t, err)
	return ret, opts.DataOut, &ctxOut
}

// The class step: the packet leaves with the class's priority and outer
// DSCP (valid outer checksum), the inner packet and its traffic class
// untouched; class and queue counters count it. A route without a class
// leaves priority and outer TOS at 0.
func TestProgRunClassStep(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	class := classFixture(t, d)

	in := inner(t, "2001:db8:1::1", "2001:db8:2::5", 64, 9000, 100)
	in[0], in[1] = 0x60|0x2, 0x80 // inner traffic class 0x28 (AF11)
	ov := serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6), gopacket.Payload(in))

	ret, out, ctx := runEgress(t, progs.OverlayEgress, ov)
	require.Equal(t, uint32(tcRedirect), ret)
	require.Equal(t, class.Priority, ctx.priority())
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	outer := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	require.Equal(t, uint8(46<<2), outer.TOS, "outer DSCP")
	csum := outer.Checksum
	require.NoError(t, outer.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}))
	require.Equal(t, csum, outer.Checksum, "outer IPv4 checksum")
	require.Equal(t, in, []byte(pkt.Layer(layers.LayerTypeUDP).LayerPayload()), "inner packet, traffic class included")

	st, err := d.ClassCounters(1)
	require.NoError(t, err)
	require.Equal(t, ClassStats{Packets: 1, Bytes: uint64(len(in))}, st)
	qs, err := d.QueueCounters()
	require.NoError(t, err)
	require.Len(t, qs, 1)
	require.Contains(t, []uint16{2, 3}, qs[0].Queue)
	require.Equal(t, uint64(1), qs[0].Packets)

	// Too big for tunnel 5: refused, counted as a drop of the class.
	big := inner(t, "2001:db8:1::1", "2001:db8:5::5", 64, 9000, 1300)
	ret, _, _ = runEgress(t, progs.OverlayEgress, serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6), gopacket.Payload(big)))
	require.Equal(t, uint32(tcRedirect), ret, "the ICMPv6 error goes back")
	st, err = d.ClassCounters(1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Drops)

	// No class: as before classes.
	plain := inner(t, "2001:db8:1::1", "2001:db8:3::5", 64, 9000, 100)
	_, out, ctx = runEgress(t, progs.OverlayEgress, serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6), gopacket.Payload(plain)))
	require.Zero(t, ctx.priority())
	require.Zero(t, gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4).TOS)

	// A deleted class no longer applies.
	require.NoError(t, d.DeleteClass(1))
	_, out, ctx = runEgress(t, progs.OverlayEgress, ov)
	require.Zero(t, ctx.priority())
	require.Zero(t, gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4).TOS)
	cs, err := d.Classes()
	require.NoError(t, err)
	require.Empty(t, cs)
}

// A flow keeps its queue; flows spread over every queue of the class and
// none outside it.
func TestProgRunClassQueuePerFlow(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	require.NoError(t, d.SetClass(Class{ID: 1, QueueFirst: 4, QueueCount: 4}))
	nh := fixtureRoutes["2001:db8:2::/48"]
	nh.Class = 1
	require.NoError(t, d.SetRoute(netip.MustParsePrefix("2001:db8:2::/48"), netip.Prefix{}, nh))

	queueOf := func(dport uint16) uint16 {
		before, err := d.QueueCounters()
		require.NoError(t, err)
		frame := serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6),
			gopacket.Payload(inner(t, "2001:db8:1::1", "2001:db8:2::5", 64, dport, 100)))
		runEgress(t, progs.OverlayEgress, frame)
		after, err := d.QueueCounters()
		require.NoError(t, err)
		for _, q := range after {
			if !containsQueue(before, q) {
				return q.Queue
			}
		}
		t.Fatal("no queue counted the packet")
		return 0
	}
	seen := map[uint16]bool{}
	for port := uint16(1000); port < 1064; port++ {
		q := queueOf(port)
		require.GreaterOrEqual(t, q, uint16(4))
		require.Less(t, q, uint16(8))
		require.Equal(t, q, queueOf(port), "flow to port %d changed queue", port)
		seen[q] = true
	}
	require.Len(t, seen, 4, "64 flows over 4 queues")
}

func containsQueue(qs []QueueStats, q QueueStats) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// docs/traffic-classes.md, "Routing": a packet to an address of a class
// range is routed by that range's routes only. With a route to the node's
// main prefix and none to its keep-alive prefix, a packet to its keep-alive
// address is refused (no route), not sent towards another of its
// addresses; once the keep-alive prefix has a route, it takes it, in its
// class.
func TestProgRunClassAddressNotRoutedToAnotherClass(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	classFixture(t, d)
	keepAlive := netip.MustParsePrefix("fd00:1:2::/48") // node 2001:db8:2::/48's keep-alive prefix
	pkt := inner(t, "fd00:1:1::1", "fd00:1:2::1", 64, 9000, 100)
	frame := serialize(t, eth(overlayMAC, overlayMAC, layers.EthernetTypeIPv6), gopacket.Payload(pkt))

	ret, out, _ := runEgress(t, progs.OverlayEgress, frame)
	require.Equal(t, uint32(tcRedirect), ret)
	require.Equal(t, hex.EncodeToString(icmpErr(t, 1, 0, 0, pkt)), hex.EncodeToString(out), "no route: ICMPv6 back to the sender")

	require.NoError(t, d.AddRoute(keepAlive, netip.Prefix{}, Nexthop{Tunnel: 2, Class: 1}))
	ret, out, ctx := runEgress(t, progs.OverlayEgress, frame)
	require.Equal(t, uint32(tcRedirect), ret)
	outer := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	require.Equal(t, "10.0.2.2", outer.DstIP.String(), "into the keep-alive route's tunnel")
	require.Equal(t, uint8(46<<2), outer.TOS)
	require.Equal(t, uint32(0x10010), ctx.priority())
}

// The transit applies the class of the next route too: the packet leaves
// for the next tunnel with the class's outer DSCP (valid checksum), counted
// in the class, and at tcx with its priority; the inner packet only loses
// its hop.
func TestProgRunClassTransit(t *testing.T) {
	d, progs := loadFixtureDatapath(t)
	class := classFixture(t, d)
	pkt := inner(t, "2001:db8:9::1", "2001:db8:2::5", 64, 9000, 100)
	frame := fou(t, "10.0.1.2", "10.0.1.1", 0xc123, pkt)
	for i, c := range []struct {
		name    string
		prog    *ebpf.Program
		verdict uint32
	}{{"tc", progs.UnderlayTc, tcRedirect}, {"xdp", progs.UnderlayXdp, xdpRedir}} {
		t.Run(c.name, func(t *testing.T) {
			var out []byte
			if c.name == "tc" {
				var ctx *skbContext
				var ret uint32
				ret, out, ctx = runEgress(t, c.prog, frame)
				require.Equal(t, c.verdict, ret)
				require.Equal(t, class.Priority, ctx.priority())
			} else {
				opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
				ret, err := c.prog.Run(opts)
				require.NoError(t, err)
				require.Equal(t, c.verdict, ret)
				out = opts.DataOut
			}
			p := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			outer := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			require.Equal(t, "10.0.2.2", outer.DstIP.String())
			require.Equal(t, uint8(46<<2), outer.TOS, "outer DSCP")
			csum := outer.Checksum
			require.NoError(t, outer.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}))
			require.Equal(t, csum, outer.Checksum, "outer IPv4 checksum")
			require.Equal(t, withHop(pkt, 63), []byte(p.Layer(layers.LayerTypeUDP).LayerPayload()))
			st, err := d.ClassCounters(class.ID)
			require.NoError(t, err)
			require.Equal(t, ClassStats{Packets: uint64(i + 1), Bytes: uint64((i + 1) * len(pkt))}, st)
		})
	}
}
