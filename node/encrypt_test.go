package node

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

func TestCheckEncryption(t *testing.T) {
	clear := &netparams.Params{}
	encrypt := &netparams.Params{Encrypt: true}
	require.NoError(t, checkEncryption(clear, []string{"fou"}))
	require.NoError(t, checkEncryption(encrypt, []string{"fou", "wireguard"}))
	err := checkEncryption(encrypt, []string{"gre"})
	require.ErrorContains(t, err, "requires encrypted tunnels")
	require.ErrorContains(t, err, "(gre)")
	require.NotContains(t, err.Error(), "\n", "one line")
}
