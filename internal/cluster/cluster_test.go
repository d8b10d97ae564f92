package cluster

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/client"
)

// TestEnrolment starts the registry on the default internet and enrols
// every node; re6stnet is neither built nor started.
func TestEnrolment(t *testing.T) {
	c := ForTest(t, Options{Bin: Build(t, "re6st-registry", "re6st-conf")})
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

	// Nodes that are not running cannot be stopped; unknown ones are errors.
	require.Error(t, c.StopNode("n2"))
	require.Error(t, c.Ping("n2", "nosuch"))
	require.False(t, c.NodeAddr("nosuch").IsValid())
	require.FileExists(t, c.RegistryLog())
	require.Len(t, c.Logs(), 1+len(names))
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
