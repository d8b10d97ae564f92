package wireguard_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safchain/ethtool"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/tunnels/wireguard"
)

// wireguardLink replaces the FOU tunnel between nodes i and i+1 by a
// WireGuard device tunnel, each end in its namespace.
func wireguardLink(t *testing.T, c *chain.Chain, i int) *chain.WireGuardLink {
	l, err := c.WireGuardLink(i)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// A —FOU— B —WireGuard— C: TCP both ways arrives whole, B carries it in
// BPF between FOU and the WireGuard device, and C's underlay carries no
// cleartext of a payload that A's link shows in clear.
func TestWireGuardTransit(t *testing.T) {
	c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	wireguardLink(t, c, 1)

	waitPing(t, a.NS, cc.Overlay)
	// The first packets find the path MTU (the WireGuard tunnel's is 32
	// bytes below the overlay's): B's slow path answers Packet Too Big.
	require.NoError(t, chain.TCPTransfer(a.NS, cc.NS, cc.Overlay, 64<<10))
	forwBefore := snmp6(t, b.NS, "Ip6OutForwDatagrams")
	require.NoError(t, chain.TCPTransfer(a.NS, cc.NS, cc.Overlay, 8<<20))
	require.NoError(t, chain.TCPTransfer(cc.NS, a.NS, a.Overlay, 8<<20))
	require.Equal(t, forwBefore, snmp6(t, b.NS, "Ip6OutForwDatagrams"), "B's kernel forwarded overlay traffic")
	st, err := b.Datapath.TunnelCounters(chain.WireGuardTunnel(1))
	require.NoError(t, err)
	require.Greater(t, st.TxBytes, uint64(8<<20))
	require.Greater(t, st.RxBytes, uint64(8<<20))

	marker := []byte("re6st-cleartext-marker-6f1d2c")
	fouCapture := capture(t, b.NS, b.Left)
	wgCapture := capture(t, cc.NS, cc.Left)
	sendUDP(t, a.NS, cc.Overlay, marker, 20)
	fou, wg := fouCapture(), wgCapture()
	require.True(t, bytes.Contains(fou, marker), "the FOU link shows the payload (the capture works)")
	require.Greater(t, len(wg), 20*len(marker), "the WireGuard link carried the packets")
	require.False(t, bytes.Contains(wg, marker), "cleartext on the WireGuard underlay")
}

// A —FOU— B —WireGuard— C —WireGuard— D: C carries the traffic from one
// WireGuard device into the other in BPF; TCP both ways arrives whole.
func TestWireGuardTransitBetweenDevices(t *testing.T) {
	c := chain.Build(t, chain.Options{Nodes: 4, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	a, cc, d := c.Nodes[0], c.Nodes[2], c.Nodes[3]
	wireguardLink(t, c, 1)
	wireguardLink(t, c, 2)
	waitPing(t, a.NS, d.Overlay)
	require.NoError(t, chain.TCPTransfer(a.NS, d.NS, d.Overlay, 64<<10)) // path MTU found
	forwBefore := snmp6(t, cc.NS, "Ip6OutForwDatagrams")
	require.NoError(t, chain.TCPTransfer(a.NS, d.NS, d.Overlay, 4<<20))
	require.NoError(t, chain.TCPTransfer(d.NS, a.NS, a.Overlay, 4<<20))
	require.Equal(t, forwBefore, snmp6(t, cc.NS, "Ip6OutForwDatagrams"), "C's kernel forwarded overlay traffic")
	st, err := cc.Datapath.TunnelCounters(chain.WireGuardTunnel(2))
	require.NoError(t, err)
	require.Greater(t, st.TxBytes, uint64(4<<20), "C sent A's transfer into the second WireGuard device")
}

// A chain of three WireGuard links answers a ping across it within
// WireGuard's 5-s handshake retry: each link's first handshake succeeds
// (one end initiates; two crossing initiations fail together and were
// retried 5 s later: 8 of 14 runs here, 3 of them 15 s later).
func TestWireGuardLinksUpAtOnce(t *testing.T) {
	c := chain.Build(t, chain.Options{Nodes: 4, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	start := time.Now()
	for i := range 3 {
		wireguardLink(t, c, i)
	}
	waitPing(t, c.First().NS, c.Last().Overlay)
	took := time.Since(start)
	t.Logf("links up and a ping answered in %s", took)
	require.Less(t, took, 5*time.Second, "a link's first handshake failed")
}

// A —WireGuard— B —WireGuard— C: the TCP stream crosses in batches, never
// one segment per packet (the segments of a batch share its system calls,
// and what wireguard-go pays per packet): the devices have the TCP
// segmentation offloads (wireguard-go's TUN with IFF_VNET_HDR); A's data
// plane sends GSO packets into its device whole; wireguard-go sends them
// as UDP GSO batches on the underlay and writes them coalesced (GRO) into
// B's device; and B's data plane carries them whole from one device into
// the other. Each is seen on a link's counters: bytes per packet above
// the link's MTU, which no single packet can exceed.
func TestWireGuardBatches(t *testing.T) {
	c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	wireguardLink(t, c, 0)
	wireguardLink(t, c, 1)
	for _, n := range []*chain.Node{a, b} {
		features := deviceFeatures(t, n.NS, chain.WireGuardName(0))
		for _, f := range []string{"tx-tcp6-segmentation", "tx-tcp-segmentation", "tx-checksum-ip-generic"} {
			require.True(t, features[f], "%s: %s off on %s", n.NS.Name, f, chain.WireGuardName(0))
		}
	}
	waitPing(t, a.NS, cc.Overlay)
	require.NoError(t, chain.TCPTransfer(a.NS, cc.NS, cc.Overlay, 64<<10)) // path MTU found
	type counted struct {
		node   *chain.Node
		ifname string
		tx     bool // count what it sends (else what it receives)
		what   string
		before netlink.LinkStatistics
	}
	links := []*counted{
		{node: a, ifname: chain.WireGuardName(0), tx: true, what: "A's data plane into its device"},
		{node: a, ifname: a.Right, tx: true, what: "A's wireguard-go on the underlay"},
		{node: b, ifname: chain.WireGuardName(0), what: "B's wireguard-go into its first device"},
		{node: b, ifname: chain.WireGuardName(1), tx: true, what: "B's data plane from one device into the other"},
	}
	for _, l := range links {
		l.before, _ = linkStats(t, l.node.NS, l.ifname)
	}
	require.NoError(t, chain.TCPTransfer(a.NS, cc.NS, cc.Overlay, 16<<20))
	for _, l := range links {
		after, mtu := linkStats(t, l.node.NS, l.ifname)
		bytes, packets := after.RxBytes-l.before.RxBytes, after.RxPackets-l.before.RxPackets
		if l.tx {
			bytes, packets = after.TxBytes-l.before.TxBytes, after.TxPackets-l.before.TxPackets
		}
		require.Greater(t, bytes, uint64(16<<20), "%s: %s carried the transfer", l.what, l.ifname)
		t.Logf("%s: %d bytes per packet (MTU %d)", l.what, bytes/packets, mtu)
		require.Greater(t, bytes/packets, uint64(mtu), "%s: one segment per packet", l.what)
	}
}

// A key rotation keeps the device and the data plane's tunnel, and a
// continuous ping across it resumes, losing at most rotationLoss: B
// rotates, then A learns B's new public key (as from a newer binding) and
// its keepalive makes the new handshake at once. The loss is logged: none
// or one ping almost every run here.
func TestWireGuardKeyRotation(t *testing.T) {
	c := chain.Build(t, chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	a, b := c.Nodes[0], c.Nodes[1]
	l := wireguardLink(t, c, 0)
	waitPing(t, a.NS, b.Overlay)
	ifindex, err := b.NS.Ifindex(chain.WireGuardName(0))
	require.NoError(t, err)
	before, err := l.Left.Status()
	require.NoError(t, err)
	require.Equal(t, l.Right.PublicKey(), before.Peer)

	// 400 pings 20 ms apart (8 s), the rotation 1 s into them.
	type result struct {
		out string
		err error
	}
	pinged := make(chan result, 1)
	go func() {
		out, err := a.NS.Run("ping", "-n", "-c", strconv.Itoa(rotationPings), "-i", "0.02", "-W", "1", b.Overlay.String())
		pinged <- result{out, err}
	}()
	time.Sleep(time.Second) // into the ping's run, not a wait on a condition
	priv, err := wireguard.GenerateKey()
	require.NoError(t, err)
	require.NoError(t, l.Right.Rotate(priv))
	require.NoError(t, l.Left.SetPeer(priv.Public(), netip.AddrPortFrom(chain.LinkV4(0, 2), l.Right.Port())))
	r := <-pinged
	received := pingReceived(t, r.out)
	t.Logf("ping across the rotation: %d/%d answered", received, rotationPings)
	require.GreaterOrEqual(t, received, rotationPings-rotationLoss, "%s %v", r.out, r.err)

	after, err := l.Left.Status()
	require.NoError(t, err)
	require.Equal(t, priv.Public(), after.Peer)
	require.True(t, after.LastHandshake.After(before.LastHandshake), "a new handshake")
	again, err := b.NS.Ifindex(chain.WireGuardName(0))
	require.NoError(t, err)
	require.Equal(t, ifindex, again, "the device stayed")
	tn, err := b.Datapath.Tunnel(chain.WireGuardTunnel(0))
	require.NoError(t, err)
	require.Equal(t, uint32(ifindex), tn.Ifindex, "the data plane's tunnel stayed")
}

// rotationPings are sent 20 ms apart across a rotation; rotationLoss is
// the most a rotation may lose. The new handshake takes one round trip and
// the pings sent meanwhile wait in WireGuard's queue: none or one was lost
// in most runs here; but once in about twenty runs, on a loaded machine,
// 56 of 100 were (the handshake with the new key failed, it seems, and
// WireGuard's next initiation comes 5 s later, its REKEY_TIMEOUT). The
// bound is that retry (250 pings) with a margin: traffic resumes, at worst
// after one retry.
const (
	rotationPings = 400
	rotationLoss  = 300
)

// pingReceived is the count of answers in ping's statistics line.
func pingReceived(t *testing.T, out string) int {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "packets transmitted") {
			var sent, received int
			_, err := fmt.Sscanf(l, "%d packets transmitted, %d received", &sent, &received)
			require.NoError(t, err, l)
			return received
		}
	}
	t.Fatalf("no statistics in ping's output: %s", out)
	return 0
}

// waitPing pings dst from ns until one answer comes (a WireGuard tunnel
// answers after its first handshake, whose initiation is retried every 5 s
// when lost; a chain has one per link), at most 30 s.
func waitPing(t *testing.T, ns *netns.NS, dst netip.Addr) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := ns.Run("ping", "-c", "1", "-W", "1", dst.String())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from %s: %s", dst, out)
		}
	}
}

// capture opens a packet socket on ifname in ns; the returned function
// reads every frame it has queued since, and closes it.
func capture(t *testing.T, ns *netns.NS, ifname string) func() []byte {
	c, err := ns.Capture(ifname)
	require.NoError(t, err)
	return c.Collect
}

// sendUDP sends count datagrams of payload from src to dst's discard port,
// and a ping after them.
func sendUDP(t *testing.T, src *netns.NS, dst netip.Addr, payload []byte, count int) {
	var conn net.PacketConn
	require.NoError(t, src.Do(func() (err error) {
		conn, err = net.ListenPacket("udp", "[::]:0")
		return err
	}))
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9))
	for i := 0; i < count; i++ {
		_, err := conn.WriteTo(payload, to)
		require.NoError(t, err)
	}
	// A ping behind them on the same path: once it is answered, the
	// datagrams have crossed every link.
	waitPing(t, src, dst)
}

// deviceFeatures are ifname's offloads (ethtool -k) in ns.
func deviceFeatures(t *testing.T, ns *netns.NS, ifname string) map[string]bool {
	var features map[string]bool
	require.NoError(t, ns.Do(func() error {
		et, err := ethtool.NewEthtool()
		if err != nil {
			return err
		}
		defer et.Close()
		features, err = et.Features(ifname)
		return err
	}))
	return features
}

// linkStats are ifname's counters and MTU in ns.
func linkStats(t *testing.T, ns *netns.NS, ifname string) (st netlink.LinkStatistics, mtu int) {
	require.NoError(t, ns.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err == nil {
			st, mtu = *l.Attrs().Statistics, l.Attrs().MTU
		}
		return err
	}))
	return st, mtu
}

func snmp6(t *testing.T, ns *netns.NS, key string) uint64 {
	out, err := ns.Run("cat", "/proc/net/snmp6")
	require.NoError(t, err)
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == key {
			var v uint64
			_, err := fmt.Sscan(f[1], &v)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("%s not in /proc/net/snmp6", key)
	return 0
}
