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
		TunnelTypes: []string{"gre", "openvpn-tcp6"}}
	require.ErrorContains(t, cfg.check(), `--tunnel-types: "openvpn-tcp6"`)
	cfg.TunnelTypes = []string{"fou", "openvpn-tcp"}
	require.NoError(t, cfg.check())
	require.Equal(t, uint16(DefaultOpenVPNPort), cfg.OpenVPNPort)
	require.True(t, cfg.offersOpenVPN("openvpn-tcp"))
	require.False(t, cfg.offersOpenVPN("openvpn-udp"))
	require.False(t, cfg.offersOpenVPN("fou"), "not an OpenVPN type")
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

// OpenVPN encrypts when the network does (it then runs with a cipher);
// WireGuard always, FOU and GRE never.
func TestEncrypted(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		require.Equal(t, encrypt, encrypted("openvpn-tcp", encrypt))
		require.Equal(t, encrypt, encrypted("openvpn-udp", encrypt))
		require.True(t, encrypted("wireguard", encrypt))
		require.False(t, encrypted("fou", encrypt))
		require.False(t, encrypted("gre", encrypt))
	}
	require.NoError(t, checkEncryption(&netparams.Params{Encrypt: true}, []string{"fou", "openvpn-tcp"}),
		"a node offering OpenVPN joins a network that encrypts")
}
