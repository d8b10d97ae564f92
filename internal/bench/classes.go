package bench

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/trafficload"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// The traffic-class figures (docs/traffic-classes.md), per round.
const (
	ClassIdleP50      = "idle_p50_ms"      // keep-alive RTT, link idle
	ClassIdleP99      = "idle_p99_ms"      //
	ClassWithP50      = "classes_p50_ms"   // keep-alive RTT under bulk TCP, classes shaped
	ClassWithP99      = "classes_p99_ms"   //
	ClassWithoutP50   = "noclasses_p50_ms" // the same with the routes unclassed
	ClassWithoutP99   = "noclasses_p99_ms" //
	ClassP99OverIdle  = "classes_p99_over_idle"
	ClassJain         = "jain"            // 8 UDP flows offering 1…8 × the fair share
	ClassEgressNs     = "egress_ns"       // overlay_egress, route without class
	ClassEgressStepNs = "egress_class_ns" // the same route with a class
	ClassStepNs       = "class_step_ns"   // the difference
)

// classLinkRate is the shaped link of the class benchmark, and
// classFlows the flows of the fairness test.
const (
	classLinkRate = 16_000_000
	classFlows    = 8
)

// ClassFigures are the traffic-class benchmark's rounds and their
// summaries.
type ClassFigures struct {
	LinkRate uint64               `json:"link_rate"`
	Rounds   []map[string]float64 `json:"rounds"`
	Summary  map[string]Stat      `json:"summary"`
	Errors   []string             `json:"errors,omitempty"`
}

// classBench runs the traffic-class rounds on a two-node chain of its
// own.
func classBench(cfg Config, p params) *ClassFigures {
	f := &ClassFigures{LinkRate: classLinkRate}
	for i := range p.rounds {
		start := time.Now()
		vals, err := classRound(p)
		if err != nil {
			f.Errors = append(f.Errors, fmt.Sprintf("round %d: %v", i+1, err))
			cfg.logf("classes round %d: %v", i+1, err)
		}
		f.Rounds = append(f.Rounds, vals)
		cfg.logf("classes round %d %5.1fs %v", i+1, time.Since(start).Seconds(), vals)
	}
	f.Summary = summarize(f.Rounds)
	return f
}

// classPair is A — B with the bench's classes on A: class 1 (keep-alive,
// rank 7, 1 Mbit/s) for B's 2001:db8:2:1::/64 and class 2 (bulk, rank 0,
// 15 Mbit/s, 8 flow leaves) for the rest of B's prefix; A's underlay
// shaped at classLinkRate.
type classPair struct {
	c         *chain.Chain
	keepAlive netip.Addr
}

var keepAliveNet = netip.MustParsePrefix("2001:db8:2:1::/64")

