package openvpn

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Transports of re6st's OpenVPN items: `ip,port,tcp` and `ip,port,udp`
// over an IPv4 underlay, `ip,port,tcp6` and `ip,port,udp6` over IPv6
// (the family is the server's ServerConfig.IPv6, the client's remote's).
const (
	TCP = "tcp"
	UDP = "udp"
)

// linkMTU and linkMTU6 are what re6st gives --link-mtu for OpenVPN over
// UDP and IPv4 or IPv6 (its client; its server adds serverLinkMTUExtra),
// with --mtu-disc yes (plib.ovpn_link_mtu_dict).
const (
	linkMTU            = 1432
	linkMTU6           = 1450
	serverLinkMTUExtra = 93
)

// udpTAPMTU is the largest MTU of a TAP device over UDP: re6st's link
// MTU over IPv4 (1432) leaves room for IPv6 packets of 1428 bytes with no
// cipher (measured: TestInteropRe6st); 1400 keeps a margin for other
// ciphers' headers. Over IPv6 re6st's link MTU is larger (1450), so the
// same bound holds.
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
	// CRLDir is a directory of files named by the revoked certificates'
	// decimal serials (WriteCRLDir): --crl-verify <dir> dir, so that
	// openvpn refuses a peer whose certificate the network revoked. re6st
	// refuses revoked clients in its --client-connect script, and drops a
	// revoked server's connection once connected; openvpn's own check does
	// both here, without a script. Empty: no check.
	CRLDir string
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
	if c.CRLDir != "" {
		a = append(a, "--crl-verify", c.CRLDir, "dir")
	}
	return a
}

func seconds(d time.Duration) string { return strconv.Itoa(max(1, int(d/time.Second))) }

// ServerConfig is one OpenVPN server: one TAP device for all its clients,
// as re6st runs one per protocol.
type ServerConfig struct {
	Common
	Port  uint16
	Proto string // TCP or UDP
	// IPv6: the server listens on IPv6 (re6st's tcp6 and udp6 items), on
	// IPv6 only (--bind ipv6only), so that it shares its port with the
	// IPv4 server of the same transport; otherwise on IPv4.
	IPv6       bool
	MaxClients int
	// DH is the Diffie-Hellman parameters file; empty: none (ECDHE only).
	DH string
}

// ServerArgs are re6st's server arguments (plib.server): TLS server in
// server mode, the clients' count bounded, UDP with re6st's link MTU;
// --proto tcp-server, udp4, tcp6-server or udp6 as re6st gives them. Over
// IPv6 ours add --bind ipv6only: openvpn's IPv6 socket is otherwise
// dual-stack, and its bind fails (address in use) beside the IPv4 server
// on the same port.
func ServerArgs(c ServerConfig) ([]string, error) {
	if c.Proto != TCP && c.Proto != UDP {
		return nil, fmt.Errorf("openvpn: protocol %q: want tcp or udp", c.Proto)
	}
	dh := c.DH
	if dh == "" {
		dh = "none"
	}
	a := c.args()
	if c.Proto == UDP {
		a = append(a, "--link-mtu", strconv.Itoa(udpLinkMTU(c.IPv6)+serverLinkMTUExtra), "--mtu-disc", "yes")
	}
	a = append(a, "--tls-server", "--mode", "server", "--dh", dh,
		"--max-clients", strconv.Itoa(max(1, c.MaxClients)),
		"--port", strconv.Itoa(int(c.Port)), "--proto", serverProto(c.Proto, c.IPv6))
	if c.IPv6 {
		a = append(a, "--bind", "ipv6only")
	}
	return a, nil
}

// serverProto is re6st's --proto of a server: "udp" is given as udp4
// (OpenVPN 2.6's plain udp would listen on IPv6 too), "tcp" as
// tcp-server, which listens on IPv4 (measured with 2.6).
func serverProto(proto string, ipv6 bool) string {
	switch {
	case proto == UDP && ipv6:
		return "udp6"
	case proto == UDP:
		return "udp4"
	case ipv6:
		return "tcp6-server"
	}
	return "tcp-server"
}

// udpLinkMTU is re6st's client --link-mtu over UDP and IPv4 or IPv6.
func udpLinkMTU(ipv6 bool) int {
	if ipv6 {
		return linkMTU6
	}
	return linkMTU
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
// retry beyond three connection attempts, exit on TLS errors. The remote's
// family gives the protocol, as re6st's item names it: tcp or udp4 to an
// IPv4 server, tcp6 or udp6 to an IPv6 one.
func ClientArgs(c ClientConfig) ([]string, error) {
	if c.Proto != TCP && c.Proto != UDP {
		return nil, fmt.Errorf("openvpn: protocol %q: want tcp or udp", c.Proto)
	}
	ip := c.Remote.Addr().Unmap()
	if !ip.IsValid() {
		return nil, fmt.Errorf("openvpn: no remote")
	}
	ipv6 := ip.Is6()
	proto := c.Proto // re6st gives "tcp": a client connects
	switch {
	case ipv6:
		proto += "6"
	case c.Proto == UDP:
		proto = "udp4"
	}
	a := append(c.args(), "--nobind", "--client",
		"--remote", ip.String(), strconv.Itoa(int(c.Remote.Port())), proto)
	if c.Proto == UDP {
		a = append(a, "--link-mtu", strconv.Itoa(udpLinkMTU(ipv6)), "--mtu-disc", "yes")
	}
	return append(a, "--verify-x509-name", c.PeerName, "name",
		"--resolv-retry", "0", "--connect-retry-max", "3", "--tls-exit",
		"--remap-usr1", "SIGTERM"), nil
}
