package openvpn

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The arguments as re6st gives them: TAP, the node's certificate, no
// cipher unless the network encrypts, re6st's link MTU over UDP (IPv4 or
// IPv6), the server's name checked by the client, the CRL directory.
func TestArgs(t *testing.T) {
	c := Common{Dev: "t3", CA: "/ca.crt", Cert: "/cert.crt", Key: "/cert.key", Timeout: 16 * time.Second}
	srv, err := ServerArgs(ServerConfig{Common: c, Port: 1194, Proto: UDP, MaxClients: 10})
	require.NoError(t, err)
	require.Equal(t, "--dev-type tap --dev t3 --persist-tun --persist-key --ca /ca.crt --cert /cert.crt --key /cert.key "+
		"--ping-exit 16 --verb 3 --cipher none --data-ciphers "+clearCiphers+" --link-mtu 1525 --mtu-disc yes "+
		"--tls-server --mode server --dh none --max-clients 10 --port 1194 --proto udp4", strings.Join(srv, " "))

	c.Encrypt = true
	cl, err := ClientArgs(ClientConfig{Common: c, Remote: netip.MustParseAddrPort("192.0.2.1:1194"), Proto: TCP, PeerName: "5/16"})
	require.NoError(t, err)
	require.Equal(t, "--dev-type tap --dev t3 --persist-tun --persist-key --ca /ca.crt --cert /cert.crt --key /cert.key "+
		"--ping-exit 16 --verb 3 --nobind --client --remote 192.0.2.1 1194 tcp "+
		"--verify-x509-name 5/16 name --resolv-retry 0 --connect-retry-max 3 --tls-exit --remap-usr1 SIGTERM", strings.Join(cl, " "),
		"a network that encrypts: OpenVPN's default ciphers")

	// Over IPv6, re6st's tcp6 and udp6 items: the remote's family gives
	// the client's protocol; our servers listen on IPv6 only.
	c.Encrypt, c.CRLDir = false, "/run/crl"
	cl, err = ClientArgs(ClientConfig{Common: c, Remote: netip.MustParseAddrPort("[2001:db8::1]:1195"), Proto: UDP, PeerName: "5/16"})
	require.NoError(t, err)
	require.Equal(t, "--dev-type tap --dev t3 --persist-tun --persist-key --ca /ca.crt --cert /cert.crt --key /cert.key "+
		"--ping-exit 16 --verb 3 --cipher none --data-ciphers "+clearCiphers+" --crl-verify /run/crl dir "+
		"--nobind --client --remote 2001:db8::1 1195 udp6 --link-mtu 1450 --mtu-disc yes "+
		"--verify-x509-name 5/16 name --resolv-retry 0 --connect-retry-max 3 --tls-exit --remap-usr1 SIGTERM", strings.Join(cl, " "))
	cl, err = ClientArgs(ClientConfig{Common: c, Remote: netip.MustParseAddrPort("[2001:db8::1]:1194"), Proto: TCP, PeerName: "5/16"})
	require.NoError(t, err)
	require.Contains(t, strings.Join(cl, " "), " --remote 2001:db8::1 1194 tcp6 --verify-x509-name")
	srv, err = ServerArgs(ServerConfig{Common: c, Port: 1194, Proto: UDP, IPv6: true, MaxClients: 10})
	require.NoError(t, err)
	require.Contains(t, strings.Join(srv, " "), " --link-mtu 1543 --mtu-disc yes --tls-server --mode server --dh none --max-clients 10 --port 1194 --proto udp6 --bind ipv6only")
	srv, err = ServerArgs(ServerConfig{Common: c, Port: 1194, Proto: TCP, IPv6: true, MaxClients: 10})
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(strings.Join(srv, " "), " --port 1194 --proto tcp6-server --bind ipv6only"), srv)
	srv, err = ServerArgs(ServerConfig{Common: c, Port: 1194, Proto: TCP, MaxClients: 10})
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(strings.Join(srv, " "), " --port 1194 --proto tcp-server"), srv)

	_, err = ServerArgs(ServerConfig{Common: c, Proto: "tcp6"})
	require.Error(t, err, "the family is IPv6, not the protocol")
	_, err = ClientArgs(ClientConfig{Common: c, Proto: TCP})
	require.Error(t, err, "no remote")

	require.Equal(t, 1472, TAPMTU(TCP, 1472))
	require.Equal(t, 1400, TAPMTU(UDP, 1472), "re6st's link MTU over UDP")
	require.Equal(t, 1280, TAPMTU(UDP, 1280))
}

// TestWriteCRLDir: one empty file per revoked serial, in decimal; serials
// no longer revoked lose theirs.
func TestWriteCRLDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crl")
	require.NoError(t, WriteCRLDir(dir, []uint64{3, 18446744073709551615}))
	require.Equal(t, []string{"18446744073709551615", "3"}, names(t, dir))
	require.NoError(t, WriteCRLDir(dir, []uint64{3, 7}))
	require.Equal(t, []string{"3", "7"}, names(t, dir))
	require.NoError(t, WriteCRLDir(dir, nil))
	require.Empty(t, names(t, dir))
}

func names(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		require.Zero(t, info.Size())
		out = append(out, e.Name())
	}
	return out
}
