package node_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/tunnels/openvpn"
)

// Why a node restarted its OpenVPN servers, as it logs it (once a server).
const (
	restartParams  = `"why":"new network parameters"`
	restartRenewed = `"why":"certificate renewed"`
)

// logCount counts text in a node's log.
func logCount(t *testing.T, c *cluster.Cluster, name, text string) int {
	data, err := os.ReadFile(c.Node(name).Log())
	require.NoError(t, err)
	return strings.Count(string(data), text)
}

// certLifeOpenVPN is the certificates' life in the OpenVPN servers' test:
// renewed at half of it while the test runs.
const certLifeOpenVPN = 3 * time.Minute

// TestOpenVPNServersFollowParams: nodes whose tunnels are all OpenVPN over
// TCP. New network parameters (a hello interval of 5 s instead of 4: the
// servers' --ping-exit) restart every node's OpenVPN servers, and only
// them: the nodes keep running (one start each) and reach each other
// again over OpenVPN. Then n3 is revoked: the others' servers restart
// with the CRL (dropping a client connected before), and a client started
// with n3's certificate is refused by n1's server ("serial=N is revoked"
// in n1's log, where openvpn's output goes at debug level) and ends. The
// certificates (3 minutes) are renewed meanwhile, each renewal restarting
// the node's servers, the nodes running on.
func TestOpenVPNServersFollowParams(t *testing.T) {
	clusterTest(t)
	in := internet.ForTest(t, internet.Spec{
		ISPs: []internet.ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []internet.HostSpec{
			{Name: "registry", On: "isp1"}, {Name: "n1", On: "isp1"}, {Name: "n2", On: "isp1"}, {Name: "n3", On: "isp1"},
		},
	})
	certArgs := []string{"--cert-duration", certLifeOpenVPN.String()}
	c := cluster.ForTest(t, cluster.Options{Internet: in, LogLevel: "debug", RegistryArgs: certArgs, NodeArgs: func(*cluster.Node) []string {
		return []string{"--tunnel-types", "openvpn-tcp"}
	}})
	require.NoError(t, c.StartNodes())
	m, err := c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability:\n%v", m)
	live := []string{"registry", "n1", "n2"}

	c.SetRegistryArgs(append(certArgs, "--hello", "5")...)
	require.NoError(t, c.KillRegistry())
	require.NoError(t, c.StartRegistry())
	require.Eventually(t, func() bool {
		for _, name := range c.Nodes() {
			s, err := c.NodeStatus(name)
			if err != nil || s.Params.Hello != 5 || logCount(t, c, name, restartParams) < 2 { // the IPv4 and IPv6 servers
				return false
			}
		}
		return true
	}, reachBound, time.Second, "every node takes hello 5 and restarts its servers")
	for _, name := range c.Nodes() {
		require.True(t, c.NodeRunning(name), name)
		s := nodeStatus(t, c, name)
		require.Len(t, s.OpenVPNServers, 2, name)
		for _, o := range s.OpenVPNServers {
			require.True(t, o.Running, "%s: %s", name, o.Device)
		}
		require.Equal(t, 1, logCount(t, c, name, `"message":"node up"`), "%s: never restarted whole", name)
	}
	m, err = c.WaitReachable(context.Background(), reachBound)
	require.NoError(t, err, "reachability after the servers' restart:\n%v", m)

	before := map[string]int{}
	for _, name := range live {
		before[name] = logCount(t, c, name, restartParams)
	}
	require.NoError(t, c.Revoke("n3"))
	require.Eventually(t, func() bool {
		for _, name := range live {
			if logCount(t, c, name, restartParams) < before[name]+2 {
				return false
			}
		}
		return !c.NodeRunning("n3")
	}, reachBound, time.Second, "n3 stops, the others' servers restart with the CRL")

	n1, n3 := c.Node("n1"), c.Node("n3")
	certPEM, err := os.ReadFile(filepath.Join(n3.Dir, "cert.crt")) // the last one n3 had
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	serial := cert.SerialNumber.String()
	args, err := openvpn.ClientArgs(openvpn.ClientConfig{
		Common: openvpn.Common{Dev: "revoked", CA: filepath.Join(n3.Dir, "ca.crt"), Cert: filepath.Join(n3.Dir, "cert.crt"),
			Key: filepath.Join(n3.Dir, "cert.key"), Timeout: 20 * time.Second},
		Remote: netip.AddrPortFrom(n1.Host.Addr, 1194), Proto: openvpn.TCP, PeerName: n1.CN})
	require.NoError(t, err)
	cl, err := openvpn.Start(n3.Host.NS.Command(context.Background(), append([]string{openvpn.Binary}, args...)...), zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	select {
	case <-cl.Done():
	case <-time.After(reachBound):
		t.Fatalf("the revoked node's client went on:\n%s", cl.Output())
	}
	require.NotContains(t, cl.Output(), "Initialization Sequence Completed")
	require.Eventually(t, func() bool { return c.NodeLogContains("n1", "serial="+serial+" is revoked") }, 10*time.Second, 100*time.Millisecond,
		"n1's server refused n3's certificate by its CRL")
	var hosts []*internet.Host
	var addrs []netip.Addr
	for _, name := range live {
		hosts, addrs = append(hosts, c.Node(name).Host), append(addrs, c.Node(name).Addr)
	}
	require.Eventually(t, func() bool {
		for _, row := range internet.PingAll(hosts, addrs) {
			for _, err := range row {
				if err != nil {
					return false
				}
			}
		}
		return true
	}, reachBound, time.Second, "the others reach each other without n3")

	// Renewed (at half their life), the certificates restarted the
	// servers; the nodes ran on.
	require.Eventually(t, func() bool {
		for _, name := range live {
			if !c.NodeLogContains(name, `"message":"certificate renewed"`) || logCount(t, c, name, restartRenewed) < 2 {
				return false
			}
		}
		return true
	}, certLifeOpenVPN, time.Second, "every node renews its certificate and restarts its servers")
	for _, name := range live {
		require.True(t, c.NodeRunning(name), name)
		require.Equal(t, 1, logCount(t, c, name, `"message":"node up"`), "%s: never restarted whole", name)
	}
}
