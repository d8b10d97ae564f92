package bench

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pinning is where the two ends of a test run: the sender (iperf3 client,
// ping, the UDP generator) and the receiver (iperf3 server).
type pinning struct{ sender, receiver int }

// choosePinning puts the sender on the first CPU this process may use and
// the receiver on the second (the same one on a single CPU).
func choosePinning() (pinning, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return pinning{}, fmt.Errorf("CPU affinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return pinning{}, errors.New("CPU affinity: no CPU allowed")
	}
	return pinning{sender: cpus[0], receiver: cpus[len(cpus)-1]}, nil
}

// on prefixes argv with taskset, to run it on cpu.
func on(cpu int, argv ...string) []string {
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// onCPU runs fn with the calling OS thread pinned to cpu, and restores the
// thread's affinity after. The caller must hold the thread (as NS.Do does).
func onCPU(cpu int, fn func() error) error {
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return err
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}

// oneLine folds a message's whitespace (command output) into single
// spaces, for a table's notes.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// workload is one test of a round; run records its figures in vals.
type workload struct {
	name    string
	applies func(v Variant, hops int) bool // nil: every variant
	run     func(t *topology, p params, vals map[string]float64) error
}

// rttWorkload records the p50 and p99 of the RTTs measure returns.
func rttWorkload(name, p50, p99 string, measure func(t *topology, count int) ([]float64, error)) workload {
	return workload{name: name, run: func(t *topology, p params, vals map[string]float64) error {
		rtts, err := measure(t, p.pings)
		if err != nil {
			return err
		}
		set(vals, p50, Percentile(rtts, 50))
		set(vals, p99, Percentile(rtts, 99))
		return nil
	}}
}

// tcpWorkload records the throughput of a TCP test of streams streams and,
// with cpuKey, the CPU time per byte it took.
func tcpWorkload(name string, streams int, key, cpuKey string) workload {
	return workload{name: name, run: func(t *topology, p params, vals map[string]float64) error {
		var r Iperf
		cpu, err := cpuTime(func() (err error) {
			r, err = t.iperf(p.tcpSeconds, streams)
			return err
		})
		if err != nil {
			return err
		}
		set(vals, key, r.BitsPerSecond/1e9)
		if cpuKey != "" {
			set(vals, cpuKey, float64(cpu.Nanoseconds())/r.Bytes)
		}
		return nil
	}}
}

// udpWorkload records the rate (kpkt/s) and loss (%) measure returns. When
// a re6st-bpf chain loses most frames, it also fails with the data-plane
// counters that moved meanwhile, node by node: where the frames went.
func udpWorkload(name, rate, loss string, applies func(Variant, int) bool, measure func(t *topology, n int) (float64, float64, error)) workload {
	return workload{name: name, applies: applies, run: func(t *topology, p params, vals map[string]float64) error {
		before, err := t.reasons()
		if err != nil {
			return err
		}
		pps, lost, err := measure(t, p.genFrames)
		if err != nil {
			return err
		}
		set(vals, rate, pps/1e3)
		set(vals, loss, lost)
		if lost < 50 || before == nil {
			return nil
		}
		after, err := t.reasons()
		if err != nil {
			return err
		}
		return fmt.Errorf("%.0f%% of the frames lost; data-plane counters meanwhile: %s", lost, reasonsMoved(before, after))
	}}
}

// reasons are the data plane's reason counters of every node; nil without
// a data plane.
func (t *topology) reasons() ([]map[string]uint64, error) {
	if t.v.kind != kindBPF {
		return nil, nil
	}
	out := make([]map[string]uint64, len(t.chain.Nodes))
	for i, n := range t.chain.Nodes {
		var err error
		if out[i], err = n.Datapath.Reasons(); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
	}
	return out, nil
}

// reasonsMoved lists the counters that grew from before to after, node by
// node: "node 1: transit +300000; node 2: drop-no-tunnel +300000".
func reasonsMoved(before, after []map[string]uint64) string {
	var nodes []string
	for i := range after {
		var moved []string
		for _, k := range slices.Sorted(maps.Keys(after[i])) {
			if d := after[i][k] - before[i][k]; d > 0 {
				moved = append(moved, fmt.Sprintf("%s +%d", k, d))
			}
		}
		if len(moved) > 0 {
			nodes = append(nodes, fmt.Sprintf("node %d: %s", i, strings.Join(moved, ", ")))
		}
	}
	if len(nodes) == 0 {
		return "none"
	}
	return strings.Join(nodes, "; ")
}

// hasTransit: the ceiling case needs a transit node and a data plane or
// kernel forwarding it can be compared with (not OpenVPN, whose TCP would
// stall with its packets dropped).
func hasTransit(v Variant, hops int) bool {
	return v.kind != kindOpenVPN && generates(v, hops) && hops >= 2
}

// workloads make up a round, in order; each runs on every variant before
// the next starts, so that the figures a ratio divides were measured
// seconds apart.
var workloads = []workload{
	rttWorkload("idle RTT", RTTIdle50, RTTIdle99, (*topology).ping),
	tcpWorkload("TCP 1 stream", 1, TCP1, CPUPerB),
	tcpWorkload("TCP 4 streams", 4, TCP4, ""),
	rttWorkload("RTT under load", RTTLoad50, RTTLoad99, (*topology).pingLoaded),
	udpWorkload("small UDP", UDPRate, UDPLoss, generates, func(t *topology, n int) (float64, float64, error) {
		return t.smallUDP(n, t.udpNoPorts)
	}),
	udpWorkload("transit ceiling", CeilRate, CeilLoss, hasTransit, (*topology).ceiling),
}

// rotation is the order of n variants in round r: the list, starting r
// places further down it.
func rotation(n, r int) []int {
	out := make([]int, n)
	for j := range out {
		out[j] = (j + r) % n
	}
	return out
}

// runChain builds every variant of the chain of hops once, measures them
// in p.rounds interleaved rounds (in the order of rotation, so that no
// variant always comes first), then times the data plane's programs. A
// variant that cannot be built keeps the error in its row and is left
// out; one that is built but does not answer is still measured, so that
// its loss and errors show how it fails.
// It also returns a note with the load average at the start of each round:
// how busy the machine was while the figures were taken.
func runChain(cfg Config, p params, hops int, pki string) ([]Row, []ProgramCost, string) {
	vs := cfg.selected(variantsFor(hops))
	rows := make([]Row, len(vs))
	tops := make([]*topology, len(vs))
	defer func() {
		for _, t := range tops {
			if t != nil {
				t.close()
			}
		}
	}()
	for i, v := range vs {
		rows[i] = Row{Hops: hops, Variant: v.Name, Rounds: make([]map[string]float64, p.rounds)}
		for k := range rows[i].Rounds {
			rows[i].Rounds[k] = map[string]float64{}
		}
		start := time.Now()
		t, err := build(v, hops+1, pki, p.cpus)
		if err != nil {
			rows[i].Errors = append(rows[i].Errors, oneLine("build: "+err.Error()))
			cfg.logf("%d hop(s) %-20s build failed: %v", hops, v.Name, err)
			continue
		}
		tops[i] = t
		if err := t.reachable(10 * time.Second); err != nil {
			rows[i].Errors = append(rows[i].Errors, oneLine("after build: "+err.Error()))
		}
		cfg.logf("%d hop(s) %-20s built in %.1fs", hops, v.Name, time.Since(start).Seconds())
	}
	var loads []string
	for round := range p.rounds {
		start := time.Now()
		loads = append(loads, fmt.Sprintf("round %d: %s", round+1, loadavg()))
		for _, w := range workloads {
			for _, i := range rotation(len(vs), round) {
				if tops[i] == nil || (w.applies != nil && !w.applies(vs[i], hops)) {
					continue
				}
				if err := w.run(tops[i], p, rows[i].Rounds[round]); err != nil {
					rows[i].Errors = append(rows[i].Errors, oneLine(fmt.Sprintf("round %d: %s: %v", round+1, w.name, err)))
				}
			}
		}
		cfg.logf("%d hop(s) round %d/%d in %.1fs", hops, round+1, p.rounds, time.Since(start).Seconds())
		for i, v := range vs {
			cfg.logf("  %-20s %v", v.Name, rows[i].Rounds[round])
		}
	}
	var progs []ProgramCost
	for i, t := range tops {
		if t == nil || t.v.kind != kindBPF || t.v.wireguard || hops < 2 {
			continue
		}
		pc, err := t.programs(p)
		progs = append(progs, pc...)
		if err != nil {
			rows[i].Errors = append(rows[i].Errors, oneLine("programs: "+err.Error()))
		}
	}
	note := fmt.Sprintf("%d hop(s), load average (1, 5, 15 min) at the start of each round: %s.", hops, strings.Join(loads, "; "))
	return rows, progs, note
}