func newClassPair() (*classPair, error) {
	c, err := chain.New(chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	if err != nil {
		return nil, err
	}
	cp := &classPair{c: c, keepAlive: keepAliveNet.Addr().Next()}
	a, b := c.Nodes[0], c.Nodes[1]
	d := a.Datapath
	for _, step := range []func() error{
		func() error { return d.SetClass(loader.Class{ID: 1, DSCP: 46, Priority: 7, Rate: 1_000_000}) },
		func() error {
			return d.SetClass(loader.Class{ID: 2, DSCP: 10, Priority: 0, Rate: classLinkRate - 1_000_000, Flows: classFlows})
		},
		func() error { return b.NS.AddrAdd(b.Datapath.State.Overlay, netip.PrefixFrom(cp.keepAlive, 64)) },
		func() error { return cp.classed(true) },
	} {
		if err := step(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return cp, nil
}

// classed puts B's routes into their classes (or none) and shapes A's
// underlay: without classes, every packet shares HTB's default leaf.
func (cp *classPair) classed(on bool) error {
	d := cp.c.Nodes[0].Datapath
	ka, bulk := uint8(0), uint8(0)
	if on {
		ka, bulk = 1, 2
	}
	if err := d.SetRoute(keepAliveNet, netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: ka}); err != nil {
		return err
	}
	if err := d.SetRoute(chain.OverlayPrefix(1), netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: bulk}); err != nil {
		return err
	}
	_, err := d.Shape(cp.c.Nodes[0].Right, classLinkRate)
	return err
}

// rttUnderBulk measures keep-alive round trips while a bulk TCP flow to
// B's bulk address saturates the link (once the shaper holds a backlog).
func (cp *classPair) rttUnderBulk(count int) ([]time.Duration, error) {
	a, b := cp.c.Nodes[0], cp.c.Nodes[1]
	ctx, cancel := context.WithCancel(context.Background())
	bulkErr := make(chan error, 1)
	go func() {
		_, err := trafficload.TCPBulk(ctx, a.NS, b.NS, b.Overlay)
		bulkErr <- err
	}()
	congested := waitFor(10*time.Second, func() bool {
		st, err := a.Datapath.ShaperStats(a.Right)
		if err != nil {
			return false
		}
		var backlog uint32
		for _, s := range st {
			backlog += s.Backlog
		}
		return backlog > 0
	})
	var rtts []time.Duration
	var err error
	if congested {
		rtts, err = trafficload.PingRTTs(a.NS, cp.keepAlive, count, 20*time.Millisecond)
	} else {
		err = fmt.Errorf("the bulk flow built no backlog in the shaper")
	}
	cancel()
	if e := <-bulkErr; err == nil {
		err = e
	}
	return rtts, err
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func classRound(p params) (map[string]float64, error) {
	vals := map[string]float64{}
	cp, err := newClassPair()
	if err != nil {
		return vals, err
	}
	defer cp.c.Close()
	a, b := cp.c.Nodes[0], cp.c.Nodes[1]
	pings := min(p.pings/5, 200)

	idle, err := trafficload.PingRTTs(a.NS, cp.keepAlive, pings, 20*time.Millisecond)
	if err != nil {
		return vals, fmt.Errorf("idle: %w", err)
	}
	set(vals, ClassIdleP50, ms(trafficload.Percentile(idle, 0.5)))
	set(vals, ClassIdleP99, ms(trafficload.Percentile(idle, 0.99)))

	with, err := cp.rttUnderBulk(pings)
	if err != nil {
		return vals, fmt.Errorf("with classes: %w", err)
	}
	set(vals, ClassWithP50, ms(trafficload.Percentile(with, 0.5)))
	set(vals, ClassWithP99, ms(trafficload.Percentile(with, 0.99)))
	set(vals, ClassP99OverIdle, vals[ClassWithP99]/vals[ClassIdleP99])

	if err := cp.classed(false); err != nil {
		return vals, err
	}
	without, err := cp.rttUnderBulk(pings)
	if err != nil {
		return vals, fmt.Errorf("without classes: %w", err)
	}
	set(vals, ClassWithoutP50, ms(trafficload.Percentile(without, 0.5)))
	set(vals, ClassWithoutP99, ms(trafficload.Percentile(without, 0.99)))

	if err := cp.classed(true); err != nil {
		return vals, err
	}
	rates := make([]uint64, classFlows)
	for i := range rates {
		rates[i] = uint64(i+1) * classLinkRate / classFlows
	}
	got, err := trafficload.UDPFlows(a.NS, b.NS, b.Overlay, rates, 3*time.Second, nil)
	if err != nil {
		return vals, fmt.Errorf("fairness: %w", err)
	}
	set(vals, ClassJain, trafficload.Jain(got))

	return vals, cp.classStep(vals, p.progRuns)
}

// classStep times overlay_egress (BPF_PROG_RUN, live maps) on a packet to
// B's bulk address with its route unclassed, then classed.
func (cp *classPair) classStep(vals map[string]float64, runs int) error {
	a, b := cp.c.Nodes[0], cp.c.Nodes[1]
	pkt, err := udp(a.Overlay, b.Overlay, smallPayload)
	if err != nil {
		return err
	}
	_, mac, err := linkInfo(a.NS, a.Datapath.State.Overlay)
	if err != nil {
		return err
	}
	frame, err := ethernet(mac, mac, pkt)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		class uint8
		key   string
	}{{0, ClassEgressNs}, {2, ClassEgressStepNs}} {
		if err := a.Datapath.SetRoute(chain.OverlayPrefix(1), netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: x.class}); err != nil {
			return err
		}
		verdicts, mean, err := a.Datapath.ProgramCost("overlay_egress", frame, runs)
		if err != nil {
			return err
		}
		if verdicts[tcActRedirect] != runs {
			return fmt.Errorf("class step: verdicts %v, want %d redirects", verdicts, runs)
		}
		set(vals, x.key, float64(mean.Nanoseconds()))
	}
	set(vals, ClassStepNs, vals[ClassEgressStepNs]-vals[ClassEgressNs])
	return nil
}

