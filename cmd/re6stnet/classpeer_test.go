package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// --class-peer NAME=PEER[,PEER…], repeatable (also in an @file): the peers
// add up per class; a value without NAME= or peers is refused.
func TestClassPeerFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "re6stnet.conf")
	require.NoError(t, os.WriteFile(file, []byte("class-peer keepalive=2/16,3/16\nclass-peer safety=4/16\n"), 0o600))
	var f nodeFlags
	cmd := &cobra.Command{Use: "re6stnet"}
	addNodeFlags(cmd, &f)
	args, err := atfile.Expand([]string{"@" + file, "--class-peer", "keepalive=5/16"}, atfile.Spec{Flags: []*pflag.FlagSet{cmd.Flags()}})
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags(args))
	cfg, err := f.config()
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"keepalive": {"2/16", "3/16", "5/16"}, "safety": {"4/16"}}, cfg.ClassPeers)

	for _, bad := range []string{"keepalive", "=2/16", "keepalive="} {
		var f nodeFlags
		cmd := &cobra.Command{Use: "re6stnet"}
		addNodeFlags(cmd, &f)
		require.NoError(t, cmd.ParseFlags([]string{"--class-peer", bad}))
		_, err := f.config()
		require.ErrorContains(t, err, "--class-peer", bad)
	}
}
