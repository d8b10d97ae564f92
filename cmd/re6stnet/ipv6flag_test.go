package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
)

// --ipv6 ADDR, repeatable (also in re6st's @file, where it was ignored
// before): the OpenVPN servers' IPv6 addresses; "none" turns OpenVPN over
// IPv6 off; a value that is no address is refused.
func TestIPv6Flag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "re6stnet.conf")
	require.NoError(t, os.WriteFile(file, []byte("ipv6 2001:db8::2\n"), 0o600))
	cfg, err := parseNodeFlags(t, "@"+file, "--ipv6", "2001:db8::3")
	require.NoError(t, err)
	require.Equal(t, []netip.Addr{netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::3")}, cfg.IPv6)
	require.False(t, cfg.NoIPv6)

	cfg, err = parseNodeFlags(t, "--ipv6", "none")
	require.NoError(t, err)
	require.True(t, cfg.NoIPv6)
	require.Empty(t, cfg.IPv6)

	_, err = parseNodeFlags(t, "--ipv6", "any")
	require.ErrorContains(t, err, "--ipv6")
}

// parseNodeFlags is the node configuration re6stnet's arguments give
// (@files expanded).
func parseNodeFlags(t *testing.T, args ...string) (node.Config, error) {
	var f nodeFlags
	cmd := &cobra.Command{Use: "re6stnet"}
	addNodeFlags(cmd, &f)
	args, err := atfile.Expand(args, atfile.Spec{Flags: []*pflag.FlagSet{cmd.Flags()}})
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags(args))
	return f.config()
}
