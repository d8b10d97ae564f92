package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bounds stated in docs/node.md, for the cluster's defaults (hello 4 s,
// tunnel_refresh 60 s, 3 outgoing / 6 incoming tunnels per node).
const (
	hello         = 4 * time.Second
	tunnelRefresh = 60 * time.Second
	reachBound    = 90 * time.Second
	rerouteBound  = 3 * hello
)

// network is the running cluster and what the steps learnt of it.
type network struct {
	*cluster.Cluster
	in   *internet.Internet
	t    *testing.T
	dead map[string]bool
}

func (nw *network) status(name string) node.Status {
	nw.t.Helper()
	return nodeStatus(nw.t, nw.Cluster, name)
}

func (nw *network) alive() []string {
	var out []string
	for _, n := range nw.Nodes() {
		if !nw.dead[n] {
			out = append(out, n)
		}
	}
	return out
}

// nodeOf is the node whose subnet is p.
func (nw *network) nodeOf(p string) string {
	for _, n := range nw.Nodes() {
		if nw.Node(n).Subnet.String() == p {
			return n
		}
	}
	return ""
}

// allPairsReachable pings between the live nodes until every pair answers
// or the time is up; it returns how long it took.
func (nw *network) allPairsReachable(within time.Duration) (time.Duration, error) {
	start := time.Now()
	nodes := nw.alive()
	for {
		failed := ""
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && failed == "" {
					if err := nw.Ping(a, b); err != nil {
						failed = fmt.Sprintf("%s → %s: %v", a, b, err)
					}
				}
			}
		}
		if failed == "" {
			return time.Since(start), nil
		}
		if time.Since(start) > within {
			return time.Since(start), fmt.Errorf("after %s: %s", within, failed)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestNetwork runs one re6st network through the failures a node must
// survive, in order, on the default simulated internet: two ISPs, a NAT
// site, a LAN whose two nodes find each other with -i.
func TestNetwork(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Default())
	nw := &network{Cluster: cluster.ForTest(t, cluster.Options{Internet: in}), in: in, t: t, dead: map[string]bool{}}
	require.NoError(t, nw.StartNodes())

	t.Run("every node reaches every other", func(t *testing.T) {
		m, err := nw.WaitReachable(context.Background(), reachBound)
		require.NoError(t, err, "reachability:\n%v", m)
		t.Logf("%d/%d pairs", m.OK(), m.Pairs())
	})
	if t.Failed() {
		return
	}
	t.Run("the node protocol reaches every node over the overlay", func(t *testing.T) { testOverlayProtocol(t, nw) })
	t.Run("malformed node-protocol messages are dropped and counted", func(t *testing.T) { testMalformed(t, nw) })
	t.Run("restarting a transit daemon keeps a TCP stream through it", func(t *testing.T) { testRestartTransit(t, nw) })
	t.Run("a cut link reroutes", func(t *testing.T) { testLinkCut(t, nw) })
	t.Run("a dead node: the rest reroute", func(t *testing.T) { testNodeDeath(t, nw) })
	t.Run("registry down: reachability holds, tunnels refresh from the cache", func(t *testing.T) { testRegistryDown(t, nw) })
	t.Run("a revoked node loses its tunnels", func(t *testing.T) { testRevoked(t, nw) })
}

