package loader_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// A — B — C over IPv4-only links, tunnels A↔B and B↔C, for each
// encapsulation, each underlay hook and each attachment mode.
func TestOverlayThroughTransitNode(t *testing.T) {
	netns.RequireRoot(t)
	for _, encap := range []loader.TunnelType{loader.FOU, loader.GRE} {
		for _, hm := range hookModes() {
			hook, attach := hm.hook, hm.attach
			t.Run(fmt.Sprintf("%s/%s/%s", encap, hook, attach), func(t *testing.T) {
				c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Encap: encap, GREKey: encap == loader.GRE, Hook: hook, Attach: attach})
				a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]

				out, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", cc.Overlay.String())
				require.NoError(t, err, out)
				require.Contains(t, out, "3 received")

				forwBefore := snmp6(t, b.NS, "Ip6OutForwDatagrams")
				transitBefore := reason(t, b.Datapath, "transit")
				tcpTransfer(t, a.NS, cc.NS, cc.Overlay, 16<<20)
				rs, err := b.Datapath.Reasons()
				require.NoError(t, err)
				require.Equal(t, forwBefore, snmp6(t, b.NS, "Ip6OutForwDatagrams"),
					"B's kernel forwarded overlay traffic; B's data plane counted %v", rs)
				require.Greater(t, reason(t, b.Datapath, "transit"), transitBefore+100)

				out, err = a.NS.Run("traceroute6", "-n", "-q1", "-w1", cc.Overlay.String())
				require.NoError(t, err, out)
				require.Regexp(t, `(?m)^ 1\s+`+strings.ReplaceAll(b.Overlay.String(), ".", `\.`)+`\s`, out)
				require.Regexp(t, `(?m)^ 2\s+`+cc.Overlay.String()+`\s`, out)

				if encap == loader.FOU {
					unknownEndpoint(t, c)
				}
			})
		}
	}
}

func snmp6(t *testing.T, ns *netns.NS, key string) uint64 {
	out, err := ns.Run("cat", "/proc/net/snmp6")
	require.NoError(t, err)
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == key {
			v, err := strconv.ParseUint(f[1], 10, 64)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("%s not in /proc/net/snmp6", key)
	return 0
}

func reason(t *testing.T, d *loader.Datapath, name string) uint64 {
	r, err := d.Reasons()
	require.NoError(t, err)
	v, ok := r[name]
	require.True(t, ok, name)
	return v
}

// tcpTransfer sends size random bytes from src to dst:port over TCP and
// checks that they arrive whole.
func tcpTransfer(t *testing.T, src, dst *netns.NS, addr netip.Addr, size int) {
	var ln net.Listener
	require.NoError(t, dst.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}))
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer conn.Close()
		h := sha256.New()
		io.Copy(h, conn)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		got <- sum
	}()
	data := make([]byte, size)
	rand.Read(data)
	var conn net.Conn
	require.NoError(t, src.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.Dial("tcp", ln.Addr().String())
		return err
	}))
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(conn, bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	select {
	case sum := <-got:
		require.Equal(t, sha256.Sum256(data), sum, "transfer corrupted or cut short")
	case <-time.After(30 * time.Second):
		t.Fatal("transfer did not complete")
	}
}

// A FOU packet whose outer source is not a tunnel endpoint never reaches C;
// the same packet from A's endpoint does.
func unknownEndpoint(t *testing.T, c *chain.Chain) {
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	inner := udp6(t, a.Overlay, cc.Overlay, 4000, 4001, []byte("through B"))

	var rx *net.UDPConn
	require.NoError(t, cc.NS.Do(func() (err error) {
		rx, err = net.ListenUDP("udp6", &net.UDPAddr{IP: cc.Overlay.AsSlice(), Port: 4001})
		return err
	}))
	defer rx.Close()
	send := func(from string) {
		require.NoError(t, a.NS.Do(func() error {
			conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.ParseIP("10.41.1.2"), Port: loader.DefaultFOUPort})
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = conn.Write(inner)
			return err
		}))
	}
	received := func() bool {
		rx.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 100)
		n, _, err := rx.ReadFromUDP(buf)
		return err == nil && string(buf[:n]) == "through B"
	}

	require.NoError(t, a.NS.AddrAdd(a.Right, netip.MustParsePrefix("10.41.1.7/24")))
	unknownBefore := reason(t, b.Datapath, "pass-unknown-peer") + reason(t, b.Datapath, "drop-unknown-peer")
	send("10.41.1.7")
	require.False(t, received(), "a packet from an unknown endpoint reached C")
	require.Greater(t, reason(t, b.Datapath, "pass-unknown-peer")+reason(t, b.Datapath, "drop-unknown-peer"), unknownBefore)

	send("10.41.1.1")
	require.True(t, received(), "the packet from A's endpoint did not reach C")
}

func udp6(t *testing.T, src, dst netip.Addr, sport, dport int, payload []byte) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	require.NoError(t, u.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, u, gopacket.Payload(payload)))
	return buf.Bytes()
}
