package cluster

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
)

// fakeNode stands in for re6stnet: it prints its arguments, answers
// status, and leaves a child behind in its process group when stopped.
const fakeNode = `#!/bin/sh
if [ "$1" = status ]; then echo '{"prefix":"fake"}'; exit 0; fi
echo "args: $*"
trap 'echo stopped; exit 0' TERM
sleep 1000 & wait
`

// TestWithoutDaemon starts the registry on the default internet and enrols
// every node; a script stands in for re6stnet to test process handling.
func TestWithoutDaemon(t *testing.T) {
	bin := Build(t, "re6st-registry", "re6st-conf")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "re6stnet"), []byte(fakeNode), 0o755))
	c := ForTest(t, Options{Bin: bin})
	names := c.Nodes()
	require.Len(t, names, 9)
	require.Equal(t, "registry", names[0])
	network := c.opts.Network
	subnets := map[string]string{}
	for _, name := range names {
		n := c.Node(name)
		for _, f := range []string{"ca.crt", "cert.crt", "cert.key", "re6stnet.conf"} {
			_, err := os.Stat(filepath.Join(n.Dir, f))
			require.NoError(t, err, name)
		}
		require.Equal(t, 64, n.Subnet.Bits(), name)
		require.True(t, network.Contains(n.Subnet.Addr()), "%s: %s", name, n.Subnet)
		require.Equal(t, n.Subnet.Addr().Next(), c.NodeAddr(name))
		other, dup := subnets[n.Subnet.String()]
		require.False(t, dup, "%s and %s share %s", name, other, n.Subnet)
		subnets[n.Subnet.String()] = name
	}

	// The registry knows them all, the first one as its own node; it keeps
	// them across a SIGKILL.
	listed := func() []client.Prefix {
		out, err := c.admin("nodes", "--json")
		require.NoError(t, err)
		var nodes []client.Prefix
		require.NoError(t, json.Unmarshal([]byte(out), &nodes), out)
		return nodes
	}
	require.Len(t, listed(), len(names))
	require.NoError(t, c.KillRegistry())
	require.Error(t, c.KillRegistry())
	require.NoError(t, c.StartRegistry())
	require.Len(t, listed(), len(names))

	// Revoking by CN frees the node's prefix.
	require.NoError(t, c.Revoke("n1"))
	require.Len(t, listed(), len(names)-1)
	out, err := c.admin("prefixes")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^`+c.Node("n1").Subnet.String()+` +free`, out)

	// Processes: the right flags, stopped with their process group.
	require.Error(t, c.StopNode("n2"))
	require.NoError(t, c.StartNodes())
	require.Error(t, c.StartNode("n2"))
	require.Eventually(t, func() bool { return strings.Contains(tail(c.Node("n7").Log(), 1), "args:") }, 30*time.Second, 20*time.Millisecond)
	args := tail(c.Node("n7").Log(), 1)
	require.Contains(t, args, "--netns "+c.Node("n7").Host.NS.Name)
	require.Contains(t, args, "--instance "+c.Node("n7").Instance())
	require.Contains(t, args, "-i eth0")
	require.Contains(t, args, "@"+filepath.Join(c.Node("n7").Dir, "re6stnet.conf"), "started from the file re6st-conf wrote")
	require.NotContains(t, tail(c.Node("n1").Log(), 1), "-i ")
	status, err := c.Status("n2")
	require.NoError(t, err)
	require.JSONEq(t, `{"prefix":"fake"}`, string(status))
	group := -c.Node("n2").proc.cmd.Process.Pid
	require.NoError(t, c.StopNode("n2"))
	groupGone := func(group int) func() bool {
		return func() bool { return errors.Is(syscall.Kill(group, 0), syscall.ESRCH) }
	}
	require.Eventually(t, groupGone(group), 30*time.Second, 20*time.Millisecond, "the group is gone")
	require.Contains(t, tail(c.Node("n2").Log(), 1), "stopped")
	require.NoError(t, c.StartNode("n2"))
	require.NoError(t, c.RestartNode("n2"))
	require.NoError(t, c.KillNode("n2"))
	require.Error(t, c.KillNode("n2"))
	// Down finds what is left through the pid files.
	pid := c.Node("n3").proc.cmd.Process.Pid
	require.FileExists(t, filepath.Join(c.Node("n3").Dir, "re6stnet.pid"))
	require.NoError(t, Down(c.opts.Dir))
	require.Eventually(t, c.Node("n3").proc.exited, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, groupGone(-pid), 30*time.Second, 20*time.Millisecond)
	require.NoFileExists(t, filepath.Join(c.Node("n3").Dir, "re6stnet.pid"))
	_, err = c.admin("nodes")
	require.Error(t, err, "the registry is down too")
	require.NoError(t, c.StartRegistry())

	// Unknown nodes are errors.
	require.Error(t, c.Ping("n2", "nosuch"))
	require.False(t, c.NodeAddr("nosuch").IsValid())
	require.FileExists(t, c.RegistryLog())
	require.Len(t, c.Logs(), 1+2*len(names))
}

func TestMatrix(t *testing.T) {
	lost := errors.New("lost")
	m := Matrix{Nodes: []string{"a", "b", "c"}, Errs: [][]error{
		{lost, nil, nil},
		{nil, nil, lost},
		{nil, nil, nil},
	}}
	require.Equal(t, 6, m.Pairs())
	require.Equal(t, 5, m.OK())
	require.Equal(t, 1, m.Reachable()) // a: b→c fails, so b and c are not
	lines := strings.Split(strings.TrimRight(m.String(), "\n"), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^ *b +ok +\. +--$`, lines[2])
}

// TestGatewayOption: the gateway runs with --gateway and its upstream
// routes the network back to it; a gateway without an upstream is refused.
func TestGatewayOption(t *testing.T) {
	bin := Build(t, "re6st-registry", "re6st-conf")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "re6stnet"), []byte(fakeNode), 0o755))
	in := internet.ForTest(t, internet.Spec{
		ISPs:     []internet.ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts:    []internet.HostSpec{{Name: "registry", On: "isp"}, {Name: "gw", On: "isp"}},
		Upstream: []string{"gw"},
	})
	_, err := Start(Options{Internet: in, Bin: bin, Dir: t.TempDir(), Gateways: []string{"registry"}})
	require.ErrorContains(t, err, "no upstream")

	c := ForTest(t, Options{Internet: in, Bin: bin, Gateways: []string{"gw"}})
	out, err := in.Upstream().NS.Run("ip", "-6", "route", "show", c.opts.Network.String())
	require.NoError(t, err)
	require.Contains(t, out, "via "+in.Upstream().HostAddr.String())
	require.NoError(t, c.StartNodes())
	for name, gateway := range map[string]bool{"gw": true, "registry": false} {
		log := c.Node(name).Log()
		require.Eventually(t, func() bool { return strings.Contains(tail(log, 1), "args:") }, 30*time.Second, 20*time.Millisecond)
		require.Equal(t, gateway, strings.Contains(tail(log, 1), "--gateway"), name)
	}
}
