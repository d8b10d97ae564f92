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
	{RTTIdle50, "RTT idle p50", "µs", false},
	{RTTIdle99, "RTT idle p99", "µs", false},
	{RTTLoad50, "RTT load p50", "µs", false},
	{RTTLoad99, "RTT load p99", "µs", false},
	{CPUPerB, "CPU per byte", "ns/B", false},
}

// Row is one variant on one chain.
type Row struct {
	Hops    int                `json:"hops"`
	Variant string             `json:"variant"`
	Values  map[string]float64 `json:"values"`
	// Ratios are Values divided by the reference's on the same chain.
	Ratios map[string]float64 `json:"ratios,omitempty"`
	Error  string             `json:"error,omitempty"`
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
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Results is a whole run.
type Results struct {
	Date     string        `json:"date"`
	Quick    bool          `json:"quick"`
	Machine  string        `json:"machine"`
	Metrics  []Metric      `json:"metrics"`
	Rows     []Row         `json:"rows"`
	Programs []ProgramCost `json:"programs,omitempty"`
	// TimerFloorNs is what timing one BPF_PROG_RUN costs by itself: the
	// mean for a program that only returns.
	TimerFloorNs float64          `json:"timer_floor_ns,omitempty"`
	RouteMap     []RouteMapFigure `json:"route_map,omitempty"`
	Goals        []Goal           `json:"goals,omitempty"`
	Notes        []string         `json:"notes,omitempty"`
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

// value returns a figure and whether it was measured.
func (r *Results) value(hops int, variant, key string) (float64, bool) {
	row := r.row(hops, variant)
	if row == nil {
		return 0, false
	}
	v, ok := row.Values[key]
	return v, ok
}

// ComputeRatios fills every row's Ratios from the reference row of its
// chain. A figure whose reference is missing or zero has no ratio.
func (r *Results) ComputeRatios() {
	for i := range r.Rows {
		row := &r.Rows[i]
		row.Ratios = map[string]float64{}
		for k, v := range row.Values {
			if ref, ok := r.value(row.Hops, Reference, k); ok && ref != 0 {
				row.Ratios[k] = v / ref
			}
		}
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
// and all of them.
var (
	autoHookVariants = []string{"fou-tc", "gre-tc"}
	bpfVariants      = []string{"fou-tc", "fou-xdp", "gre-tc", "gre-xdp"}
	openvpnVariants  = []string{"openvpn-udp", "openvpn-tcp"}
)

// ratioGoal passes when every variant in vs has ratio ≥ min for key on the
// chain of hops.
func (r *Results) ratioGoal(name string, hops int, key string, vs []string, min float64) Goal {
	g := Goal{Name: name, Pass: true}
	var parts []string
	for _, v := range vs {
		row := r.row(hops, v)
		x, ok := 0.0, false
		if row != nil {
			x, ok = row.Ratios[key]
		}
		if !ok {
			g.Pass = false
			parts = append(parts, v+" not measured")
			continue
		}
		if x < min {
			g.Pass = false
			parts = append(parts, fmt.Sprintf("%s %.2f× (short by %.0f%%)", v, x, 100*(min-x)/min))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.2f×", v, x))
		}
	}
	g.Detail = strings.Join(parts, ", ")
	return g
}

// best returns the largest measured figure among variants, and its name.
func (r *Results) best(hops int, key string, vs []string) (float64, string) {
	max, name := math.Inf(-1), ""
	for _, v := range vs {
		if x, ok := r.value(hops, v, key); ok && x > max {
			max, name = x, v
		}
	}
	return max, name
}

// MaxRTTPerHop is the goal's bound on the RTT an overlay hop adds (µs).
const MaxRTTPerHop = 10.0

// EvaluateGoals judges the goals from the rows (after
// ComputeRatios). shortHops and longHops are the 1-hop and 3-hop chains.
func (r *Results) EvaluateGoals(shortHops, longHops int) {
	r.Goals = []Goal{
		r.ratioGoal(fmt.Sprintf("%d hop: TCP 1 stream ≥ 0.9 × reference (auto hook: tcx on veth)", shortHops), shortHops, TCP1, autoHookVariants, 0.9),
		r.ratioGoal(fmt.Sprintf("%d hops: TCP 1 stream ≥ 1.0 × reference (auto hook: tcx on veth)", longHops), longHops, TCP1, autoHookVariants, 1.0),
	}
	small := Goal{Name: fmt.Sprintf("%d hops: small-packet transit rate > kernel forwarding with at least one hook, per encapsulation", longHops), Pass: true}
	var parts []string
	for _, enc := range []string{"fou", "gre"} {
		x, v := r.best(longHops, UDPRate, []string{enc + "-tc", enc + "-xdp"})
		ref, ok := r.value(longHops, Reference, UDPRate)
		if v == "" || !ok || ref == 0 {
			small.Pass = false
			parts = append(parts, enc+" not measured")
			continue
		}
		if x <= ref {
			small.Pass = false
		}
		parts = append(parts, fmt.Sprintf("%s best %s %.2f×", enc, v, x/ref))
	}
	small.Detail = strings.Join(parts, ", ")

	vpn := Goal{Name: fmt.Sprintf("%d hops: re6st-bpf TCP ≥ 20 × OpenVPN", longHops)}
	ov, ovName := r.best(longHops, TCP1, openvpnVariants)
	worst, worstName := math.Inf(1), ""
	for _, v := range autoHookVariants {
		if x, ok := r.value(longHops, v, TCP1); ok && x < worst {
			worst, worstName = x, v
		}
	}
	if ovName == "" || worstName == "" || ov <= 0 {
		vpn.Detail = "not measured"
	} else {
		vpn.Pass = worst >= 20*ov
		vpn.Detail = fmt.Sprintf("slowest re6st-bpf (%s, %.2f Gbit/s) = %.0f × fastest OpenVPN (%s, %.3f Gbit/s)", worstName, worst, worst/ov, ovName, ov)
	}

	rtt := Goal{Name: fmt.Sprintf("added RTT per overlay hop (idle p50) ≤ %.0f µs", MaxRTTPerHop), Pass: true}
	parts = nil
	for _, hops := range []int{shortHops, longHops} {
		ref, ok := r.value(hops, Reference, RTTIdle50)
		for _, v := range bpfVariants {
			x, ok2 := r.value(hops, v, RTTIdle50)
			if !ok || !ok2 {
				rtt.Pass = false
				parts = append(parts, fmt.Sprintf("%s/%dh not measured", v, hops))
				continue
			}
			add := (x - ref) / float64(hops)
			if add > MaxRTTPerHop {
				rtt.Pass = false
			}
			parts = append(parts, fmt.Sprintf("%s/%dh %+.1f µs", v, hops, add))
		}
	}
	rtt.Detail = strings.Join(parts, ", ")
	r.Goals = append(r.Goals, small, vpn, rtt)
}
