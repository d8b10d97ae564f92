package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// Config chooses the size of a run.
type Config struct {
	Quick bool
	// Rounds overrides the number of rounds (0: 5, or 2 when Quick).
	Rounds int
	// Variants, when set, restricts the run to these variants (by name;
	// the reference is always measured).
	Variants []string
	Log      io.Writer // progress; nil for none
}

// selected is vs restricted to the variants c asks for.
func (c Config) selected(vs []Variant) []Variant {
	if len(c.Variants) == 0 {
		return vs
	}
	return slices.DeleteFunc(vs, func(v Variant) bool { return v.Name != Reference && !slices.Contains(c.Variants, v.Name) })
}

// params are the sizes of a run's tests and where they run.
type params struct {
	rounds     int
	tcpSeconds int
	pings      int
	genFrames  int
	progRuns   int
	routes     []int // route-map fill levels, increasing
	cpus       pinning
}

func (c Config) params() (params, error) {
	p := params{rounds: 5, tcpSeconds: 3, pings: 1000, genFrames: 1_000_000, progRuns: 100_000, routes: []int{100_000, 1_000_000}}
	if c.Quick {
		p = params{rounds: 2, tcpSeconds: 1, pings: 300, genFrames: 300_000, progRuns: 100_000, routes: []int{100_000}}
	}
	if c.Rounds > 0 {
		p.rounds = c.Rounds
	}
	var err error
	p.cpus, err = choosePinning()
	return p, err
}

// Chains are the tunnel hop counts measured: one tunnel, and three.
var Chains = []int{1, 3}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// Run measures every variant on every chain in interleaved rounds, the
// programs and the route map, and judges the goals. It needs root.
func Run(cfg Config) (*Results, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the benchmark needs root (network namespaces, BPF)")
	}
	p, err := cfg.params()
	if err != nil {
		return nil, err
	}
	r := &Results{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Quick: cfg.Quick, Rounds: p.rounds, Metrics: Metrics,
		Machine: machine() + "; load average at start " + loadavg()}
	pki, err := os.MkdirTemp("", "re6st-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(pki)
	if err := newPKI(pki); err != nil {
		return nil, err
	}
	for _, hops := range Chains {
		rows, progs, load := runChain(cfg, p, hops, pki)
		r.Rows = append(r.Rows, rows...)
		r.Programs = append(r.Programs, progs...)
		r.Notes = append(r.Notes, load)
	}
	if r.TimerFloorNs, err = timerFloor(p.progRuns); err != nil {
		r.Notes = append(r.Notes, "timer floor: "+err.Error())
	}
	start := time.Now()
	if r.RouteMap, err = routeMap(p.routes); err != nil {
		r.Notes = append(r.Notes, "route map: "+err.Error())
	}
	cfg.logf("route map %5.1fs %+v", time.Since(start).Seconds(), r.RouteMap)
	r.Summarize()
	for _, hops := range Chains {
		for _, v := range cfg.selected(variantsFor(hops)) {
			for _, base := range v.comparedWith() {
				r.Comparisons = append(r.Comparisons, r.Compare(hops, v.Name, base))
			}
		}
	}
	r.EvaluateGoals(Chains[0], Chains[len(Chains)-1])
	start = time.Now()
	r.Classes = classBench(cfg, p)
	r.Goals = append(r.Goals, r.Classes.classGoals()...)
	cfg.logf("traffic classes %5.1fs", time.Since(start).Seconds())
	start = time.Now()
	r.Gateway = gatewayBench(cfg, p)
	r.Goals = append(r.Goals, r.Gateway.gatewayGoals()...)
	cfg.logf("gateway transit %5.1fs", time.Since(start).Seconds())
	r.Notes = append(r.Notes, methodNotes(p)...)
	r.Notes = append(r.Notes, "Load average at the end: "+loadavg()+". On a machine busy with other jobs (a load average well above its CPUs) two rounds of short tests can land on the same side of a goal by chance: judge goals with the full run on a quiet machine.")
	return r, nil
}

// set records a figure unless it is not a number.
func set(vals map[string]float64, key string, v float64) {
	if finite(v) {
		vals[key] = v
	}
}

