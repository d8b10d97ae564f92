package openvpn

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The arguments as re6st gives them: TAP, the node's certificate, no
// cipher unless the network encrypts, re6st's link MTU over UDP, the
// server's name checked by the client.
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

	_, err = ClientArgs(ClientConfig{Common: c, Remote: netip.MustParseAddrPort("[2001:db8::1]:1194"), Proto: TCP})
	require.Error(t, err, "the underlay is IPv4")
	_, err = ServerArgs(ServerConfig{Common: c, Proto: "tcp6"})
	require.Error(t, err)

	require.Equal(t, 1472, TAPMTU(TCP, 1472))
	require.Equal(t, 1400, TAPMTU(UDP, 1472), "re6st's link MTU over UDP")
	require.Equal(t, 1280, TAPMTU(UDP, 1280))
}
