package openvpn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// pki is a CA and two node certificates, as PEM files.
type pki struct {
	ca    string
	nodes map[string][2]string // common name -> certificate, key
}

func newPKI(t *testing.T, names ...string) pki {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "network"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := pki{ca: write("ca.crt", "CERTIFICATE", caDER), nodes: map[string][2]string{}}
	for i, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		file := strings.ReplaceAll(name, "/", "_")
		p.nodes[name] = [2]string{write(file+".crt", "CERTIFICATE", der), write(file+".key", "PRIVATE KEY", keyDER)}
	}
	return p
}

// re6stSide runs openvpn in ns with the arguments re6st's plib gives
// (re6st/plib.py: openvpn, server, client; re6st/tunnel.py's client
// options; re6st/cli/node.py's --ping-exit), written out here as facts:
// its --up script only brings the device up here, and --ncp-disable,
// which OpenVPN 2.6 refuses, is left out.
func re6stSide(t *testing.T, ns *netns.NS, p pki, cn, dev string, extra ...string) *Process {
	dir := t.TempDir()
	up := filepath.Join(dir, "up")
	require.NoError(t, os.WriteFile(up, []byte("#!/bin/sh\nip link set \"$1\" up\n"), 0o755))
	args := []string{"--dev-type", "tap", "--dev", dev, "--persist-tun", "--persist-key",
		"--script-security", "2", "--up", up, "--setenv", "PATH", os.Getenv("PATH")}
	args = append(args, extra...)
	args = append(args, "--cipher", "none", "--ca", p.ca, "--cert", p.nodes[cn][0], "--key", p.nodes[cn][1], "--verb", "3")
	proc, err := Start(ns.Command(context.Background(), append([]string{Binary}, args...)...), zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(proc.Stop)
	return proc
}

// re6stServer runs re6st's server of the item protocol (tcp, udp, tcp6 or
// udp6, as its --pp names them) in ns, on port, its device named as
// re6st names it (re6stnet-<item>).
func re6stServer(t *testing.T, ns *netns.NS, p pki, cn, item string, port uint16) *Process {
	dh := filepath.Join(t.TempDir(), "dh.pem")
	out, err := exec.Command("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", dh).CombinedOutput()
	require.NoError(t, err, string(out))
	var extra []string
	proto := item
	switch item {
	case "udp":
		proto = "udp4"
		extra = append(extra, "--link-mtu", "1525", "--mtu-disc", "yes")
	case "udp6":
		extra = append(extra, "--link-mtu", "1543", "--mtu-disc", "yes")
	default: // tcp, tcp6
		proto += "-server"
	}
	extra = append(extra, "--tls-server", "--mode", "server", "--dh", dh, "--max-clients", "10",
		"--port", strconv.Itoa(int(port)), "--proto", proto, "--ping-exit", "16")
	return re6stSide(t, ns, p, cn, "re6stnet-"+item, extra...)
}

// re6stClient runs re6st's client to the item ip,port,<item> of a peer's
// address list (item tcp, udp, tcp6 or udp6).
func re6stClient(t *testing.T, ns *netns.NS, p pki, cn, dev, peerCN, item string, remote netip.AddrPort) *Process {
	proto := item
	var mtu []string
	switch item {
	case "udp":
		proto = "udp4"
		mtu = []string{"--link-mtu", "1432", "--mtu-disc", "yes"}
	case "udp6":
		mtu = []string{"--link-mtu", "1450", "--mtu-disc", "yes"}
	}
	extra := append([]string{"--nobind", "--client", "--remote", remote.Addr().String(), strconv.Itoa(int(remote.Port())), proto}, mtu...)
	extra = append(extra, "--verify-x509-name", peerCN, "name", "--resolv-retry", "0",
		"--connect-retry-max", "3", "--tls-exit", "--remap-usr1", "SIGTERM", "--ping-exit", "16")
	return re6stSide(t, ns, p, cn, dev, extra...)
}

// overlayMTU is a node's overlay MTU under a 1500-byte underlay.
const overlayMTU = 1472

// ours starts our end in ns: its TAP device, then openvpn with args.
func ours(t *testing.T, ns *netns.NS, dev, proto string, ll netip.Addr, args []string) *Process {
	require.NoError(t, ns.Do(func() error {
		_, err := CreateTAP(dev, TAPMTU(proto, overlayMTU), net.IP(ll.AsSlice()))
		return err
	}))
	proc, err := Start(ns.Command(context.Background(), append([]string{Binary}, args...)...), zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() {
		proc.Stop()
		_ = ns.Do(func() error { return DeleteTAP(dev) })
	})
	return proc
}

// ready is what openvpn says once it listens (a server) or is connected.
const ready = "Initialization Sequence Completed"

// re6stCipher is what our server says of the data cipher a re6st client
// run with OpenVPN 2.6 and it agree on: 2.6 ignores re6st's --cipher none in
// the negotiation.
const re6stCipher = "Data Channel: cipher 'AES-256-GCM'"

func waitOutput(t *testing.T, p *Process, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("openvpn never said %q:\n%s", s, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits until p ends; if it does not within 30 s, the test
// fails with why and its output.
func waitExit(t *testing.T, p *Process, why string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s:\n%s", why, p.Output())
	}
}

// waitPing waits until ns pings the link-local address ll over dev; on
// failure, the test shows both ends' output.
func waitPing(t *testing.T, ns *netns.NS, dev string, ll netip.Addr, srv, cl *Process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := ns.Run("ping", "-6", "-c", "1", "-W", "1", ll.String()+"%"+dev); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ping over %s\nserver:\n%s\nclient:\n%s", dev, srv.Output(), cl.Output())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The common names of re6st's node and ours.
const theirCN, ourCN = "1/16", "2/16"

// rig is two namespaces linked by a veth: a for re6st's end (10.9.0.1,
// or fd00:9::1 over an IPv6-only underlay), b for ours (10.9.0.2 or
// fd00:9::2, its TAP devices' link-local address ourLL), with their
// certificates.
type rig struct {
	pki          pki
	a, b         *netns.NS
	addrA, addrB netip.Addr
	ourLL        netip.Addr
	common       Common // our end's
}

// requireOpenVPN skips the test when not root, fails it when openvpn is
// not installed.
func requireOpenVPN(t *testing.T) {
	netns.RequireRoot(t)
	if _, err := exec.LookPath(Binary); err != nil {
		t.Fatalf("%s not installed (.ci/install-deps installs it)", Binary)
	}
}

func newRig(t *testing.T) rig { return newRigOn(t, "10.9.0.1/24", "10.9.0.2/24") }

// newRigOn is a rig whose underlay addresses are a's and b's, of one
// family: the veth carries nothing else (no IPv4 over an IPv6 rig).
func newRigOn(t *testing.T, a, b string) rig {
	requireOpenVPN(t)
	pa, pb := netip.MustParsePrefix(a), netip.MustParsePrefix(b)
	r := rig{pki: newPKI(t, theirCN, ourCN), a: netns.ForTest(t, "ovpn-re6st"), b: netns.ForTest(t, "ovpn-ours"),
		addrA: pa.Addr(), addrB: pb.Addr(), ourLL: netip.MustParseAddr("fe80::2")}
	require.NoError(t, netns.Veth(r.a, "eth0", r.b, "eth0"))
	require.NoError(t, r.a.AddrAdd("eth0", pa))
	require.NoError(t, r.b.AddrAdd("eth0", pb))
	require.NoError(t, r.a.LinkUp("eth0"))
	require.NoError(t, r.b.LinkUp("eth0"))
	r.common = Common{CA: r.pki.ca, Cert: r.pki.nodes[ourCN][0], Key: r.pki.nodes[ourCN][1], Timeout: 16 * time.Second}
	return r
}

// re6stServerOurClient starts re6st's server of item (tcp, udp, tcp6,
// udp6) in a, on port, and our client of transport proto to it in b, and
// waits until a ping crosses their TAP link.
func (r rig) re6stServerOurClient(t *testing.T, item, proto string, port uint16) (srv, cl *Process) {
	srv = re6stServer(t, r.a, r.pki, theirCN, item, port)
	waitOutput(t, srv, ready)
	c := r.common
	c.Dev = "ovc" + item
	args, err := ClientArgs(ClientConfig{Common: c, Remote: netip.AddrPortFrom(r.addrA, port), Proto: proto, PeerName: theirCN})
	require.NoError(t, err)
	cl = ours(t, r.b, c.Dev, proto, r.ourLL, args)
	waitPing(t, r.a, "re6stnet-"+item, r.ourLL, srv, cl)
	return srv, cl
}

// TestInteropRe6st: an OpenVPN server and client started with re6st's
// arguments connect to ours (ServerArgs, ClientArgs) over TCP and UDP,
// both ways, without a cipher (the network does not encrypt); the TAP link
// carries IPv6 both ways.
func TestInteropRe6st(t *testing.T) {
	r := newRig(t)
	p, a, b, addrB, ourLL, common := r.pki, r.a, r.b, r.addrB, r.ourLL, r.common
	for i, proto := range []string{TCP, UDP} {
		t.Run("re6st-server-"+proto, func(t *testing.T) {
			_, cl := r.re6stServerOurClient(t, proto, proto, uint16(1194+i))
			require.Equal(t, "AES-256-GCM", cl.Cipher(), "OpenVPN 2.6 ignores re6st's --cipher none")
		})
		// ourServer starts our server in b, on port.
		ourServer := func(t *testing.T, port uint16) *Process {
			c := common
			c.Dev = "ovs" + proto
			args, err := ServerArgs(ServerConfig{Common: c, Port: port, Proto: proto, MaxClients: 4})
			require.NoError(t, err)
			srv := ours(t, b, c.Dev, proto, ourLL, args)
			waitOutput(t, srv, ready)
			return srv
		}
		t.Run("re6st-client-"+proto, func(t *testing.T) {
			port := uint16(1294 + i)
			srv := ourServer(t, port)
			cl := re6stClient(t, a, p, theirCN, "re6stc"+proto, ourCN, proto, netip.AddrPortFrom(addrB, port))
			waitPing(t, a, "re6stc"+proto, ourLL, srv, cl)
			require.Contains(t, srv.Output(), re6stCipher)
		})
		t.Run("ours-"+proto, func(t *testing.T) {
			port := uint16(1394 + i)
			srv := ourServer(t, port)
			c := common
			c.Dev, c.Cert, c.Key = "ovc"+proto, p.nodes[theirCN][0], p.nodes[theirCN][1]
			args, err := ClientArgs(ClientConfig{Common: c, Remote: netip.AddrPortFrom(addrB, port), Proto: proto, PeerName: ourCN})
			require.NoError(t, err)
			cl := ours(t, a, c.Dev, proto, netip.MustParseAddr("fe80::1"), args)
			waitPing(t, a, c.Dev, ourLL, srv, cl)
			require.Equal(t, NoCipher, cl.Cipher(), "two of our ends agree on no cipher")
			// A packet the size of the TAP devices' MTU passes.
			out, err := a.Run("ping", "-6", "-c", "2", "-W", "2", "-M", "do", "-s", strconv.Itoa(TAPMTU(proto, overlayMTU)-48), ourLL.String()+"%"+c.Dev)
			require.NoError(t, err, "%s\nserver:\n%s\nclient:\n%s", out, srv.Output(), cl.Output())
		})
	}
	// ourPair starts our server in b (cipher or not) and our client to it
	// in a, which wants the server named peerName and encrypts as the
	// server does, or as clientEncrypts says.
	ourPair := func(t *testing.T, port uint16, encrypt bool, peerName string, clientEncrypts ...bool) (srv, cl *Process) {
		c := common
		c.Dev, c.Encrypt = "ovsx", encrypt
		args, err := ServerArgs(ServerConfig{Common: c, Port: port, Proto: TCP, MaxClients: 4})
		require.NoError(t, err)
		srv = ours(t, b, c.Dev, TCP, ourLL, args)
		waitOutput(t, srv, ready)
		c.Dev, c.Cert, c.Key = "ovcx", p.nodes[theirCN][0], p.nodes[theirCN][1]
		if len(clientEncrypts) > 0 {
			c.Encrypt = clientEncrypts[0]
		}
		args, err = ClientArgs(ClientConfig{Common: c, Remote: netip.AddrPortFrom(addrB, port), Proto: TCP, PeerName: peerName})
		require.NoError(t, err)
		return srv, ours(t, a, c.Dev, TCP, netip.MustParseAddr("fe80::1"), args)
	}
	t.Run("ours-encrypted", func(t *testing.T) {
		srv, cl := ourPair(t, 1494, true, ourCN)
		waitPing(t, a, "ovcx", ourLL, srv, cl)
		require.Equal(t, "AES-256-GCM", cl.Cipher(), "a network that encrypts: a cipher")
	})
	t.Run("clear-client-encrypting-server", func(t *testing.T) {
		// encrypt turned on: the restarted server offers ciphers only, and
		// a client started before (no cipher first) negotiates one.
		srv, cl := ourPair(t, 1496, true, ourCN, false)
		waitPing(t, a, "ovcx", ourLL, srv, cl)
		require.Equal(t, "AES-256-GCM", cl.Cipher())
	})
	t.Run("wrong-name", func(t *testing.T) {
		// The client checks the server's certificate names the peer it
		// wants: a server with another node's certificate is refused.
		_, cl := ourPair(t, 1495, false, "3/16")
		waitExit(t, cl, "the client went on with the wrong server")
		require.Contains(t, cl.Output(), "VERIFY X509NAME ERROR")
		require.NotContains(t, cl.Output(), ready)
	})
}

// TestInteropRe6stIPv6: over an underlay that carries IPv6 only, re6st's
// server and client of its tcp6 and udp6 items (--proto tcp6-server,
// udp6; tcp6, udp6 with its IPv6 link MTU) connect to ours both ways, and
// a ping crosses the TAP link (request and reply), one of our TAP
// devices' MTU too. Our IPv6 server shares its port
// with our IPv4 server of the same transport, as the node runs them.
func TestInteropRe6stIPv6(t *testing.T) {
	r := newRigOn(t, "fd00:9::1/64", "fd00:9::2/64")
	p, a, b, ourLL, common := r.pki, r.a, r.b, r.ourLL, r.common
	for i, proto := range []string{TCP, UDP} {
		item := proto + "6"
		t.Run("re6st-server-"+item, func(t *testing.T) {
			_, cl := r.re6stServerOurClient(t, item, proto, uint16(1194+i))
			require.Contains(t, cl.cmd.Args, item, "our client's protocol is re6st's item")
		})
		t.Run("re6st-client-"+item, func(t *testing.T) {
			port := uint16(1294 + i)
			var srv *Process
			for _, ipv6 := range []bool{false, true} {
				c := common
				c.Dev = fmt.Sprintf("ovs%s%t", proto, ipv6)[:9]
				args, err := ServerArgs(ServerConfig{Common: c, Port: port, Proto: proto, IPv6: ipv6, MaxClients: 4})
				require.NoError(t, err)
				srv = ours(t, b, c.Dev, proto, ourLL, args)
				waitOutput(t, srv, ready)
			}
			cl := re6stClient(t, a, p, theirCN, "re6stc"+item, ourCN, item, netip.AddrPortFrom(r.addrB, port))
			waitPing(t, a, "re6stc"+item, ourLL, srv, cl)
			require.Contains(t, srv.Output(), re6stCipher)
			// A packet the size of our TAP device's MTU passes over IPv6.
			out, err := a.Run("ping", "-6", "-c", "2", "-W", "2", "-M", "do", "-s", strconv.Itoa(TAPMTU(proto, overlayMTU)-48), ourLL.String()+"%re6stc"+item)
			require.NoError(t, err, "%s\nserver:\n%s\nclient:\n%s", out, srv.Output(), cl.Output())
		})
	}
}

// TestCRL: a server given the network's CRL (CRLDir) refuses a client
// whose serial it lists, and takes it once the serial is gone from the
// directory, without a restart; a client given the CRL refuses a revoked
// server.
func TestCRL(t *testing.T) {
	r := newRig(t)
	p, a, b := r.pki, r.a, r.b
	crl := filepath.Join(t.TempDir(), "crl")
	theirSerial := uint64(2) // newPKI's serials: 2, 3… in the names' order
	require.NoError(t, WriteCRLDir(crl, []uint64{theirSerial}))
	c := r.common
	c.Dev, c.CRLDir = "ovsc", crl
	args, err := ServerArgs(ServerConfig{Common: c, Port: 1194, Proto: TCP, MaxClients: 4})
	require.NoError(t, err)
	srv := ours(t, b, c.Dev, TCP, r.ourLL, args)
	waitOutput(t, srv, ready)

	// re6st's client, whose serial is revoked: refused at the handshake.
	cl := re6stClient(t, a, p, theirCN, "re6stc", ourCN, "tcp", netip.AddrPortFrom(r.addrB, 1194))
	waitOutput(t, srv, "VERIFY CRL: depth=0, CN=1/16, serial=2 is revoked")
	waitExit(t, cl, "the revoked client went on")
	require.NotContains(t, cl.Output(), ready)

	// No longer listed: the same server takes it.
	require.NoError(t, WriteCRLDir(crl, nil))
	cl = re6stClient(t, a, p, theirCN, "re6stc2", ourCN, "tcp", netip.AddrPortFrom(r.addrB, 1194))
	waitPing(t, a, "re6stc2", r.ourLL, srv, cl)

	// Our client, given a CRL that lists the server's serial, refuses it.
	require.NoError(t, WriteCRLDir(crl, []uint64{3}))
	c = r.common
	c.Dev, c.CRLDir, c.Cert, c.Key = "ovcc", crl, p.nodes[theirCN][0], p.nodes[theirCN][1]
	args, err = ClientArgs(ClientConfig{Common: c, Remote: netip.AddrPortFrom(r.addrB, 1194), Proto: TCP, PeerName: ourCN})
	require.NoError(t, err)
	ourCl := ours(t, a, c.Dev, TCP, netip.MustParseAddr("fe80::1"), args)
	waitExit(t, ourCl, "the client went on with a revoked server")
	require.Contains(t, ourCl.Output(), "VERIFY CRL: depth=0, CN=2/16, serial=3 is revoked")
	require.NotContains(t, ourCl.Output(), ready)
}
