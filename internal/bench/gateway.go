package bench

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// Gateway transit (docs/gateway.md): a three-node chain whose middle node G
// is a border gateway between an overlay node O (one FOU tunnel to G) and a
// native host N (plain IPv6 on G's other link). Out: O to N, decapsulated
// at G; in: N to O, encapsulated at G. G forwards either in BPF (its native
// route to N in the data plane, native_ingress on the link to N, its
// kernel's IPv6 forwarding off) or in its kernel (the overlay's slow path
// and its connected route to N; the kernel's route of the network to the
// overlay device).

// Gateway figure keys: direction (out, in), mode (bpf, kernel), workload.
func gatewayKey(dir, mode, workload string) string { return dir + "-" + mode + "-" + workload }

var (
	gatewayDirs  = []string{"out", "in"}
	gatewayModes = []string{"bpf", "kernel"}
)

// GatewayFigures are the gateway transit figures, per round and summarised.
type GatewayFigures struct {
	Rounds  []map[string]float64 `json:"rounds"`
	Summary map[string]Stat      `json:"summary"`
	Errors  []string             `json:"errors,omitempty"`
}

// gatewayTopology builds one direction and mode: the chain's first node
// sends, its last receives; t.dst is the receiver's address.
func gatewayTopology(dir, mode string, cpus pinning) (_ *topology, err error) {
	c, err := chain.New(chain.Options{Nodes: 3, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	if err != nil {
		return nil, err
	}
	t := &topology{v: Variant{Name: "gateway-" + dir + "-" + mode, kind: kindBPF, encap: loader.FOU, hook: loader.HookTC}, chain: c, cpus: cpus}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	// The overlay node is at one end, the native host at the other; link
	// k is between nodes k and k+1, the gateway is node 1.
	ov, nat, g := c.Nodes[0], c.Nodes[2], c.Nodes[1]
	ovIdx, natLink, gSide, gDev, tunnelToG := 0, 1, 1, g.Right, uint32(2)
	if dir == "in" {
		ov, nat = c.Nodes[2], c.Nodes[0]
		ovIdx, natLink, gSide, gDev, tunnelToG = 2, 0, 2, g.Left, 1
	}
	natAddr, gAddr := nat.Plain, chain.LinkV6(natLink, gSide)
	natSubnet := netip.PrefixFrom(natAddr, 64).Masked()
	if err := ov.Datapath.SetRoute(netip.MustParsePrefix("::/0"), chain.Network, loader.Nexthop{Tunnel: tunnelToG}); err != nil {
		return nil, err
	}
	for _, cmd := range []struct {
		node *chain.Node
		argv []string
	}{
		{ov, []string{"ip", "-6", "route", "replace", natSubnet.String(), "dev", loader.DefaultOverlay, "src", ov.Overlay.String()}},
		{nat, []string{"ip", "-6", "route", "replace", chain.OverlayPrefix(ovIdx).String(), "via", gAddr.String()}},
	} {
		if out, err := cmd.node.NS.Run(cmd.argv...); err != nil {
			return nil, fmt.Errorf("%v: %w: %s", cmd.argv, err, out)
		}
	}
	if mode == "bpf" {
		idx, err := g.NS.Ifindex(gDev)
		if err != nil {
			return nil, err
		}
		if err := g.Datapath.SetNativeRoute(loader.NativeRoute{Dst: natSubnet, NextHop: natAddr, Ifindex: uint32(idx), MTU: 1500}); err != nil {
			return nil, err
		}
		att, err := g.Datapath.AttachNative(gDev)
		if err != nil {
			return nil, err
		}
		t.stopExtra = func() { att.Close() }
		if err := g.NS.Sysctl("net.ipv6.conf.all.forwarding", "0"); err != nil {
			return nil, err
		}
	}
	first, second := c.First(), c.Nodes[1]
	var pkt []byte
	if dir == "out" {
		t.dst, t.genDev = natAddr, first.Right
		if pkt, err = udp(ov.Overlay, natAddr, smallPayload); err != nil {
			return nil, err
		}
		tun, err := tunnelTo(first, chain.LinkV4(0, 2))
		if err != nil {
			return nil, err
		}
		if pkt, err = encapsulate(tun, pkt); err != nil {
			return nil, err
		}
	} else {
		t.dst, t.genDev = ov.Overlay, first.Right
		if pkt, err = udp(natAddr, ov.Overlay, smallPayload); err != nil {
			return nil, err
		}
	}
	_, srcMAC, err := linkInfo(first.NS, t.genDev)
	if err != nil {
		return nil, err
	}
	_, dstMAC, err := linkInfo(second.NS, second.Left)
	if err != nil {
		return nil, err
	}
	if t.genFrame, err = ethernet(srcMAC, dstMAC, pkt); err != nil {
		return nil, err
	}
	return t, t.reachable(10 * time.Second)
}

// gatewayRound measures every direction and mode once: one TCP stream for
// p.tcpSeconds and the small-UDP rate.
func gatewayRound(p params, cpus pinning) (map[string]float64, []string) {
	vals := map[string]float64{}
	var errs []string
	for _, dir := range gatewayDirs {
		for _, mode := range gatewayModes {
			t, err := gatewayTopology(dir, mode, cpus)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s %s: %v", dir, mode, err))
				continue
			}
			if r, err := t.iperf(p.tcpSeconds, 1); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s tcp: %v", dir, mode, err))
			} else {
				vals[gatewayKey(dir, mode, "tcp")] = r.BitsPerSecond / 1e9
			}
			if pps, _, err := t.smallUDP(p.genFrames, t.udpNoPorts); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s small udp: %v", dir, mode, err))
			} else {
				vals[gatewayKey(dir, mode, "udp")] = pps / 1e3
			}
			t.close()
		}
	}
	for _, dir := range gatewayDirs {
		for _, w := range []string{"tcp", "udp"} {
			b, k := vals[gatewayKey(dir, "bpf", w)], vals[gatewayKey(dir, "kernel", w)]
			if b > 0 && k > 0 {
				vals[gatewayKey(dir, "ratio", w)] = b / k
			}
		}
	}
	return vals, errs
}

