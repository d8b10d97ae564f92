package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
)

// runGateways is the --gateways scenario (docs/demo.md): two communities
// with a BGP gateway each behind bird2, and an exterior host whose path to
// a node of each community is printed, then with community 0's gateway
// killed, then restarted. Everything is torn down on return.
func runGateways(ctx context.Context, bin, dir string, timeout time.Duration) (err error) {
	if err := teardown(dir); err != nil {
		return fmt.Errorf("cleaning up a previous demo: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	in, err := internet.Build(internet.TwoGateways(), nsPrefix)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, in.Close()) }()
	describe(in, func(*internet.Host) string { return "--encap fou" })
	opts, err := cluster.TwoGatewaysOptions(in, filepath.Join(dir, "registry-files"))
	if err != nil {
		return err
	}
	opts.Bin, opts.Dir, opts.Logf = bin, dir, logf
	router, err := cluster.StartUpstreamRouter(in, filepath.Join(dir, "bird"))
	if err != nil {
		return err
	}
	defer router.Stop()
	c, err := cluster.Start(opts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	logf("demo: starting re6stnet on %d nodes, gwa and gwb as BGP gateways (AS %d) of the upstream router (bird2, AS %d)", len(c.Nodes()), cluster.GatewayAS, cluster.UpstreamAS)
	if err := c.StartNodes(); err != nil {
		return err
	}
	m, err := c.WaitReachable(ctx, timeout)
	fmt.Printf("\nreachability (ping6 from each row to each column's overlay address):\n%s\n", m)
	if err != nil {
		return err
	}
	for _, gw := range []string{"gwa", "gwb"} {
		var members []string
		for _, name := range c.Nodes() {
			if cluster.TwoCommunities[gw].Contains(c.NodeAddr(name)) {
				members = append(members, name)
			}
		}
		logf("community %-22s gateway %s: %s", cluster.TwoCommunities[gw], gw, strings.Join(members, " "))
	}
	p := paths{in: in, c: c, ctx: ctx, timeout: timeout}
	if err := p.names(); err != nil {
		return err
	}
	announced := func(gw string) func() bool {
		return func() bool {
			out, err := router.Show("show", "route", cluster.TwoCommunities[gw].String(), "protocol", gw)
			return err == nil && strings.Contains(out, cluster.TwoCommunities[gw].String())
		}
	}
	if err := p.wait("bird learns both community prefixes", func() bool { return announced("gwa")() && announced("gwb")() }); err != nil {
		return err
	}
	if out, err := router.Show("show", "route"); err == nil {
		fmt.Printf("\nbirdc show route (the upstream router: each community from its gateway, the aggregate from both):\n%s\n", out)
	}
	if err := errors.Join(p.show("a1", "gwa"), p.show("b1", "gwb")); err != nil {
		return err
	}
	logf("\ndemo: killing gwa (SIGKILL): bird drops its routes, community 0 enters through gwb's aggregate")
	if err := c.KillNode("gwa"); err != nil {
		return err
	}
	if err := p.show("a1", "gwb"); err != nil {
		return err
	}
	logf("\ndemo: restarting gwa")
	if err := c.StartNode("gwa"); err != nil {
		return err
	}
	if err := p.wait("gwa announces community 0 again", announced("gwa")); err != nil {
		return err
	}
	if err := p.show("a1", "gwa"); err != nil {
		return err
	}
	logf("\ndemo: each community entered through its own gateway, and through the other's while its own was down")
	return nil
}

// paths traces the exterior host's paths into the overlay.
type paths struct {
	in      *internet.Internet
	c       *cluster.Cluster
	ctx     context.Context
	timeout time.Duration
	owner   map[string]string // address → the namespace that has it
}

// names records which namespace has which address, to name the hops.
func (p *paths) names() error {
	p.owner = map[string]string{}
	up := p.in.Upstream()
	for _, name := range p.c.Nodes() {
		addrs, err := internet.IPv6Addrs(p.c.Node(name).Host.NS)
		if err != nil {
			return err
		}
		for a := range addrs {
			p.owner[a] = name
		}
	}
	upAddrs, err := internet.IPv6Addrs(up.NS)
	if err != nil {
		return err
	}
	for a := range upAddrs {
		p.owner[a] = internet.UpstreamName
	}
	return nil
}

// show waits until the exterior host's path to node enters the overlay
// through gateway (the hop after the upstream router) and reaches the
// node, then prints it.
func (p *paths) show(node, gateway string) error {
	dst := p.c.NodeAddr(node)
	var last []string
	enters := func() bool {
		hops, _, err := internet.Traceroute(p.in.Upstream().Exterior, dst)
		last = hops
		return err == nil && len(hops) >= 3 && p.owner[hops[1]] == gateway && hops[len(hops)-1] == dst.String()
	}
	start := time.Now()
	if err := p.wait(fmt.Sprintf("the path to %s through %s", node, gateway), enters); err != nil {
		return err
	}
	fmt.Printf("traceroute6 from ext (%s) to %s (%s), %s after asking:\n", p.in.Upstream().ExteriorAddr, node, dst, time.Since(start).Round(100*time.Millisecond))
	for i, h := range last {
		if h == "" {
			h = "*"
		}
		fmt.Printf("  %d  %-28s %s\n", i+1, h, p.owner[h])
	}
	return nil
}

// wait polls cond every second until it holds or the timeout.
func (p *paths) wait(what string, cond func() bool) error {
	return waitUntil(p.ctx, p.timeout, what, cond)
}

// waitUntil polls cond every second until it holds, timeout passes or ctx
// ends.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil
}
