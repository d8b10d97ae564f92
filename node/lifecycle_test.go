package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallSpec is a registry and three nodes on two ISPs.
func smallSpec() internet.Spec {
	return internet.Spec{
		ISPs: []internet.ISP{
			{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
			{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
		},
		Hosts: []internet.HostSpec{{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp2"}, {Name: "n3", On: "isp2"}},
	}
}

// certLife is the certificates' lifetime in TestLifecycle: nodes renew
// them at half their life, every 90 s.
const certLife = 3 * time.Minute

// TestLifecycle runs a small network through what a node left running for
// years meets: certificate renewal (with the registry down when it is
// due), new network parameters (client_count, then update-hmac's three
// steps under a continuous ping), revocation, and a start with an expired
// certificate.
func TestLifecycle(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, smallSpec())
	registryArgs := []string{"--cert-duration", certLife.String()}
	c := cluster.ForTest(t, cluster.Options{Internet: in, ClientCount: 1, MaxClients: 6, TunnelRefresh: 600,
		RegistryArgs: registryArgs})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)

	t.Run("the certificate is renewed while running, the registry down when it is due", func(t *testing.T) {
		testRenewal(t, c)
	})
	t.Run("a new client_count applies within one refresh", func(t *testing.T) {
		testClientCount(t, c, registryArgs)
	})
	t.Run("update-hmac's three steps under a continuous ping lose nothing", func(t *testing.T) {
		testKeyRotation(t, c)
	})
	t.Run("a revoked node says so and stops", func(t *testing.T) { testRevokedStops(t, c) })
	t.Run("a node down past its certificate's expiry renews it at start", func(t *testing.T) { testExpiredAtStart(t, c) })
}

func testExpiredAtStart(t *testing.T, c *cluster.Cluster) {
	require.NoError(t, c.StopNode("n2"))
	stopped := time.Now()
	certPEM, err := os.ReadFile(filepath.Join(c.Node("n2").Dir, "cert.crt"))
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	// Down past its certificate's expiry, and past the time peers keep a
	// silent tunnel (20 hellos and a 5 s tick: 85 s), which the expiry of
	// a certificate renewed at half its life usually covers, not always.
	restart := cert.NotAfter
	if gone := stopped.Add(90 * time.Second); gone.After(restart) {
		restart = gone
	}
	require.Eventually(t, func() bool { return time.Now().After(restart) }, certLife+10*time.Second, time.Second)
	require.NoError(t, c.StartNode("n2"))
	var s node.Status
	require.Eventually(t, func() bool {
		var err error
		s, err = c.NodeStatus("n2")
		return err == nil
	}, 60*time.Second, time.Second, "n2 did not start with an expired certificate")
	up := time.Now()
	assert.True(t, s.Certificate.Expires.After(time.Now()), "n2 runs with a renewed certificate")
	assert.NotEqual(t, cert.SerialNumber.String(), s.Certificate.Serial)
	assert.True(t, c.NodeLogContains("n2", "certificate expired: renewing it before anything else"))
	assert.True(t, c.NodeLogContains("n2", "down longer than peers keep a silent tunnel"))
	// New tunnels at the first tick, then Babel's two Hellos and an update:
	// 20 s unloaded; the bound leaves room for a loaded machine.
	require.Eventually(t, func() bool { return c.Ping("n2", "n1") == nil }, 90*time.Second, time.Second)
	t.Logf("n2 reaches n1 %s after its status answered", time.Since(up).Round(time.Second))
}

func testRenewal(t *testing.T, c *cluster.Cluster) {
	before := nodeStatus(t, c, "n1")
	require.WithinDuration(t, before.Certificate.Expires.Add(-certLife/2), before.Certificate.RenewAt, time.Second,
		"renewal is due at half the life of a short certificate")
	require.NoError(t, c.KillRegistry())
	registryUp := false
	t.Cleanup(func() {
		if !registryUp {
			assert.NoError(t, c.StartRegistry())
		}
	})
	var failed node.Status
	require.Eventually(t, func() bool {
		failed = nodeStatus(t, c, "n1")
		return failed.Certificate.LastError != ""
	}, certLife/2+30*time.Second, time.Second, "no failed renewal while the registry is down")
	t.Logf("renewal failed as it should: %s", failed.Certificate.LastError)
	assert.Equal(t, before.Certificate.Serial, failed.Certificate.Serial)
	tunnels := map[uint32]time.Duration{}
	for _, tu := range failed.Tunnels {
		tunnels[tu.ID] = time.Duration(tu.Age)
	}
	require.NoError(t, c.StartRegistry())
	registryUp = true
	restarted := time.Now()
	var renewed node.Status
	require.Eventually(t, func() bool {
		renewed = nodeStatus(t, c, "n1")
		return renewed.Certificate.Serial != before.Certificate.Serial
	}, 60*time.Second, time.Second, "the certificate was not renewed once the registry came back")
	t.Logf("renewed %s after the registry came back: serial %s → %s, expires %s",
		time.Since(restarted).Round(time.Second), before.Certificate.Serial, renewed.Certificate.Serial, renewed.Certificate.Expires.Format(time.TimeOnly))
	assert.Empty(t, renewed.Certificate.LastError)
	assert.False(t, renewed.Certificate.LastRenewed.IsZero())
	assert.True(t, renewed.Certificate.Expires.After(before.Certificate.Expires))
	for _, tu := range renewed.Tunnels {
		delete(tunnels, tu.ID)
	}
	assert.Empty(t, tunnels, "tunnels dropped by the renewal")
	written, err := os.ReadFile(filepath.Join(c.Node("n1").Dir, "cert.crt"))
	require.NoError(t, err)
	assert.Contains(t, string(written), "CERTIFICATE", "the new certificate is written in place")
	// Peers take the new certificate: the node protocol still works.
	_, err = c.Versions()
	require.NoError(t, err)
	_, err = c.WaitReachable(context.Background(), 30*time.Second)
	require.NoError(t, err)
}

// outgoing counts the outgoing tunnels of every node.
func outgoing(t *testing.T, c *cluster.Cluster) (total int, perNode map[string]int) {
	perNode = map[string]int{}
	for _, n := range c.Nodes() {
		for _, tu := range nodeStatus(t, c, n).Tunnels {
			if tu.Outgoing {
				perNode[n]++
				total++
			}
		}
	}
	return total, perNode
}

// waitVersion waits until every node runs a version newer than v and
// returns it.
func waitVersion(t *testing.T, c *cluster.Cluster, v uint64, within time.Duration) uint64 {
	t.Helper()
	var got uint64
	require.Eventually(t, func() bool {
		got = 0
		for _, n := range c.Nodes() {
			s, err := c.NodeStatus(n)
			if err != nil || s.Params.Version <= v {
				return false
			}
			got = max(got, s.Params.Version)
		}
		return true
	}, within, time.Second, "new parameters did not reach every node")
	return got
}

func testClientCount(t *testing.T, c *cluster.Cluster, registryArgs []string) {
	before, _ := outgoing(t, c)
	version := nodeStatus(t, c, "n1").Params.Version
	c.SetRegistryArgs(append(registryArgs, "--client-count", "2")...)
	require.NoError(t, c.KillRegistry())
	require.NoError(t, c.StartRegistry())
	start := time.Now()
	waitVersion(t, c, version, 60*time.Second)
	var total int
	var perNode map[string]int
	require.Eventually(t, func() bool {
		total, perNode = outgoing(t, c)
		return total > before && nodeStatus(t, c, "n1").ClientCount == 2
	}, tunnelRefresh, time.Second, "no more tunnels after client_count went from 1 to 2")
	t.Logf("client_count 1 → 2: %d → %d outgoing tunnels %v, %s after the registry restarted",
		before, total, perNode, time.Since(start).Round(time.Second))
	for n, count := range perNode {
		assert.LessOrEqual(t, count, 2, n)
	}
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func testKeyRotation(t *testing.T, c *cluster.Cluster) {
	// A continuous ping n1 → n3 over the overlay, 20 a second.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ping := c.Node("n1").Host.NS.Command(ctx, "ping", "-6", "-n", "-i", "0.05", c.NodeAddr("n3").String())
	var out strings.Builder
	ping.Stdout = &out
	require.NoError(t, ping.Start())
	version := nodeStatus(t, c, "n1").Params.Version
	start := time.Now()
	for step := 1; step <= 3; step++ {
		require.NoError(t, c.UpdateHMAC())
		version = waitVersion(t, c, version, 60*time.Second)
		t.Logf("update-hmac step %d: version %d on every node after %s", step, version, time.Since(start).Round(time.Second))
		time.Sleep(3 * hello) // hellos and updates under the new keys, before the next step
	}
	require.NoError(t, ping.Process.Signal(syscall.SIGINT))
	_ = ping.Wait()
	m := pingSummary.FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	sent, _ := strconv.Atoi(m[1])
	received, _ := strconv.Atoi(m[2])
	t.Logf("rotation: %d pings over %s, %d answered", sent, time.Since(start).Round(time.Second), received)
	assert.Greater(t, sent, 100)
	assert.Equal(t, sent, received, "pings lost during the key rotation")
	for _, n := range c.Nodes() {
		assert.True(t, c.NodeLogContains(n, "MAC keys applied live"), n)
	}
	_, err := c.WaitReachable(context.Background(), 30*time.Second)
	require.NoError(t, err, "reachability after the rotation")
}

func testRevokedStops(t *testing.T, c *cluster.Cluster) {
	require.NoError(t, c.Revoke("n3"))
	start := time.Now()
	require.Eventually(t, func() bool { return !c.NodeRunning("n3") }, 90*time.Second, time.Second, "the revoked node still runs")
	t.Logf("n3 revoked: stopped after %s", time.Since(start).Round(time.Second))
	assert.True(t, c.NodeLogContains("n3", "our certificate is revoked: stopping"))
	r, err := node.ReadRevocation(c.Node("n3").StateDir())
	require.NoError(t, err)
	assert.NotEmpty(t, r.Reason)
	text, err := c.StatusText("n3")
	require.Error(t, err)
	assert.Contains(t, text, "revoked")
	// Started again with that certificate, it refuses at once.
	require.NoError(t, c.StartNode("n3"))
	require.Eventually(t, func() bool { return !c.NodeRunning("n3") }, 30*time.Second, 500*time.Millisecond)
	assert.True(t, c.NodeLogContains("n3", fmt.Sprintf("%s (found on", node.ErrRevoked)))
}