// testOverlayProtocol: the registry's node asks every node the registry
// knows (those that reported an address: all but the NAT's) for its
// version, over the overlay, to each node's <subnet>::1; then it walks the
// tunnel graph (/topology) the same way.
func testOverlayProtocol(t *testing.T, nw *network) {
	network := nw.status(nw.Nodes()[0]).Network
	want := map[string]string{}
	for _, n := range nw.alive() {
		if !nw.Node(n).Host.NAT {
			want[mustBits(t, network, nw.Node(n).Subnet)] = n
		}
	}
	silent := func(versions map[string]*string) (out []string) {
		for bits := range versions {
			if versions[bits] == nil {
				out = append(out, bits)
			}
		}
		for bits, n := range want {
			if _, ok := versions[bits]; !ok {
				out = append(out, n+" (unknown to the registry)")
			}
		}
		return out
	}
	var versions map[string]*string
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		versions, err = nw.Versions()
		if err == nil && len(silent(versions)) == 0 || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err)
	require.Empty(t, silent(versions), "nodes that did not answer the registry's node over the overlay")
	t.Logf("%d nodes answered over the overlay", len(versions))

	// The registry's topology walk reaches every node, the NAT's too
	// through its peers, and lists each node's outgoing tunnels.
	expected := func() map[string][]string {
		g := map[string][]string{"": {}}
		for _, n := range nw.alive() {
			cn := wire.CommonName(mustBits(t, network, nw.Node(n).Subnet))
			g[""] = append(g[""], cn)
			g[cn] = []string{}
			for _, tu := range nw.status(n).Tunnels {
				if tu.Outgoing {
					g[cn] = append(g[cn], wire.CommonName(mustBits(t, network, tu.Peer)))
				}
			}
		}
		return normalized(g)
	}
	var graph, exp map[string][]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		graph, err = nw.Topology()
		exp = expected()
		if err == nil && assert.ObjectsAreEqual(exp, normalized(graph)) || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err)
	require.Equal(t, exp, normalized(graph), "the registry's topology against the nodes' outgoing tunnels")
	t.Logf("topology: %d nodes answered", len(graph[""]))
}

func mustBits(t *testing.T, network, p netip.Prefix) string {
	bits, err := nodeproto.BitsOf(network, p)
	require.NoError(t, err)
	return bits
}

// normalized sorts a topology's lists, so that graphs compare.
func normalized(g map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range g {
		out[k] = slices.Sorted(slices.Values(v))
	}
	return out
}