// classGoals judges the goals on the class figures.
func (f *ClassFigures) classGoals() []Goal {
	var goals []Goal
	for _, g := range []struct {
		name, key string
		b         Bound
		format    func(float64) string
	}{
		{"keep-alive RTT p99 under bulk with classes ≤ 2 × idle p99", ClassP99OverIdle, Bound{AtMost, 2}, times},
		{fmt.Sprintf("Jain's index of %d flows of a congested class (offered 1…%d × fair share) ≥ 0.95", classFlows, classFlows), ClassJain, Bound{AtLeast, 0.95},
			func(x float64) string { return fmt.Sprintf("%.4f", x) }},
	} {
		verdict, detail := judged("classes", series(f.Rounds, g.key), g.b, g.format)
		goals = append(goals, Goal{Name: g.name, Verdict: verdict, Detail: detail})
	}
	return goals
}

// writeMarkdown adds the traffic-class section of the report.
func (f *ClassFigures) writeMarkdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Traffic classes (docs/traffic-classes.md)\n\nA — B, one FOU tunnel, A's underlay shaped by `class shape` at %d Mbit/s: keep-alive class (rank 7, 1 Mbit/s) and bulk class (rank 0, %d flow leaves). Keep-alive RTT by ping every 20 ms to B's keep-alive address: idle; while one bulk TCP flow to B's bulk address saturates the link with the routes in their classes; the same with the routes unclassed (everything in one HTB leaf). Fairness: %d UDP flows of the bulk class offering 1…%d × the fair share for 3 s, Jain's index of their received bytes. Class step: `overlay_egress` by BPF_PROG_RUN on the live maps, the same packet with its route unclassed and classed. Median [min–max] over the rounds.\n\n| figure | value |\n|---|---:|\n",
		f.LinkRate/1_000_000, classFlows, classFlows, classFlows)
	for _, row := range []struct{ name, key, unit string }{
		{"keep-alive RTT p50, idle", ClassIdleP50, "ms"},
		{"keep-alive RTT p99, idle", ClassIdleP99, "ms"},
		{"keep-alive RTT p50 under bulk, classes", ClassWithP50, "ms"},
		{"keep-alive RTT p99 under bulk, classes", ClassWithP99, "ms"},
		{"keep-alive RTT p50 under bulk, no classes", ClassWithoutP50, "ms"},
		{"keep-alive RTT p99 under bulk, no classes", ClassWithoutP99, "ms"},
		{"p99 under bulk with classes / idle p99", ClassP99OverIdle, "×"},
		{"Jain's index, 8 flows", ClassJain, ""},
		{"overlay_egress, route without class", ClassEgressNs, "ns"},
		{"overlay_egress, route with class", ClassEgressStepNs, "ns"},
		{"class step (difference)", ClassStepNs, "ns"},
	} {
		v := "–"
		if s, ok := f.Summary[row.key]; ok {
			v = formatValue(s.Median) + " " + row.unit + span(s, formatValue)
		}
		fmt.Fprintf(b, "| %s | %s |\n", row.name, v)
	}
	for _, e := range f.Errors {
		fmt.Fprintf(b, "\nerror: %s\n", e)
	}
}

// RunClasses measures the traffic classes only (re6st-bench --classes).
func RunClasses(cfg Config) (*Results, error) {
	return runAlone(cfg, func(r *Results, p params) {
		r.Classes = classBench(cfg, p)
		r.Goals = r.Classes.classGoals()
	})
}

// runAlone is a report of one section measured by itself.
func runAlone(cfg Config, measure func(r *Results, p params)) (*Results, error) {
	p, err := cfg.params()
	if err != nil {
		return nil, err
	}
	r := &Results{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Quick: cfg.Quick, Rounds: p.rounds,
		Machine: machine() + "; load average at start " + loadavg()}
	measure(r, p)
	r.Notes = append(r.Notes, "Load average at the end: "+loadavg()+".")
	return r, nil
}
