package node

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/loader"
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

func TestTunnelTypesOption(t *testing.T) {
	cfg := Config{Registry: "http://registry", CA: "ca.crt", Cert: "cert.crt", Key: "cert.key", Encap: loader.FOU,
		TunnelTypes: []string{"gre", "openvpn-tcp"}}
	require.ErrorContains(t, cfg.check(), `--tunnel-types: "openvpn-tcp"`)
	cfg.TunnelTypes = []string{"fou", "wireguard"}
	require.NoError(t, cfg.check())
	require.Equal(t, uint16(DefaultWireGuardPort), cfg.WireGuardPort)
	require.True(t, cfg.offersWireGuard())
	cfg.TunnelTypes = []string{"gre", "fou"}
	require.NoError(t, cfg.check())
	require.False(t, cfg.offersWireGuard())
	require.Equal(t, []string{"gre", "fou"}, cfg.offeredTypes())
	cfg.TunnelTypes = nil
	require.Equal(t, []string{"fou"}, cfg.offeredTypes())
}
