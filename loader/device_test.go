package loader_test

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// deviceTunnel is the id of a node's device tunnel in these tests.
const deviceTunnel = 3

// A —FOU— B —TUN pair— C. B and C each have a TUN device, and a relay
// copies the packets between them: a device tunnel as WireGuard's is,
// without the encryption. B carries A's traffic from FOU into its device and
// from its device into FOU in BPF, without the kernel's forwarding; C
// delivers what comes out of its device locally.
func TestDeviceTunnelTransit(t *testing.T) {
	inDeviceChains(t, func(t *testing.T, c *chain.Chain, a, b, cc *chain.Node, mtu int) {
		tunRelay(t, b.NS, cc.NS, "dv0", mtu)
		for _, ends := range [][2]int{{1, 2}, {2, 1}} {
			att, err := c.UseDevice(ends[0], ends[1], deviceTunnel, "dv0", mtu)
			require.NoError(t, err)
			t.Cleanup(func() { att.Close() })
		}

		requireDeviceTransit(t, a, b, cc)
	})
}

// inDeviceChains runs test on a chain A —FOU— B C of three namespaces (tc
// hook), once per attachment mode; mtu is the overlay's.
func inDeviceChains(t *testing.T, test func(t *testing.T, c *chain.Chain, a, b, cc *chain.Node, mtu int)) {
	netns.RequireRoot(t)
	for _, attach := range []loader.AttachMode{loader.AttachTCX, loader.AttachLegacy} {
		t.Run(string(attach), func(t *testing.T) {
			c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC, Attach: attach})
			test(t, c, c.Nodes[0], c.Nodes[1], c.Nodes[2], c.Nodes[1].Datapath.State.MTU)
		})
	}
}

// requireDeviceTransit checks A —FOU— B —device tunnel deviceTunnel— C:
// pings, then 16 MiB TCP each way between A and C that B carries between
// FOU and the device in BPF (its kernel forwards nothing) and both ends of
// the device tunnel count, and traceroute both ways.
func requireDeviceTransit(t *testing.T, a, b, cc *chain.Node) {
	out, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", cc.Overlay.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "3 received")
	out, err = b.NS.Run("ping", "-c", "2", "-i", "0.2", "-W", "2", cc.Overlay.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "2 received")

	forwBefore := snmp6(t, b.NS, "Ip6OutForwDatagrams")
	transitBefore := reason(t, b.Datapath, "transit")
	devBefore, err := b.Datapath.TunnelCounters(deviceTunnel)
	require.NoError(t, err)
	cDevBefore, err := cc.Datapath.TunnelCounters(deviceTunnel)
	require.NoError(t, err)
	require.NoError(t, chain.TCPTransfer(a.NS, cc.NS, cc.Overlay, 16<<20))
	require.NoError(t, chain.TCPTransfer(cc.NS, a.NS, a.Overlay, 16<<20))
	rs, err := b.Datapath.Reasons()
	require.NoError(t, err)
	require.Equal(t, forwBefore, snmp6(t, b.NS, "Ip6OutForwDatagrams"),
		"B's kernel forwarded overlay traffic; B's data plane counted %v", rs)
	require.Greater(t, reason(t, b.Datapath, "transit"), transitBefore+100)
	dev, err := b.Datapath.TunnelCounters(deviceTunnel)
	require.NoError(t, err)
	require.Greater(t, dev.TxBytes-devBefore.TxBytes, uint64(16<<20), "into the device")
	require.Greater(t, dev.RxBytes-devBefore.RxBytes, uint64(16<<20), "out of the device")
	cDev, err := cc.Datapath.TunnelCounters(deviceTunnel)
	require.NoError(t, err)
	require.Greater(t, cDev.RxBytes-cDevBefore.RxBytes, uint64(16<<20), "C: out of the device, delivered")
	require.Greater(t, cDev.TxBytes-cDevBefore.TxBytes, uint64(16<<20), "C: into the device")

	out, err = a.NS.Run("traceroute6", "-n", "-q1", "-w1", cc.Overlay.String())
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^ 1\s+`+b.Overlay.String()+`\s`, out)
	require.Regexp(t, `(?m)^ 2\s+`+cc.Overlay.String()+`\s`, out)
	// Back: B's device program hands the packets whose hop limit runs
	// out to the kernel, which answers.
	out, err = cc.NS.Run("traceroute6", "-n", "-q1", "-w1", a.Overlay.String())
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^ 1\s+`+b.Overlay.String()+`\s`, out)
	require.Regexp(t, `(?m)^ 2\s+`+a.Overlay.String()+`\s`, out)
}

// tunRelay creates a TUN device named name in a and in b, and copies every
// packet one sends into its device out of the other's, until the test ends.
func tunRelay(t *testing.T, a, b *netns.NS, name string, mtu int) {
	fa, err := a.TUN(name, mtu)
	require.NoError(t, err)
	fb, err := b.TUN(name, mtu)
	if err != nil {
		fa.Close()
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	copyPackets := func(from, to *os.File) {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := from.Read(buf)
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if err == nil {
				to.Write(buf[:n]) // a full queue drops, as a link does
			}
		}
	}
	wg.Add(2)
	go copyPackets(fa, fb)
	go copyPackets(fb, fa)
	t.Cleanup(func() {
		fa.Close()
		fb.Close()
		wg.Wait()
	})
}
