package node

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/wireguard"
)

// testNode is a node with a key, a certificate for it (self-signed: the
// CA check is the node protocol's, before a binding is looked at) and the
// network parameters p, as far as the tunnel backend needs one.
func testNode(t *testing.T, prefix netip.Prefix, types []string, p *netparams.Params) (*Node, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	cfg := &Config{TunnelTypes: types}
	id := &identity{Identity: client.Identity{Cert: cert, Key: key}, prefix: prefix}
	return &Node{cfg: cfg, id: id, params: newNetParams(cfg, p, id)}, cert
}

// A WireGuard peer is accepted only with a binding signed by the key of
// the certificate the node protocol checked: a node whose key that
// certificate does not certify (a forged binding for the peer's prefix),
// or a binding for another node, is refused.
func TestWireGuardBindingChecked(t *testing.T) {
	prefix := netip.MustParsePrefix("2001:db8:42:1::/64")
	peer, peerCert := testNode(t, prefix, []string{"wireguard"}, &netparams.Params{})
	b, err := peer.newTunnelBackend()
	require.NoError(t, err)
	ours, err := b.Credential("wireguard")
	require.NoError(t, err)
	require.NoError(t, b.CheckCredential("wireguard", prefix, peerCert, ours), "the peer's own binding")

	// An uncertified key's binding for the peer's prefix.
	forger, _ := testNode(t, prefix, []string{"wireguard"}, &netparams.Params{})
	fb, err := forger.newTunnelBackend()
	require.NoError(t, err)
	forged, err := fb.Credential("wireguard")
	require.NoError(t, err)
	require.ErrorIs(t, b.CheckCredential("wireguard", prefix, peerCert, forged), wireguard.ErrBadSignature)

	// The peer's binding presented as another node's.
	other := netip.MustParsePrefix("2001:db8:42:2::/64")
	require.ErrorIs(t, b.CheckCredential("wireguard", other, peerCert, ours), wireguard.ErrWrongPrefix)
	require.Error(t, b.CheckCredential("wireguard", prefix, nil, ours), "no certificate")

	// FOU takes no credential.
	c, err := b.Credential("fou")
	require.NoError(t, err)
	require.Nil(t, c)
	require.Error(t, b.CheckCredential("fou", prefix, peerCert, ours))
}

// The backend carries WireGuard only when the node offers it, and only
// WireGuard when the network encrypts.
func TestTunnelBackendTypes(t *testing.T) {
	prefix := netip.MustParsePrefix("2001:db8:42:1::/64")
	for _, tc := range []struct {
		types   []string
		encrypt bool
		carries map[string]bool
	}{
		{[]string{"fou"}, false, map[string]bool{"fou": true, "gre": true, "wireguard": false, "openvpn-tcp": false, "openvpn-udp": false}},
		{[]string{"fou", "wireguard"}, false, map[string]bool{"fou": true, "gre": true, "wireguard": true}},
		{[]string{"fou", "wireguard"}, true, map[string]bool{"fou": false, "gre": false, "wireguard": true}},
		{[]string{"fou"}, true, map[string]bool{"fou": false, "gre": false, "wireguard": false}},
	} {
		n, _ := testNode(t, prefix, tc.types, &netparams.Params{Encrypt: tc.encrypt})
		b, err := n.newTunnelBackend()
		require.NoError(t, err)
		for encap, want := range tc.carries {
			require.Equal(t, want, b.Carries(encap), "types %v, encrypt %v: %s", tc.types, tc.encrypt, encap)
		}
		require.Equal(t, slices.Contains(tc.types, "wireguard"), b.wg != nil, "a WireGuard key when offered")
	}
}

// A node that offers WireGuard advertises its first WireGuard port beside
// its FOU port, on each address.
func TestAdvertisedWireGuard(t *testing.T) {
	ip := netip.MustParseAddr("198.18.1.2")
	n := &Node{cfg: &Config{IPs: []netip.Addr{ip}, Encap: loader.FOU, FOUPort: 5555, WireGuardPort: 51820,
		TunnelTypes: []string{"fou", "wireguard"}}}
	require.Equal(t, "198.18.1.2,5555,fou;198.18.1.2,51820,wireguard", nodeproto.FormatAddresses(n.advertised()))
	n.cfg.TunnelTypes = []string{"fou"}
	require.Equal(t, "198.18.1.2,5555,fou", nodeproto.FormatAddresses(n.advertised()))
	// OpenVPN: re6st's items, at --openvpn-port; over IPv6 (--ipv6) its
	// tcp6 and udp6 items after the IPv4 ones; none with --ipv6 none.
	n.cfg.TunnelTypes, n.cfg.OpenVPNPort = []string{"fou", "openvpn-tcp", "openvpn-udp"}, 1194
	n.cfg.IPv6 = []netip.Addr{netip.MustParseAddr("2001:db8::2")}
	require.Equal(t, "198.18.1.2,5555,fou;198.18.1.2,1194,tcp;198.18.1.2,1194,udp;2001:db8::2,1194,tcp6;2001:db8::2,1194,udp6",
		nodeproto.FormatAddresses(n.advertised()))
	n.cfg.IPv6, n.cfg.NoIPv6 = nil, true
	require.Equal(t, "198.18.1.2,5555,fou;198.18.1.2,1194,tcp;198.18.1.2,1194,udp", nodeproto.FormatAddresses(n.advertised()))
}

// --ipv6 takes global IPv6 addresses only, and not beside none.
func TestIPv6Option(t *testing.T) {
	base := Config{Registry: "http://r/", CA: "ca", Cert: "c", Key: "k", Encap: loader.FOU}
	for _, bad := range []string{"198.18.1.2", "::ffff:198.18.1.2", "fe80::1", "ff02::1", "::1"} {
		c := base
		c.IPv6 = []netip.Addr{netip.MustParseAddr(bad)}
		require.Error(t, c.check(), bad)
	}
	c := base
	c.IPv6 = []netip.Addr{netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("fd00::2")}
	require.NoError(t, c.check())
	c.NoIPv6 = true
	require.Error(t, c.check(), "none with addresses")
	c.IPv6 = nil
	require.NoError(t, c.check())
	require.Empty(t, c.ovpnServers(), "no OpenVPN type: no server")
	c.TunnelTypes = []string{"fou", "openvpn-udp"}
	require.Equal(t, []ovpnServer{{encap: "openvpn-udp"}}, c.ovpnServers(), "--ipv6 none: IPv4 only")
	c.NoIPv6 = false
	require.Equal(t, []ovpnServer{{encap: "openvpn-udp"}, {encap: "openvpn-udp", ipv6: true}}, c.ovpnServers())
	require.Equal(t, "re6stnet-udp6", c.ovpnServers()[1].device())
}