// programs times the data-plane programs of a chain of at least 3 nodes:
// live during a small-UDP run of its own (not counted in the figures),
// then in single runs.
func (t *topology) programs(p params) ([]ProgramCost, error) {
	live, err := t.liveCosts(func() error {
		_, _, err := t.smallUDP(p.genFrames, t.udpNoPorts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("live costs: %w", err)
	}
	// Last: the underlay programs learn link layers from what they run on.
	return t.programCosts(p.progRuns, live)
}

// underlay is the underlay program of the variant's hook and the verdict
// of its fast path.
func (t *topology) underlay() (string, uint32) {
	if t.v.hook == loader.HookXDP {
		return "underlay_xdp", xdpRedirect
	}
	return "underlay_tc", tcActRedirect
}

// liveCosts runs fn (traffic through a chain of at least 3 nodes) with the
// kernel's BPF run-time statistics on, and returns the mean run time (ns)
// of the transit node's and the last node's underlay programs over the
// runs fn caused.
func (t *topology) liveCosts(fn func() error) (map[string]float64, error) {
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return nil, fmt.Errorf("BPF statistics: %w", err)
	}
	defer stats.Close()
	prog, _ := t.underlay()
	probes := map[string]*loader.Datapath{"transit": t.chain.Nodes[1].Datapath, "decap": t.chain.Last().Datapath}
	before := map[string]*ebpf.ProgramStats{}
	for name, d := range probes {
		if before[name], err = d.ProgramStats(prog); err != nil {
			return nil, err
		}
	}
	if err := fn(); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, d := range probes {
		after, err := d.ProgramStats(prog)
		if err != nil {
			return nil, err
		}
		if runs := after.RunCount - before[name].RunCount; runs > 0 {
			out[name] = float64((after.Runtime - before[name].Runtime).Nanoseconds()) / float64(runs)
		}
	}
	return out, nil
}

// Verdicts of the fast path.
const (
	tcActRedirect = 7
	xdpRedirect   = 4
	xdpPass       = 2
)

// programCosts runs the programs of a chain of at least 3 nodes on its
// traffic: encapsulation at the first node, transit at the second, and
// decapsulation at the last; live holds the same cases' run time under
// the small-UDP load (liveCosts).
func (t *topology) programCosts(runs int, live map[string]float64) ([]ProgramCost, error) {
	c := t.chain
	first, last := c.First(), c.Last()
	underlay, redirect := t.underlay()
	pkt, err := udp(t.overlayAddr(first), t.overlayAddr(last), smallPayload)
	if err != nil {
		return nil, err
	}
	_, ovMAC, err := linkInfo(first.NS, first.Datapath.State.Overlay)
	if err != nil {
		return nil, err
	}
	egress, err := ethernet(ovMAC, ovMAC, pkt)
	if err != nil {
		return nil, err
	}
	k := len(c.Nodes) - 2 // the last link
	_, srcMAC, err := linkInfo(c.Nodes[k].NS, c.Nodes[k].Right)
	if err != nil {
		return nil, err
	}
	_, dstMAC, err := linkInfo(last.NS, last.Left)
	if err != nil {
		return nil, err
	}
	tun, err := tunnelTo(c.Nodes[k], chain.LinkV4(k, 2))
	if err != nil {
		return nil, err
	}
	enc, err := encapsulate(tun, pkt)
	if err != nil {
		return nil, err
	}
	decap, err := ethernet(srcMAC, dstMAC, enc)
	if err != nil {
		return nil, err
	}
	var out []ProgramCost
	for _, x := range []struct {
		name    string
		node    *chain.Node
		prog    string
		frame   []byte
		verdict uint32
	}{
		{"encap", first, "overlay_egress", egress, tcActRedirect},
		{"transit", c.Nodes[1], underlay, t.genFrame, redirect},
		{"decap", last, underlay, decap, redirect},
	} {
		verdicts, mean, err := x.node.Datapath.ProgramCost(x.prog, x.frame, runs)
		if err != nil {
			return out, err
		}
		out = append(out, ProgramCost{Variant: t.v.Name, Case: x.name, Program: x.prog,
			NsPerPacket: float64(mean.Nanoseconds()), FastPath: float64(verdicts[x.verdict]) / float64(runs), Runs: runs,
			LiveNs: live[x.name]})
	}
	return out, nil
}

// timerFloor times an XDP program that only returns XDP_PASS the way the
// data-plane programs are timed: the cost of the timing itself.
func timerFloor(runs int) (float64, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()}})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	_, mean, err := loader.TimedRuns(p, make([]byte, 64), runs)
	return float64(mean.Nanoseconds()), err
}

