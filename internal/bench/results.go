package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Metric is one figure measured on every variant.
type Metric struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	Unit   string `json:"unit"`
	Higher bool   `json:"higher_is_better"`
}

// Metric keys.
const (
	TCP1      = "tcp1"
	TCP4      = "tcp4"
	UDPRate   = "udp_rate"
	UDPLoss   = "udp_loss"
	CeilRate  = "ceiling_rate"
	CeilLoss  = "ceiling_loss"
	RTTIdle50 = "rtt_idle_p50"
	RTTIdle99 = "rtt_idle_p99"
	RTTLoad50 = "rtt_load_p50"
	RTTLoad99 = "rtt_load_p99"
	CPUPerB   = "cpu_ns_per_byte"
)

// Metrics are the per-variant figures, in table order.
var Metrics = []Metric{
	{TCP1, "TCP 1 stream", "Gbit/s", true},
	{TCP4, "TCP 4 streams", "Gbit/s", true},
	{UDPRate, "small UDP rx", "kpkt/s", true},
	{UDPLoss, "UDP loss", "%", false},
	{CeilRate, "transit ceiling", "kpkt/s", true},
	{CeilLoss, "ceiling loss", "%", false},
	{RTTIdle50, "RTT idle p50", "µs", false},
	{RTTIdle99, "RTT idle p99", "µs", false},
	{RTTLoad50, "RTT load p50", "µs", false},
	{RTTLoad99, "RTT load p99", "µs", false},
	{CPUPerB, "CPU per byte", "ns/B", false},
}

// Row is one variant on one chain, over the rounds.
type Row struct {
	Hops    int    `json:"hops"`
	Variant string `json:"variant"`
	// Shapes is the tunnel shape of each link of a mixed chain.
	Shapes string `json:"shapes,omitempty"`
	// Rounds holds each round's figures, in round order; a figure missing
	// from a round was not measured in it (see Errors).
	Rounds []map[string]float64 `json:"rounds"`
	// RatioRounds are each round's figures divided by the reference's of
	// the same round on the same chain (none where the reference's is
	// missing or zero).
	RatioRounds []map[string]float64 `json:"ratio_rounds,omitempty"`
	// Values and Ratios summarise Rounds and RatioRounds per figure.
	Values map[string]Stat `json:"values"`
	Ratios map[string]Stat `json:"ratios,omitempty"`
	Errors []string        `json:"errors,omitempty"`
}

// series is figure key of every round in rounds that measured it, in
// round order.
func series(rounds []map[string]float64, key string) []float64 {
	var out []float64
	for _, r := range rounds {
		if v, ok := r[key]; ok {
			out = append(out, v)
		}
	}
	return out
}

// summarize summarises every figure of rounds.
func summarize(rounds []map[string]float64) map[string]Stat {
	out := map[string]Stat{}
	for _, r := range rounds {
		for k := range r {
			if _, done := out[k]; !done {
				out[k], _ = Summarize(series(rounds, k))
			}
		}
	}
	return out
}

// ProgramCost is one BPF_PROG_RUN measurement of a data-plane program.
type ProgramCost struct {
	Variant     string  `json:"variant"`
	Case        string  `json:"case"` // encap, transit, decap
	Program     string  `json:"program"`
	NsPerPacket float64 `json:"ns_per_packet"`
	// FastPath is the share of runs that ended in the fast path's
	// verdict (a redirect).
	FastPath float64 `json:"fast_path"`
	Runs     int     `json:"runs"`
	// LiveNs is the mean run time the kernel accounted to the attached
	// program under the small-UDP load (0: not measured).
	LiveNs float64 `json:"live_ns,omitempty"`
}

// RouteMapFigure is the route map filled to Routes entries.
type RouteMapFigure struct {
	Routes        int     `json:"routes"`
	InsertsPerSec float64 `json:"inserts_per_sec"`
	MemoryBytes   uint64  `json:"memory_bytes"`
}

