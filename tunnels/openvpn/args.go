package openvpn

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Protocols of re6st's OpenVPN items (`ip,port,tcp` and `ip,port,udp`:
// over an IPv4 underlay).
const (
	TCP = "tcp"
	UDP = "udp"
)

// linkMTU is what re6st gives --link-mtu for OpenVPN over UDP and IPv4
// (its client; its server adds 93), with --mtu-disc yes.
const linkMTU = 1432

// udpTAPMTU is the largest MTU of a TAP device over UDP: re6st's link
// MTU (1432) leaves room for IPv6 packets of 1428 bytes with no cipher
// (measured: TestInteropRe6st); 1400 keeps a margin for other ciphers'
// headers.
const udpTAPMTU = 1400

// TAPMTU is the MTU of a TAP device over proto, for an overlay whose MTU
// is overlay: over TCP the overlay's, over UDP no more than re6st's link
// MTU carries. A larger packet gets a Packet Too Big from the kernel,
// which routes into the TAP devices.
func TAPMTU(proto string, overlay int) int {
	if proto == UDP {
		return min(overlay, udpTAPMTU)
	}
	return overlay
}

// Common are the arguments of both ends.
type Common struct {
	Dev           string // the TAP device
	CA, Cert, Key string // the network's CA, the node's certificate and key (PEM files)
	// Encrypt: the network encrypts (`encrypt` in its parameters);
	// otherwise the data channel has no cipher (--cipher none).
	Encrypt bool
	// Timeout is re6st's tunnel timeout (4 hello intervals): --ping-exit.
	Timeout time.Duration
}

// clearCiphers is --data-ciphers in a network that does not encrypt:
// "none" first, so that two of our nodes agree on no cipher, then
// OpenVPN 2.6's defaults. A re6st node gives --cipher none alone, which
// OpenVPN 2.6 ignores in its negotiation (it warns so): run with 2.6, it
// offers and accepts the defaults only, and our ends agree on AES-256-GCM
// with it (TestInteropRe6st).
const clearCiphers = "none:AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"

// args are the arguments re6st's plib.openvpn gives every openvpn, but its
// scripts: the TAP device exists and is up before openvpn starts
// (CreateTAP). re6st also gives --ncp-disable, which OpenVPN 2.6 refuses.
func (c Common) args() []string {
	a := []string{"--dev-type", "tap", "--dev", c.Dev, "--persist-tun", "--persist-key",
		"--ca", c.CA, "--cert", c.Cert, "--key", c.Key,
		"--ping-exit", seconds(c.Timeout), "--verb", "3"}
	if !c.Encrypt {
		a = append(a, "--cipher", "none", "--data-ciphers", clearCiphers)
	}
	return a
}

func seconds(d time.Duration) string { return strconv.Itoa(max(1, int(d/time.Second))) }

// ServerConfig is one OpenVPN server: one TAP device for all its clients,
// as re6st runs one per protocol.
type ServerConfig struct {
	Common
	Port       uint16
	Proto      string // TCP or UDP
	MaxClients int
	// DH is the Diffie-Hellman parameters file; empty: none (ECDHE only).
	DH string
}

// ServerArgs are re6st's server arguments (plib.server): TLS server in
// server mode, the clients' count bounded, UDP with re6st's link MTU.
func ServerArgs(c ServerConfig) ([]string, error) {
	proto, err := serverProto(c.Proto)
	if err != nil {
		return nil, err
	}
	dh := c.DH
	if dh == "" {
		dh = "none"
	}
	a := c.args()
	if c.Proto == UDP {
		a = append(a, "--link-mtu", strconv.Itoa(linkMTU+93), "--mtu-disc", "yes")
	}
	return append(a, "--tls-server", "--mode", "server", "--dh", dh,
		"--max-clients", strconv.Itoa(max(1, c.MaxClients)),
		"--port", strconv.Itoa(int(c.Port)), "--proto", proto), nil
}

func serverProto(p string) (string, error) {
	switch p {
	case TCP:
		return "tcp-server", nil
	case UDP:
		return "udp4", nil
	}
	return "", fmt.Errorf("openvpn: protocol %q: want tcp or udp", p)
}

// ClientConfig is one client: one tunnel to a peer's server.
type ClientConfig struct {
	Common
	Remote netip.AddrPort
	Proto  string // TCP or UDP
	// PeerName is the common name the server's certificate must have:
	// the peer's prefix as re6st writes it ("<integer>/<length>").
	PeerName string
}

// ClientArgs are re6st's client arguments (plib.client and
// tunnel.Connection.open): one remote, the server's name checked, no
// retry beyond three connection attempts, exit on TLS errors.
func ClientArgs(c ClientConfig) ([]string, error) {
	proto := "udp4"
	switch c.Proto {
	case TCP:
		proto = TCP // re6st gives "tcp": a client connects
	case UDP:
	default:
		return nil, fmt.Errorf("openvpn: protocol %q: want tcp or udp", c.Proto)
	}
	if !c.Remote.Addr().Is4() {
		return nil, fmt.Errorf("openvpn: remote %s: the underlay is IPv4", c.Remote)
	}
	a := append(c.args(), "--nobind", "--client",
		"--remote", c.Remote.Addr().String(), strconv.Itoa(int(c.Remote.Port())), proto)
	if c.Proto == UDP {
		a = append(a, "--link-mtu", strconv.Itoa(linkMTU), "--mtu-disc", "yes")
	}
	return append(a, "--verify-x509-name", c.PeerName, "name",
		"--resolv-retry", "0", "--connect-retry-max", "3", "--tls-exit",
		"--remap-usr1", "SIGTERM"), nil
}
