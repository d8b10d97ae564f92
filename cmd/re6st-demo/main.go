package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// nsPrefix starts the name of every namespace of the demo.
const nsPrefix = "r6demo-"

func main() {
	self, _ := os.Executable()
	bin := flag.String("bin", filepath.Dir(self), "directory of re6st-registry, re6st-conf and re6stnet")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "re6st-demo"), "work directory: CA, registry database, node files, logs")
	timeout := flag.Duration("timeout", 120*time.Second, "how long to wait for every node to reach every other")
	down := flag.Bool("down", false, "tear down a demo left running with DEMO_KEEP=1, and exit")
	tunnelTypes := flag.Bool("tunnel-types", false, "the tunnel types scenario instead: nodes offering "+demoTunnelTypes+" behind a core that drops UDP and GRE, then without it, then in a network that encrypts (docs/demo.md; DEMO_KEEP is ignored)")
	gateways := flag.Bool("gateways", false, "the two-community scenario instead: a BGP gateway per community behind bird2, the path from an exterior host to each community (docs/demo.md; DEMO_KEEP is ignored)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\nRuns a re6st-bpf network in network namespaces (see docs/demo.md).\nDEMO_KEEP=1 leaves it running.\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String())
		return
	}
	if *down {
		if err := teardown(*dir); err != nil {
			fmt.Fprintln(os.Stderr, "re6st-demo:", err)
			os.Exit(1)
		}
		fmt.Println("demo: torn down")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *gateways || *tunnelTypes {
		scenario := runGateways
		if *tunnelTypes {
			scenario = runTunnelTypes
		}
		if err := scenario(ctx, *bin, *dir, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "re6st-demo:", err)
			os.Exit(1)
		}
		return
	}
	keep := os.Getenv("DEMO_KEEP") == "1"
	reachable, total, err := run(ctx, *bin, *dir, *timeout, keep)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "re6st-demo: interrupted; torn down")
	case err != nil:
		fmt.Fprintln(os.Stderr, "re6st-demo:", err)
	}
	if total > 0 {
		fmt.Printf("demo: %d/%d nodes reachable\n", reachable, total)
	}
	if err != nil || reachable < total {
		os.Exit(1)
	}
}

// teardown stops what a previous demo left running and deletes its
// namespaces.
func teardown(dir string) error {
	return errors.Join(cluster.Down(dir), cluster.DownDataplanes(nsPrefix), internet.DeleteNamespaces(nsPrefix))
}