// Goal is one of the goals with its verdict.
type Goal struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`
}

// Results is a whole run.
type Results struct {
	Date    string `json:"date"`
	Quick   bool   `json:"quick"`
	Machine string `json:"machine"`
	// Rounds is how often every variant was measured, interleaved.
	Rounds   int           `json:"rounds"`
	Metrics  []Metric      `json:"metrics"`
	Rows     []Row         `json:"rows"`
	Programs []ProgramCost `json:"programs,omitempty"`
	// TimerFloorNs is what timing one BPF_PROG_RUN costs by itself: the
	// mean for a program that only returns.
	TimerFloorNs float64          `json:"timer_floor_ns,omitempty"`
	RouteMap     []RouteMapFigure `json:"route_map,omitempty"`
	// Comparisons set the mixed-shape chains against single-shape ones.
	Comparisons []Comparison `json:"comparisons,omitempty"`
	Goals       []Goal       `json:"goals,omitempty"`
	Notes       []string     `json:"notes,omitempty"`

	// Classes are the traffic-class figures.
	Classes *ClassFigures `json:"classes,omitempty"`
	// Gateway are the border gateway's transit figures.
	Gateway *GatewayFigures `json:"gateway,omitempty"`
}

// Reference is the variant every figure is compared with.
const Reference = "plain"

// row returns the row of variant on the chain of hops, or nil.
func (r *Results) row(hops int, variant string) *Row {
	for i := range r.Rows {
		if r.Rows[i].Hops == hops && r.Rows[i].Variant == variant {
			return &r.Rows[i]
		}
	}
	return nil
}

// figure is the figure key of variant on the chain of hops in round i,
// and whether it was measured.
func (r *Results) figure(hops int, variant string, i int, key string) (float64, bool) {
	row := r.row(hops, variant)
	if row == nil || i >= len(row.Rounds) {
		return 0, false
	}
	x, ok := row.Rounds[i][key]
	return x, ok
}

// paired applies f to the figure key of variant and of base in every round
// where both were measured on the chain of hops.
func (r *Results) paired(hops int, variant, base, key string, f func(x, b float64) float64) []float64 {
	var out []float64
	for i := range r.Rounds {
		x, ok := r.figure(hops, variant, i, key)
		b, ok2 := r.figure(hops, base, i, key)
		if ok && ok2 {
			if y := f(x, b); finite(y) {
				out = append(out, y)
			}
		}
	}
	return out
}

func ratio(x, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return x / b
}

// Summarize fills every row's summaries and its per-round ratios to the
// reference of its chain.
func (r *Results) Summarize() {
	for i := range r.Rows {
		row := &r.Rows[i]
		row.Values = summarize(row.Rounds)
		row.RatioRounds = make([]map[string]float64, len(row.Rounds))
		for k, round := range row.Rounds {
			row.RatioRounds[k] = map[string]float64{}
			for key, x := range round {
				if b, ok := r.figure(row.Hops, Reference, k, key); ok && finite(ratio(x, b)) {
					row.RatioRounds[k][key] = ratio(x, b)
				}
			}
		}
		row.Ratios = summarize(row.RatioRounds)
	}
}

// Hops lists the chains measured, in order.
func (r *Results) Hops() []int {
	var out []int
	for _, row := range r.Rows {
		if !slices.Contains(out, row.Hops) {
			out = append(out, row.Hops)
		}
	}
	return out
}

// bpfVariants are the re6st-bpf variants on veth's automatic hook (tcx),
// and all single-shape ones.
var (
	autoHookVariants = []string{"fou-tc", "gre-tc"}
	bpfVariants      = []string{"fou-tc", "fou-xdp", "gre-tc", "gre-xdp"}
	openvpnVariants  = []string{"openvpn-udp", "openvpn-tcp"}
	// The encrypting variants: WireGuard, and OpenVPN with AES as re6st
	// runs it in a network that encrypts.
	wireguardVariant   = "wireguard-tc"
	openvpnAESVariants = []string{"openvpn-udp-aes", "openvpn-tcp-aes"}
)

// judged judges the rounds xs of one contender against b and describes
// them: "fou-tc 0.85× [0.80–0.90] UNDECIDED".
func judged(name string, xs []float64, b Bound, format func(float64) string) (Verdict, string) {
	s, ok := Summarize(xs)
	if !ok {
		return Undecided, name + " not measured"
	}
	v := Judge(xs, b)
	return v, fmt.Sprintf("%s %s [%s–%s] %s", name, format(s.Median), format(s.Min), format(s.Max), v)
}

func times(x float64) string  { return fmt.Sprintf("%.2f×", x) }
func micros(x float64) string { return fmt.Sprintf("%+.1f µs", x) }

// ratioGoal needs every variant in vs to meet b with its ratio to the
// reference for key on the chain of hops, in every round.
func (r *Results) ratioGoal(name string, hops int, key string, vs []string, b Bound) Goal {
	var verdicts []Verdict
	var parts []string
	for _, v := range vs {
		verdict, part := judged(v, r.paired(hops, v, Reference, key, ratio), b, times)
		verdicts = append(verdicts, verdict)
		parts = append(parts, part)
	}
	return Goal{Name: name, Verdict: All(verdicts...), Detail: strings.Join(parts, ", ")}
}

// anyHookGoal needs, per encapsulation, one hook whose ratio to the
// reference for key meets b in every round.
func (r *Results) anyHookGoal(name string, hops int, key string, b Bound) Goal {
	var verdicts []Verdict
	var parts []string
	for _, enc := range []string{"fou", "gre"} {
		var hooks []Verdict
		for _, v := range []string{enc + "-tc", enc + "-xdp"} {
			verdict, part := judged(v, r.paired(hops, v, Reference, key, ratio), b, times)
			hooks = append(hooks, verdict)
			parts = append(parts, part)
		}
		verdicts = append(verdicts, Any(hooks...))
	}
	return Goal{Name: name, Verdict: All(verdicts...), Detail: strings.Join(parts, ", ")}
}

// vpnFactors is, per round, the slowest auto-hook re6st-bpf variant's
// 1-stream TCP over the fastest OpenVPN's, on the chain of hops; a round
// counts when it measured every auto-hook variant and one OpenVPN.
func (r *Results) vpnFactors(hops int) []float64 {
	var out []float64
	for i := range r.Rounds {
		slowest, fastest, complete := math.Inf(1), 0.0, true
		for _, v := range autoHookVariants {
			x, ok := r.figure(hops, v, i, TCP1)
			slowest, complete = min(slowest, x), complete && ok
		}
		for _, v := range openvpnVariants {
			if x, ok := r.figure(hops, v, i, TCP1); ok {
				fastest = max(fastest, x)
			}
		}
		if complete && fastest > 0 {
			out = append(out, slowest/fastest)
		}
	}
	return out
}

// encryptedFactors is, per round, WireGuard's 1-stream TCP over the
// fastest OpenVPN with AES, on the chain of hops.
func (r *Results) encryptedFactors(hops int) []float64 {
	var out []float64
	for i := range r.Rounds {
		wg, ok := r.figure(hops, wireguardVariant, i, TCP1)
		fastest := 0.0
		for _, v := range openvpnAESVariants {
			if x, ok := r.figure(hops, v, i, TCP1); ok {
				fastest = max(fastest, x)
			}
		}
		if ok && fastest > 0 {
			out = append(out, wg/fastest)
		}
	}
	return out
}

// MinEncryptedFactor is the goal's bound on encrypted throughput: re6st-bpf's
// WireGuard over re6st's OpenVPN with AES.
const MinEncryptedFactor = 3.0

// Comparison is a variant against another one than the reference, on the
// same chain: the median and min–max of its per-round ratios to base.
type Comparison struct {
	Hops    int             `json:"hops"`
	Variant string          `json:"variant"`
	Base    string          `json:"base"`
	Ratios  map[string]Stat `json:"ratios"`
}

// comparedMetrics are the figures a Comparison gives.
var comparedMetrics = []string{TCP1, TCP4, UDPRate, CeilRate, RTTIdle50}

// Compare sets variant against base on the chain of hops, round by round.
func (r *Results) Compare(hops int, variant, base string) Comparison {
	c := Comparison{Hops: hops, Variant: variant, Base: base, Ratios: map[string]Stat{}}
	for _, key := range comparedMetrics {
		if s, ok := Summarize(r.paired(hops, variant, base, key, ratio)); ok {
			c.Ratios[key] = s
		}
	}
	return c
}

// MaxRTTPerHop is the goal's bound on the RTT an overlay hop adds (µs).
const MaxRTTPerHop = 10.0

// EvaluateGoals judges the goals from the rounds (after
// Summarize). shortHops and longHops are the 1-hop and 3-hop chains. A goal
// passes or misses only when every round of every figure it rests on is on
// the same side of it; otherwise it is UNDECIDED.
func (r *Results) EvaluateGoals(shortHops, longHops int) {
	r.Goals = []Goal{
		r.ratioGoal(fmt.Sprintf("%d hop: TCP 1 stream ≥ 0.9 × reference (auto hook: tcx on veth)", shortHops), shortHops, TCP1, autoHookVariants, Bound{AtLeast, 0.9}),
		r.ratioGoal(fmt.Sprintf("%d hops: TCP 1 stream ≥ 1.0 × reference (auto hook: tcx on veth)", longHops), longHops, TCP1, autoHookVariants, Bound{AtLeast, 1}),
		r.anyHookGoal(fmt.Sprintf("%d hops: small-packet rate to the last node's stack > kernel forwarding with at least one hook, per encapsulation", longHops), longHops, UDPRate, Bound{Above, 1}),
		r.anyHookGoal(fmt.Sprintf("%d hops: small-packet transit ceiling (XDP sink at the last hop) > kernel forwarding with at least one hook, per encapsulation", longHops), longHops, CeilRate, Bound{Above, 1}),
	}
	verdict, detail := judged("slowest auto-hook re6st-bpf over fastest OpenVPN", r.vpnFactors(longHops), Bound{AtLeast, 20},
		func(x float64) string { return fmt.Sprintf("%.0f×", x) })
	r.Goals = append(r.Goals, Goal{Name: fmt.Sprintf("%d hops: re6st-bpf TCP ≥ 20 × OpenVPN", longHops), Verdict: verdict, Detail: detail})

	for _, hops := range []int{shortHops, longHops} {
		verdict, detail := judged("wireguard-tc over fastest OpenVPN with AES", r.encryptedFactors(hops), Bound{AtLeast, MinEncryptedFactor}, times)
		r.Goals = append(r.Goals, Goal{Name: fmt.Sprintf("%d hop(s): encrypted TCP 1 stream (WireGuard) ≥ %.0f × OpenVPN with AES", hops, MinEncryptedFactor),
			Verdict: verdict, Detail: detail})
	}

	var verdicts []Verdict
	var parts []string
	for _, hops := range []int{shortHops, longHops} {
		for _, v := range bpfVariants {
			added := r.paired(hops, v, Reference, RTTIdle50, func(x, b float64) float64 { return (x - b) / float64(hops) })
			verdict, part := judged(fmt.Sprintf("%s/%dh", v, hops), added, Bound{AtMost, MaxRTTPerHop}, micros)
			verdicts = append(verdicts, verdict)
			parts = append(parts, part)
		}
	}
	r.Goals = append(r.Goals, Goal{Name: fmt.Sprintf("added RTT per overlay hop (idle p50) ≤ %.0f µs", MaxRTTPerHop),
		Verdict: All(verdicts...), Detail: strings.Join(parts, ", ")})
}
