package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
)

// --ipv6 ADDR, repeatable (also in re6st's @file, where it was ignored
// before): the OpenVPN servers' IPv6 addresses; "none" turns OpenVPN over
// IPv6 off; a value that is no address is refused.
func TestIPv6Flag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "re6stnet.conf")
	require.NoError(t, os.WriteFile(file, []byte("ipv6 2001:db8::2\n"), 0o600))
	var f nodeFlags
	cmd := &cobra.Command{Use: "re6stnet"}
	addNodeFlags(cmd, &f)
	args, err := atfile.Expand([]string{"@" + file, "--ipv6", "2001:db8::3"}, atfile.Spec{Flags: []*pflag.FlagSet{cmd.Flags()}})
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags(args))
	cfg, err := f.config()
	require.NoError(t, err)
	require.Equal(t, []netip.Addr{netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::3")}, cfg.IPv6)
	require.False(t, cfg.NoIPv6)

	f = nodeFlags{}
	cmd = &cobra.Command{Use: "re6stnet"}
	addNodeFlags(cmd, &f)
	require.NoError(t, cmd.ParseFlags([]string{"--ipv6", "none"}))
	cfg, err = f.config()
	require.NoError(t, err)
	require.True(t, cfg.NoIPv6)
	require.Empty(t, cfg.IPv6)

	f = nodeFlags{}
	cmd = &cobra.Command{Use: "re6stnet"}
	addNodeFlags(cmd, &f)
	require.NoError(t, cmd.ParseFlags([]string{"--ipv6", "any"}))
	_, err = f.config()
	require.ErrorContains(t, err, "--ipv6")
}