func logf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// run builds and checks the network; it returns how many nodes reach and
// are reached by every other, out of how many. Everything is torn down on
// return unless keep (and not interrupted).
func run(ctx context.Context, bin, dir string, timeout time.Duration, keep bool) (reachable, total int, err error) {
	if err := teardown(dir); err != nil {
		return 0, 0, fmt.Errorf("cleaning up a previous demo: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return 0, 0, err
	}
	in, err := internet.Build(internet.Default(), nsPrefix)
	if err != nil {
		return 0, 0, err
	}
	var c *cluster.Cluster
	defer func() {
		if keep && ctx.Err() == nil && c != nil {
			explain(bin, dir, c)
			return
		}
		if c != nil {
			err = errors.Join(err, c.Close())
		}
		err = errors.Join(err, in.Close())
	}()
	describe(in, func(h *internet.Host) string {
		if usesGRE(h) {
			return "--encap gre"
		}
		return "--encap fou"
	})

	c, err = cluster.Start(cluster.Options{Internet: in, Bin: bin, Dir: dir, Detach: keep, Logf: logf, RegistryArgs: payloadArgs,
		NodeArgs: func(n *cluster.Node) []string {
			if usesGRE(n.Host) {
				return []string{"--encap", "gre"}
			}
			return nil
		}})
	if err != nil {
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	logf("demo: starting re6stnet on %d nodes", len(c.Nodes()))
	if err := c.StartNodes(); err != nil {
		return 0, 0, err
	}
	m, err := c.WaitReachable(ctx, timeout)
	fmt.Printf("\nreachability (ping6 from each row to each column's overlay address):\n%s\n", m)
	if err != nil {
		fmt.Printf("logs: %s/registry.log, %s/nodes/*/re6stnet.log\n", dir, dir)
		return m.Reachable(), len(m.Nodes), err
	}
	dataPlanes(c)
	answered := payload(c, 30*time.Second)
	logf("demo: %d/%d nodes answer on their IPv4 and keepalive addresses", answered, len(c.Nodes()))
	shown := statusNode(in, c)
	status, serr := c.Status(shown)
	var pretty bytes.Buffer
	if serr == nil {
		serr = json.Indent(&pretty, status, "", "  ")
	}
	if serr != nil {
		fmt.Printf("re6stnet status of %s: %v\n\n", shown, serr)
	} else {
		fmt.Printf("re6stnet status -r %s --json   (%s)\n%s\n\n", c.Node(shown).RunDir(), shown, pretty.String())
	}
	return m.Reachable(), len(m.Nodes), nil
}

// usesGRE says which nodes set up GRE tunnels rather than FOU: those
// directly on isp2, so that the mesh mixes encapsulations and its transit
// nodes carry packets from one to the other (GRE does not cross a NAT, so
// the nodes behind one keep FOU).
func usesGRE(h *internet.Host) bool { return h.ISP == "isp2" && h.Site == "" }

// describe prints the hosts of the internet, each with the options its
// node runs with.
func describe(in *internet.Internet, options func(*internet.Host) string) {
	logf("demo: internet built, namespaces %s*", in.Prefix)
	for _, h := range in.Hosts() {
		where := "on " + h.ISP
		switch {
		case h.NAT:
			where = fmt.Sprintf("behind NAT %s on %s", h.Site, h.ISP)
		case h.Site != "":
			where = fmt.Sprintf("on LAN %s routed by %s", h.Site, h.ISP)
		}
		logf("  %-9s %-15s %-38s %s", h.Name, h.Addr, where, options(h))
	}
}

// dataPlanes prints, per node, its tunnels by encapsulation and what its
// data plane carried from one tunnel into another, read from the pinned maps:
// the mesh mixes FOU and GRE, and transit between them stays in BPF.
func dataPlanes(c *cluster.Cluster) {
	fmt.Printf("data planes (tunnels by encapsulation; packets forwarded tunnel to tunnel in BPF):\n")
	fmt.Printf("  %-9s %4s %4s %9s %9s\n", "node", "fou", "gre", "transit", "segment")
	for _, name := range c.Nodes() {
		d, err := loader.Open(c.Node(name).Instance())
		if err != nil {
			fmt.Printf("  %-9s %v\n", name, err)
			continue
		}
		count := map[loader.TunnelType]int{}
		tunnels, terr := d.Tunnels()
		for _, t := range tunnels {
			count[t.Type]++
		}
		reasons, rerr := d.Reasons()
		d.Close()
		if err := errors.Join(terr, rerr); err != nil {
			fmt.Printf("  %-9s %v\n", name, err)
			continue
		}
		fmt.Printf("  %-9s %4d %4d %9d %9d\n", name, count[loader.FOU], count[loader.GRE], reasons["transit"], reasons["segment"])
	}
	fmt.Println()
}

// statusNode is the node whose status the demo shows: the one behind NAT,
// which can only make outgoing tunnels.
func statusNode(in *internet.Internet, c *cluster.Cluster) string {
	for _, name := range c.Nodes() {
		if in.Host(name).NAT {
			return name
		}
	}
	return c.Nodes()[0]
}

// explain tells how to look around a kept demo and how to end it.
func explain(bin, dir string, c *cluster.Cluster) {
	names := c.Nodes()
	a, b := c.Node(names[1]), c.Node(names[len(names)-1])
	fmt.Printf(`demo: left running (DEMO_KEEP=1). Look around:
  %[1]s/re6stnet status -r %[2]s
  ip netns exec %[3]s ping6 -c3 %[4]s      # %[5]s to %[6]s over the overlay
  ip netns exec %[3]s ip -6 route
  ip netns list | grep %[7]s
  logs: %[8]s/registry.log %[8]s/nodes/<node>/re6stnet.log
Tear down: %[1]s/re6st-demo --down
`, bin, a.RunDir(), a.Host.NS.Name, b.Addr, a.Name, b.Name, nsPrefix, dir)
}