func testMalformed(t *testing.T, nw *network) {
	target, sender := nw.alive()[1], nw.alive()[2]
	before := nw.status(target)
	tn := nw.Node(target)
	junk := func(ns *netns.NS, dst string) {
		require.NoError(t, ns.Do(func() error {
			c, err := net.Dial("udp", dst)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, j := range [][]byte{{0, 0, 0, 9, 1, 2, 3}, []byte(strings.Repeat("x", 300)), {0, 0, 0, 2}} {
				if _, err := c.Write(j); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	// To the FOU port from an address that is no tunnel endpoint (the data
	// plane passes it up), and to the node protocol over the overlay.
	junk(nw.in.NS(internet.Core), netip.AddrPortFrom(tn.Host.Addr, 5555).String())
	junk(nw.Node(sender).Host.NS, netip.AddrPortFrom(tn.Addr, 326).String())
	junk(nw.Node(sender).Host.NS, netip.AddrPortFrom(tn.Addr, 326).String())
	require.Eventually(t, func() bool {
		s := nw.status(target)
		return s.Control.NodeProtocol.Received >= before.Control.NodeProtocol.Received+6 &&
			s.Control.NotDatagram >= before.Control.NotDatagram+3
	}, 10*time.Second, 200*time.Millisecond)
	after := nw.status(target)
	dropped := func(s node.Status) (n uint64) {
		for _, v := range s.Control.NodeProtocol.Dropped {
			n += v
		}
		return n
	}
	assert.GreaterOrEqual(t, dropped(after)-dropped(before), uint64(6), "every junk message dropped: %v", after.Control.NodeProtocol.Dropped)
	ids := func(s node.Status) (out []string) {
		for _, tu := range s.Tunnels {
			out = append(out, fmt.Sprint(tu.ID, tu.Peer))
		}
		return out
	}
	// The mesh may grow meanwhile (a peer's new tunnel); none may go.
	assert.Subset(t, ids(after), ids(before), "every tunnel kept")
	require.NoError(t, nw.Ping(sender, target))
}

// transitTriple finds A, B, C such that A routes C's prefix through its
// tunnel with B.
func transitTriple(t *testing.T, nw *network) (a, b, c string) {
	for _, a := range nw.alive() {
		s := nw.status(a)
		peerOf := map[string]string{}
		for _, tu := range s.Tunnels {
			peerOf[fmt.Sprintf("t%d", tu.ID)] = tu.Peer.String()
		}
		for _, r := range s.Routes {
			b, c := nw.nodeOf(peerOf[r.Via]), nw.nodeOf(r.Prefix)
			if b != "" && c != "" && b != c && !nw.dead[b] && !nw.dead[c] && b != nw.Nodes()[0] {
				return a, b, c
			}
		}
	}
	t.Fatal("no node routes through another one")
	return
}

func testRestartTransit(t *testing.T, nw *network) {
	a, b, c := transitTriple(t, nw)
	t.Logf("%s → %s through %s", a, c, b)
	cn, an := nw.Node(c), nw.Node(a)
	srv := cn.Host.NS.Command(context.Background(), "iperf3", "-s", "-1", "-B", cn.Addr.String())
	require.NoError(t, srv.Start())
	defer srv.Process.Kill()
	require.Eventually(t, func() bool {
		out, err := cn.Host.NS.Run("ss", "-Hltn", "sport = :5201")
		return err == nil && strings.Contains(out, "5201")
	}, 10*time.Second, 20*time.Millisecond, "the iperf3 server listens")
	cli := an.Host.NS.Command(context.Background(), "iperf3", "-c", cn.Addr.String(), "-t", "12", "-b", "20M", "-J")
	out := make(chan []byte, 1)
	go func() { o, _ := cli.Output(); out <- o }()
	time.Sleep(3 * time.Second)
	require.NoError(t, nw.StopNode(b))
	require.NoError(t, nw.StartNode(b))
	var r struct {
		Intervals []struct {
			Sum struct {
				Bytes uint64 `json:"bytes"`
			} `json:"sum"`
		} `json:"intervals"`
		End struct {
			SumReceived struct {
				Bytes uint64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(<-out, &r))
	require.Empty(t, r.Error)
	require.GreaterOrEqual(t, len(r.Intervals), 11)
	var perSecond []uint64
	for i, iv := range r.Intervals {
		perSecond = append(perSecond, iv.Sum.Bytes)
		assert.NotZero(t, iv.Sum.Bytes, "second %d of the stream carried nothing", i)
	}
	t.Logf("bytes per second: %v", perSecond)
	assert.Greater(t, r.End.SumReceived.Bytes, uint64(20e6/8*10), "the stream went on at its rate")
}

func testLinkCut(t *testing.T, nw *network) {
	for _, a := range nw.alive() {
		s := nw.status(a)
		if len(s.Tunnels) < 2 || nw.Node(a).Host.Site != "" {
			continue
		}
		tu := s.Tunnels[0]
		b := nw.nodeOf(tu.Peer.String())
		if b == "" || nw.dead[b] {
			continue
		}
		local, remote := nw.Node(a).Host.Addr.String(), tu.Remote.Addr().String()
		routers := []string{internet.Core, "isp1", "isp2"}
		for _, r := range routers {
			_, err := nw.in.NS(r).Run("nft", "add table ip cut; add chain ip cut links { type filter hook forward priority 0; }; "+
				"add rule ip cut links ip saddr "+local+" ip daddr "+remote+" drop; add rule ip cut links ip saddr "+remote+" ip daddr "+local+" drop")
			require.NoError(t, err, r)
		}
		start := time.Now()
		var pingErr error
		for time.Since(start) < 60*time.Second {
			if pingErr = nw.Ping(a, b); pingErr == nil {
				break
			}
		}
		took := time.Since(start)
		after := nw.status(a)
		for _, r := range routers {
			_, err := nw.in.NS(r).Run("nft", "delete table ip cut")
			require.NoError(t, err)
		}
		require.NoError(t, pingErr, "%s → %s after cutting their tunnel", a, b)
		for _, r := range after.Routes {
			if r.Prefix == tu.Peer.String() {
				assert.NotEqual(t, fmt.Sprintf("t%d", tu.ID), r.Via, "the route left the cut tunnel")
			}
		}
		t.Logf("cut %s—%s (%s—%s): rerouted in %s", a, b, local, remote, took.Round(100*time.Millisecond))
		return
	}
	t.Fatal("no node with two tunnels")
}

func testNodeDeath(t *testing.T, nw *network) {
	// The victim: the node most others have a tunnel with, not the
	// registry's host.
	count := map[string]int{}
	for _, n := range nw.alive() {
		for _, tu := range nw.status(n).Tunnels {
			count[nw.nodeOf(tu.Peer.String())]++
		}
	}
	peers := map[string][]string{}
	for _, n := range nw.alive() {
		for _, tu := range nw.status(n).Tunnels {
			peers[n] = append(peers[n], nw.nodeOf(tu.Peer.String()))
		}
	}
	isolates := func(v string) bool {
		for n, ps := range peers {
			if n != v && !slices.ContainsFunc(ps, func(p string) bool { return p != v }) {
				return true
			}
		}
		return false
	}
	victim := ""
	for _, n := range nw.alive()[1:] {
		if !isolates(n) && (victim == "" || count[n] > count[victim]) {
			victim = n
		}
	}
	require.NotEmpty(t, victim, "every node is some node's only peer")
	h := nw.Node(victim).Host
	require.NoError(t, nw.KillNode(victim))
	_, err := h.NS.Run("ip", "link", "set", h.Interface, "down") // the machine is gone
	require.NoError(t, err)
	nw.dead[victim] = true
	took, err := nw.allPairsReachable(60 * time.Second)
	require.NoError(t, err)
	t.Logf("%s (%d tunnels) died: the other %d nodes reach each other again after %s (bound %s)",
		victim, count[victim], len(nw.alive()), took.Round(100*time.Millisecond), rerouteBound)
	assert.LessOrEqual(t, took, rerouteBound+5*time.Second, "rerouted within 3 hello intervals (plus the probing time)")
}

func testRegistryDown(t *testing.T, nw *network) {
	require.NoError(t, nw.KillRegistry())
	t.Cleanup(func() { assert.NoError(t, nw.StartRegistry()) }) // for the steps after this one, even if it fails
	killed := time.Now()
	_, err := nw.allPairsReachable(30 * time.Second)
	require.NoError(t, err, "the mesh works without the registry")
	// Wait for a tunnel set up after the registry died (every node
	// replaces one tunnel per tunnel_refresh, 60 s).
	newTunnel := ""
	require.Eventually(t, func() bool {
		for _, n := range nw.alive() {
			s := nw.status(n)
			assert.False(t, s.Registry.Reachable && time.Since(killed) > 30*time.Second, "%s says the registry is reachable", n)
			for _, tu := range s.Tunnels {
				if tu.Outgoing && time.Duration(tu.Age) < time.Since(killed)-time.Second {
					newTunnel = fmt.Sprintf("%s → %s", n, tu.Peer)
					return true
				}
			}
		}
		return false
	}, 150*time.Second, 2*time.Second, "no tunnel formed without the registry")
	t.Logf("registry down for %s: new tunnel %s", time.Since(killed).Round(time.Second), newTunnel)
	_, err = nw.allPairsReachable(30 * time.Second)
	require.NoError(t, err)
}

func testRevoked(t *testing.T, nw *network) {
	victim := nw.alive()[len(nw.alive())-1]
	prefix := nw.Node(victim).Subnet
	require.NoError(t, nw.Revoke(victim))
	start := time.Now()
	// The revoked node cannot fetch the parameters any more: it stops
	// (docs/node.md, "Revocation").
	require.Eventually(t, func() bool {
		if nw.NodeRunning(victim) {
			return false
		}
		for _, n := range nw.alive() {
			if n == victim {
				continue
			}
			for _, tu := range nw.status(n).Tunnels {
				if tu.Peer == prefix {
					return false
				}
			}
		}
		return true
	}, 90*time.Second, time.Second, "tunnels with the revoked node remain")
	t.Logf("%s revoked: stopped, its tunnels gone after %s", victim, time.Since(start).Round(time.Second))
	nw.dead[victim] = true
	assert.True(t, nw.NodeLogContains(victim, "our certificate is revoked: stopping"))
	time.Sleep(2 * hello)
	for _, n := range nw.alive() {
		for _, tu := range nw.status(n).Tunnels {
			assert.NotEqual(t, prefix, tu.Peer, "%s set up a tunnel with the revoked node again", n)
		}
	}
}
