package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
)

// OpenVPN as re6st runs it (see re6stnet.md §1.2): TAP, no data-channel
// cipher, TLS with certificates, one server and one client process per
// tunnel, the up hook setting the link up with OpenVPN's MTU, and kernel
// IPv6 routing over the TAP links. Departures forced by OpenVPN 2.6:
// --ncp-disable no longer exists (--data-ciphers none instead), --dh none
// (ECDH) instead of a DH file, and for UDP --tun-mtu 1420 instead of
// re6st's --link-mtu 1525: 2.6 keeps a 1500-byte TAP MTU under
// --link-mtu, whose full-size frames do not fit a 1500-byte underlay with
// --mtu-disc yes and are dropped (EMSGSIZE).

const vpnPort = "1194"

func vpnDev(k int) string { return fmt.Sprintf("ov%d", k) }

// vpnAddr is side 1 (client, left) or 2 (server, right) of tunnel k.
func vpnAddr(k, side int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd42:%x::%d", k+1, side))
}

func vpnSubnet(k int) netip.Prefix { return netip.PrefixFrom(vpnAddr(k, 0), 64) }

// newPKI writes into dir a CA, a server and a client certificate, and the
// up hook.
func newPKI(dir string) error {
	run := func(argv ...string) error {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"}
	if err := run(append(append([]string{"openssl", "req", "-x509"}, ec...), "-keyout", p("ca.key"), "-out", p("ca.crt"), "-subj", "/CN=ca", "-days", "2")...); err != nil {
		return err
	}
	for _, n := range []string{"server", "client"} {
		if err := run(append(append([]string{"openssl", "req"}, ec...), "-keyout", p(n+".key"), "-out", p(n+".csr"), "-subj", "/CN="+n)...); err != nil {
			return err
		}
		if err := run("openssl", "x509", "-req", "-in", p(n+".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p(n+".crt"), "-days", "2"); err != nil {
			return err
		}
	}
	return os.WriteFile(p("up"), []byte("#!/bin/sh\nexec ip link set \"$1\" up mtu \"$2\"\n"), 0o755)
}

// startOpenVPN opens one tunnel per link of c, with cipher as its data
// cipher ("": none), and routes the TAP subnets; stop ends the processes.
func startOpenVPN(c *chain.Chain, proto, cipher, dir string) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	var cmds []*exec.Cmd
	stop = func() {
		cancel()
		for _, cmd := range cmds {
			cmd.Wait()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	p := func(name string) string { return filepath.Join(dir, name) }
	for k := 0; k+1 < len(c.Nodes); k++ {
		dev := vpnDev(k)
		server := []string{"--tls-server", "--mode", "server", "--dh", "none", "--max-clients", "10",
			"--port", vpnPort, "--local", chain.LinkV4(k, 2).String()}
		client := []string{"--nobind", "--client", "--remote", chain.LinkV4(k, 2).String(), vpnPort,
			"--verify-x509-name", "server", "name", "--resolv-retry", "0", "--connect-retry-max", "3", "--tls-exit"}
		if proto == "tcp" {
			server = append(server, "--proto", "tcp-server")
			client = append(client, "--proto", "tcp-client")
		} else {
			mtu := []string{"--tun-mtu", "1420", "--mtu-disc", "yes"}
			server = append(append(server, "--proto", "udp4"), mtu...)
			client = append(append(client, "--proto", "udp4"), mtu...)
		}
		for side, role := range map[int][]string{1: client, 2: server} {
			node, name := c.Nodes[k+side-1], map[int]string{1: "client", 2: "server"}[side]
			if _, err := node.NS.Run("ip", "tuntap", "add", "dev", dev, "mode", "tap"); err != nil {
				return nil, err
			}
			if err := node.NS.AddrAdd(dev, netip.PrefixFrom(vpnAddr(k, side), 64)); err != nil {
				return nil, err
			}
			ciphers := []string{"--cipher", "none", "--data-ciphers", "none"}
			if cipher != "" {
				ciphers = []string{"--data-ciphers", cipher}
			}
			argv := append([]string{"openvpn", "--dev-type", "tap", "--dev", dev, "--persist-tun", "--persist-key",
				"--script-security", "2", "--up", p("up")}, ciphers...)
			argv = append(append(argv, "--ca", p("ca.crt"), "--cert", p(name+".crt"), "--key", p(name+".key")), role...)
			log, err := os.Create(p(fmt.Sprintf("%s-%s-%s.log", proto, node.NS.Name, dev)))
			if err != nil {
				return nil, err
			}
			cmd := node.NS.Command(ctx, argv...)
			cmd.Stdout, cmd.Stderr = log, log
			err = cmd.Start()
			log.Close()
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
		}
	}
	for k := 0; k+1 < len(c.Nodes); k++ {
		if err := pingUntil(c.Nodes[k].NS, vpnAddr(k, 2), 20*time.Second); err != nil {
			return nil, fmt.Errorf("openvpn tunnel %d (logs in %s): %w", k, dir, err)
		}
	}
	return stop, c.RouteLinks(vpnSubnet, vpnAddr)
}