// routePrefix is the i-th distinct /64 of 3fff::/20.
func routePrefix(i int) netip.Prefix {
	var a [16]byte
	a[0], a[1] = 0x3f, 0xff
	binary.BigEndian.PutUint32(a[2:], uint32(i))
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// routeMap fills the route map of a fresh data plane through
// Datapath.AddRoute and reports, at each fill level, the insert rate
// from empty and the map's memory.
func routeMap(levels []int) ([]RouteMapFigure, error) {
	c, err := chain.New(chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d := c.First().Datapath
	tunnels, err := d.Tunnels()
	if err != nil || len(tunnels) == 0 {
		return nil, fmt.Errorf("no tunnel to route to: %v", err)
	}
	nh := loader.Nexthop{Tunnel: tunnels[0].ID}
	var out []RouteMapFigure
	start, i := time.Now(), 0
	for _, n := range levels {
		for ; i < n; i++ {
			if err := d.AddRoute(routePrefix(i), netip.Prefix{}, nh); err != nil {
				return out, fmt.Errorf("route %d: %w", i, err)
			}
		}
		rate := float64(n) / time.Since(start).Seconds()
		mem, err := d.RouteMapMemory()
		if err != nil {
			return out, err
		}
		out = append(out, RouteMapFigure{Routes: n, InsertsPerSec: rate, MemoryBytes: mem})
	}
	return out, nil
}

// machine describes where the figures come from.
func machine() string {
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mhz := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
				mhz = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("Linux %s, %d CPUs at %s MHz", strings.TrimSpace(string(rel)), runtime.NumCPU(), mhz)
}

// loadavg is the 1-, 5- and 15-minute load averages.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cyclesNote says whether perf can count cycles here.
func cyclesNote() string {
	out, err := exec.Command("perf", "stat", "-x,", "-e", "cycles", "-a", "--", "true").CombinedOutput()
	var why string
	switch {
	case errors.Is(err, exec.ErrNotFound):
		why = "perf is not installed"
	case err != nil || strings.Contains(string(out), "not supported") || strings.Contains(string(out), "not counted"):
		why = "`perf stat -e cycles` reports the event <not supported> (no PMU in this VM)"
	default:
		return "perf counts cycles on this machine, but the table gives CPU time: cycles/B ≈ ns/B × GHz."
	}
	return "CPU cycles per byte are not measurable here: " + why + ". " +
		"The table gives CPU time per byte instead: busy time of all CPUs (/proc/stat) during each round's 1-stream TCP test over the bytes received; cycles/B ≈ ns/B × GHz. " +
		"It is system-wide, so other load on the machine inflates it."
}

// methodNotes say how the figures were measured.
func methodNotes(p params) []string {
	return []string{
		fmt.Sprintf("Rounds: every topology is built once; then %d round(s), each running every workload on every variant before the next workload (each round starting one variant further down the list). A figure is the median over the rounds; a ratio is the median of the per-round ratios to the reference's figure of the same round, with their min–max; the reference's own cells give its min–max.", p.rounds),
		fmt.Sprintf("Pinning: iperf3 client, ping and the UDP generator on CPU %d, iperf3 server on CPU %d (taskset, sched_setaffinity). The chain's forwarding runs in softirq on the CPU that sends into it.", p.cpus.sender, p.cpus.receiver),
		fmt.Sprintf("TCP: iperf3, first node to last, one test of %d s per round. RTT: %d pings 1 ms apart, idle and during a 1-stream TCP test; p50/p99 of the replies.", p.tcpSeconds, p.pings),
		fmt.Sprintf("Small UDP: %d frames of one IPv6/UDP datagram (%d-byte payload; IPv4/UDP on the -ipv4 variants) as it leaves the first node (plain; encapsulated for the first link's tunnel; into OpenVPN's TAP), sent by an XDP program returning XDP_TX under BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES; rate = datagrams counted at the last node (Udp6NoPorts; Udp NoPorts for IPv4) over the time until that counter stops; loss = 1 − received/sent. On the tcx and plain variants GRO is on on the second node's receiving veth during the test (the NAPI that XDP transmit into a veth needs), off again after.", p.genFrames, smallPayload),
		"Transit ceiling: the same frames, counted and dropped by an XDP sink at the last node's underlay ingress instead of its stack (3 hops only; not OpenVPN). On the XDP variants the sink replaces the data plane's XDP program on that interface for the test.",
		cyclesNote(),
	}
}
