package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// TestBGPFlagsInOptionFile: the --bgp-* options read from an @file like
// every other option.
func TestBGPFlagsInOptionFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "re6stnet.conf")
	require.NoError(t, os.WriteFile(file, []byte(`gateway
bgp-asn 65000
bgp-router-id 192.0.2.7
bgp-listen-port 0
bgp-peer 2001:db8:ffff::1,65001,password=s3cret,multihop=2
bgp-peer 192.0.2.1,1.10,port=1179
bgp-announce 2001:db8:42:4000::/50
bgp-community-bits 2
`), 0o600))
	var f nodeFlags
	cmd := &cobra.Command{Use: "re6stnet"}
	addNodeFlags(cmd, &f)
	args, err := atfile.Expand([]string{"@" + file}, atfile.Spec{Flags: []*pflag.FlagSet{cmd.Flags()}})
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags(args))
	cfg, err := f.config()
	require.NoError(t, err)
	require.True(t, cfg.Gateway)
	require.Equal(t, node.BGPConfig{
		ASN: 65000, RouterID: netip.MustParseAddr("192.0.2.7"), ListenPort: 0,
		Peers: []bgp.Peer{
			{Address: netip.MustParseAddr("2001:db8:ffff::1"), ASN: 65001, Password: "s3cret", Multihop: 2},
			{Address: netip.MustParseAddr("192.0.2.1"), ASN: 1<<16 | 10, Port: 1179},
		},
		Announce:      []netip.Prefix{netip.MustParsePrefix("2001:db8:42:4000::/50")},
		CommunityBits: 2,
	}, cfg.BGP)

	for _, bad := range [][]string{{"--bgp-asn", "x"}, {"--bgp-peer", "2001:db8::1"}, {"--bgp-announce", "10.0.0.0/8"}, {"--bgp-router-id", "r1"}} {
		var f nodeFlags
		cmd := &cobra.Command{Use: "re6stnet"}
		addNodeFlags(cmd, &f)
		require.NoError(t, cmd.ParseFlags(bad))
		_, err := f.config()
		require.Error(t, err, bad)
	}
}
