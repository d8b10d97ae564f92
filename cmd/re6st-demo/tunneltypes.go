package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// demoTunnelTypes are the tunnel types every node of the --tunnel-types
// scenario offers, fastest first.
const demoTunnelTypes = "fou,wireguard,openvpn-tcp"

// demoRefresh is the scenario's tunnel refresh: short, so that the tunnels
// move back to faster types soon after the firewall goes.
const demoRefresh = 15 * time.Second

// runTunnelTypes is the --tunnel-types scenario (docs/demo.md): nodes on
// two ISPs offering FOU, WireGuard and OpenVPN over TCP. A firewall in the
// core that drops UDP and GRE moves the tunnels across it to OpenVPN over
// TCP; without it they move back to FOU; the registry restarted with
// --encrypt turns every tunnel into WireGuard. Everything is torn down on
// return.
func runTunnelTypes(ctx context.Context, bin, dir string, timeout time.Duration) (err error) {
	if err := teardown(dir); err != nil {
		return fmt.Errorf("cleaning up a previous demo: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	in, err := internet.Build(internet.TwoISPs([]string{"registry", "n1"}, []string{"n2", "n3"}), nsPrefix)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, in.Close()) }()
	describe(in, func(*internet.Host) string { return "--tunnel-types " + demoTunnelTypes })
	c, err := cluster.Start(cluster.Options{Internet: in, Bin: bin, Dir: dir, Logf: logf, TunnelRefresh: int(demoRefresh / time.Second),
		NodeArgs: func(*cluster.Node) []string { return []string{"--tunnel-types", demoTunnelTypes} }})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	logf("demo: starting re6stnet on %d nodes (tunnel refresh 15 s)", len(c.Nodes()))
	if err := c.StartNodes(); err != nil {
		return err
	}
	// A stage can wait for refreshes: a type that failed with a peer (while
	// the firewall was up) is tried first again only once the failure is a
	// refresh period old, and a refresh replaces one tunnel at a time.
	t := typesShown{c: c, ctx: ctx, timeout: timeout + 4*demoRefresh, in: in}
	if err := t.stage("no firewall: every tunnel FOU, the fastest type", nodeproto.ProtoFOU, nodeproto.ProtoFOU); err != nil {
		return err
	}

	logf("\ndemo: the core drops UDP and GRE (nftables): FOU, GRE and WireGuard cannot cross it")
	if err := in.Firewall(internet.Core, internet.DropUDP, internet.DropGRE); err != nil {
		return err
	}
	if err := t.stage("firewall: the tunnels across the core fall back to OpenVPN over TCP", nodeproto.ProtoFOU, nodeproto.ProtoOpenVPNTCP); err != nil {
		return err
	}

	logf("\ndemo: the firewall goes: at the next refreshes the peers move back to FOU")
	if err := in.RemoveFirewall(internet.Core); err != nil {
		return err
	}
	if err := t.stage("no firewall again: every tunnel FOU", nodeproto.ProtoFOU, nodeproto.ProtoFOU); err != nil {
		return err
	}

	logf("\ndemo: the registry restarts with --encrypt: the nodes tear down their tunnels in clear and use WireGuard")
	c.SetRegistryArgs("--encrypt")
	if err := errors.Join(c.KillRegistry(), c.StartRegistry()); err != nil {
		return err
	}
	if err := t.stage("the network encrypts: every tunnel WireGuard", nodeproto.ProtoWireGuard, nodeproto.ProtoWireGuard); err != nil {
		return err
	}
	logf("\ndemo: the mesh crossed a firewall over OpenVPN, came back to FOU without it, and encrypted everything when the network asked")
	return nil
}

// typesShown waits for the tunnel types of each stage and prints them.
type typesShown struct {
	c       *cluster.Cluster
	in      *internet.Internet
	ctx     context.Context
	timeout time.Duration
}

// stage waits until every tunnel within an ISP is of type within and every
// one across the core (there is one at least) of type across, encrypted
// when it is WireGuard, and every node reaches every other; then prints
// the tunnels.
func (t typesShown) stage(what, within, across string) error {
	start := time.Now()
	var table string
	var m cluster.Matrix
	done := func() bool {
		if table = t.tunnels(within, across); table == "" {
			return false
		}
		var ok int
		m, ok = t.c.Reachability()
		return ok == m.Pairs()
	}
	if err := waitUntil(t.ctx, t.timeout, what, done); err != nil {
		return fmt.Errorf("%w; last tunnels seen as expected:\n%s\nreachability:\n%s", err, table, m)
	}
	fmt.Printf("\n%s (%s after asking; %d/%d nodes reach every other):\n%s", what,
		time.Since(start).Round(time.Second), m.Reachable(), len(m.Nodes), table)
	return nil
}

// tunnels is the table of every node's tunnels if each has the type it
// should, "" otherwise.
func (t typesShown) tunnels(within, across string) string {
	name := map[netip.Prefix]string{}
	for _, n := range t.c.Nodes() {
		name[t.c.Node(n).Subnet] = n
	}
	var b strings.Builder
	crossing := 0
	fmt.Fprintf(&b, "  %-9s %-9s %-9s %-12s %-9s %s\n", "node", "peer", "path", "type", "direction", "encrypted")
	for _, n := range t.c.Nodes() {
		s, err := t.c.NodeStatus(n)
		if err != nil || len(s.Tunnels) == 0 {
			return ""
		}
		for _, tu := range s.Tunnels {
			peer := name[tu.Peer]
			path, want := "isp", within
			if t.in.Host(peer) == nil || t.in.Host(peer).ISP != t.c.Node(n).Host.ISP {
				path, want = "core", across
				crossing++
			}
			if tu.Type != want || tu.Encrypted != (want == nodeproto.ProtoWireGuard) {
				return ""
			}
			dir := "incoming"
			if tu.Outgoing {
				dir = "outgoing"
			}
			fmt.Fprintf(&b, "  %-9s %-9s %-9s %-12s %-9s %v\n", n, peer, path, tu.Type, dir, tu.Encrypted)
		}
	}
	if crossing == 0 {
		return ""
	}
	return b.String()
}
