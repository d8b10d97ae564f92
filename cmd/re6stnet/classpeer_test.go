package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// --class-peer NAME=PEER[,PEER…], repeatable (also in an @file): the peers
// add up per class; a value without NAME= or peers is refused.
func TestClassPeerFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "re6stnet.conf")
	require.NoError(t, os.WriteFile(file, []byte("class-peer keepalive=2/16,3/16\nclass-peer safety=4/16\n"), 0o600))
	cfg, err := parseNodeFlags(t, "@"+file, "--class-peer", "keepalive=5/16")
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"keepalive": {"2/16", "3/16", "5/16"}, "safety": {"4/16"}}, cfg.ClassPeers)

	for _, bad := range []string{"keepalive", "=2/16", "keepalive="} {
		_, err := parseNodeFlags(t, "--class-peer", bad)
		require.ErrorContains(t, err, "--class-peer", bad)
	}
}