// gatewayBench runs the gateway rounds.
func gatewayBench(cfg Config, p params) *GatewayFigures {
	f := &GatewayFigures{}
	cpus, err := choosePinning()
	if err != nil {
		f.Errors = append(f.Errors, err.Error())
		return f
	}
	for i := range p.rounds {
		start := time.Now()
		vals, errs := gatewayRound(p, cpus)
		f.Rounds = append(f.Rounds, vals)
		f.Errors = append(f.Errors, errs...)
		cfg.logf("gateway round %d/%d: %s", i+1, p.rounds, time.Since(start).Round(time.Second))
	}
	f.Summary = summarize(f.Rounds)
	return f
}

// gatewayGoals are issue 12's: the BPF path at least the kernel's TCP and
// 1.5 times its small-packet rate, each direction.
func (f *GatewayFigures) gatewayGoals() []Goal {
	var goals []Goal
	for _, dir := range gatewayDirs {
		for _, g := range []struct {
			w, name string
			goal    float64
		}{{"tcp", "TCP, one stream", 1.0}, {"udp", "small UDP rate", 1.5}} {
			var xs []float64
			for _, r := range f.Rounds {
				if v, ok := r[gatewayKey(dir, "ratio", g.w)]; ok {
					xs = append(xs, v)
				}
			}
			detail := "not measured"
			if s, ok := Summarize(xs); ok {
				detail = fmt.Sprintf("BPF / kernel %s×%s", ratioText(s.Median), span(s, ratioText))
			}
			goals = append(goals, Goal{Name: fmt.Sprintf("gateway %s, %s ≥ %.1f × the kernel", dir, g.name, g.goal),
				Verdict: Judge(xs, Bound{Op: AtLeast, Goal: g.goal}), Detail: detail})
		}
	}
	return goals
}

// writeMarkdown adds the gateway section of the report.
func (f *GatewayFigures) writeMarkdown(b *strings.Builder) {
	b.WriteString("\n## Gateway transit (docs/gateway.md)\n\nO —FOU— G —native IPv6— N, tc hook. Out: O to N (G decapsulates); in: N to O (G encapsulates). BPF: G's native route in its data plane, `native_ingress` on its link to N, its kernel's IPv6 forwarding off; kernel: G's kernel forwards (the overlay's slow path and its connected routes). TCP: one iperf3 stream (Gbit/s); small UDP: the generator's datagrams counted at the receiver (kpps). Median [min–max] over the rounds.\n\n| direction | workload | BPF | kernel | BPF / kernel |\n|---|---|---:|---:|---:|\n")
	for _, dir := range gatewayDirs {
		for _, w := range []struct{ key, name, unit string }{{"tcp", "TCP, one stream", "Gbit/s"}, {"udp", "small UDP", "kpps"}} {
			cell := func(mode string, format func(float64) string) string {
				s, ok := f.Summary[gatewayKey(dir, mode, w.key)]
				if !ok {
					return "–"
				}
				return format(s.Median) + span(s, format)
			}
			fmt.Fprintf(b, "| %s | %s (%s) | %s | %s | %s |\n", dir, w.name, w.unit,
				cell("bpf", formatValue), cell("kernel", formatValue), cell("ratio", ratioText))
		}
	}
	for _, e := range f.Errors {
		fmt.Fprintf(b, "\nerror: %s\n", e)
	}
}

// RunGateway measures the gateway transit only (re6st-bench --gateway).
func RunGateway(cfg Config) (*Results, error) {
	return runAlone(cfg, func(r *Results, p params) {
		r.Gateway = gatewayBench(cfg, p)
		r.Goals = r.Gateway.gatewayGoals()
	})
}
