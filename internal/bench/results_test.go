package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rounds turns per-figure series into per-round figures; none leaves a
// figure out of its round.
func rounds(n int, series map[string][]float64) []map[string]float64 {
	out := make([]map[string]float64, n)
	for i := range out {
		out[i] = map[string]float64{}
		for k, xs := range series {
			if finite(xs[i]) {
				out[i][k] = xs[i]
			}
		}
	}
	return out
}

// none marks a figure a round did not measure.
var none = math.NaN()

// sample is a run of three rounds with the reference, a few variants and a
// mixed chain on two chains.
func sample() *Results {
	const n = 3
	row := func(hops int, v string, series map[string][]float64) Row {
		return Row{Hops: hops, Variant: v, Rounds: rounds(n, series)}
	}
	r := &Results{Date: "2026-01-01 00:00 UTC", Machine: "test machine", Rounds: n, Metrics: Metrics, Rows: []Row{
		row(1, Reference, map[string][]float64{TCP1: {10, 12, 8}, RTTIdle50: {10, 10, 10}, UDPRate: {100, 100, 100}, UDPLoss: {0, 0, 0}}),
		// The same 0.95× in every round, however the machine moved.
		row(1, "fou-tc", map[string][]float64{TCP1: {9.5, 11.4, 7.6}, RTTIdle50: {14, 14, 14}, UDPRate: {120, 110, 130}, UDPLoss: {1, 2, 3}}),
		row(1, "gre-tc", map[string][]float64{TCP1: {8, 12, 8}, RTTIdle50: {12, 12, 35}}),
		row(1, "wireguard-tc", map[string][]float64{TCP1: {2, 2.4, 1.6}}),
		row(1, "openvpn-udp-aes", map[string][]float64{TCP1: {0.4, 0.5, 0.4}}),
		row(1, "openvpn-tcp-aes", map[string][]float64{TCP1: {0.5, 0.4, none}}),
		row(3, "wireguard-tc", map[string][]float64{TCP1: {1, 1, 1}}),
		row(3, "openvpn-tcp-aes", map[string][]float64{TCP1: {0.4, 0.3, 0.5}}),
		row(3, Reference, map[string][]float64{TCP1: {8, 8, 10}, TCP4: {20, none, 20}, RTTIdle50: {20, 20, 20}, UDPRate: {100, 100, 100}, CeilRate: {200, 200, 200}}),
		row(3, "fou-tc", map[string][]float64{TCP1: {8.8, 7.2, 10}, TCP4: {10, 10, 30}, RTTIdle50: {29, 29, 29}, UDPRate: {90, 90, 90}, CeilRate: {180, 180, 180}}),
		row(3, "fou-xdp", map[string][]float64{UDPRate: {150, 90, 120}, CeilRate: {300, 300, 300}}),
		row(3, "gre-tc", map[string][]float64{TCP1: {7.6, 7.6, 9}, RTTIdle50: {60, 60, 60}, UDPRate: {90, 90, 90}, CeilRate: {150, 150, 150}}),
		row(3, "gre-xdp", map[string][]float64{UDPRate: {110, 120, 130}, CeilRate: {250, 260, 270}}),
		row(3, "fou/gre+key/gre-tc", map[string][]float64{TCP1: {4.4, 7.2, 5}, UDPRate: {0, 0, 0}, UDPLoss: {100, 100, 100}, CeilRate: {90, 180, 90}}),
		row(3, "openvpn-udp", map[string][]float64{TCP1: {0.2, 0.4, 0.3}}),
		row(3, "openvpn-tcp", map[string][]float64{TCP1: {0.3, 0.1, none}}),
	}}
	r.row(3, "openvpn-tcp").Errors = []string{"round 3: TCP 1 stream: boom"}
	r.Summarize()
	return r
}

func TestSampleHelpers(t *testing.T) {
	require.Equal(t, []map[string]float64{{"a": 1}, {}}, rounds(2, map[string][]float64{"a": {1, none}}))
}

func TestSummarizeRows(t *testing.T) {
	r := sample()
	fou := r.row(1, "fou-tc")
	require.Equal(t, Stat{Median: 9.5, Min: 7.6, Max: 11.4, N: 3}, fou.Values[TCP1])
	ratios := fou.Ratios[TCP1]
	require.Equal(t, 3, ratios.N)
	for _, x := range []float64{ratios.Median, ratios.Min, ratios.Max} {
		require.InDelta(t, 0.95, x, 1e-9, "each round divided by the reference's of the same round")
	}
	for i, want := range []float64{0.95, 0.95, 0.95} {
		require.InDelta(t, want, fou.RatioRounds[i][TCP1], 1e-9)
	}

	gre := r.row(1, "gre-tc").Ratios[TCP1]
	require.InDelta(t, 1.0, gre.Median, 1e-9)
	require.InDelta(t, 0.8, gre.Min, 1e-9)
	require.InDelta(t, 1.0, gre.Max, 1e-9)

	require.Equal(t, Stat{Median: 10, Min: 8, Max: 12, N: 3}, r.row(1, Reference).Values[TCP1], "the reference's spread")
	require.InDelta(t, 1.0, r.row(1, Reference).Ratios[TCP1].Median, 1e-9)

	_, ok := fou.Ratios[UDPLoss]
	require.False(t, ok, "no ratio to a zero reference")
	_, ok = fou.Values[CPUPerB]
	require.False(t, ok, "no figure, no summary")

	tcp4 := r.row(3, "fou-tc")
	require.Equal(t, 3, tcp4.Values[TCP4].N)
	require.Equal(t, 2, tcp4.Ratios[TCP4].N, "a round where the reference has no figure has no ratio")
	require.InDelta(t, 1.0, tcp4.Ratios[TCP4].Median, 1e-9) // 0.5 and 1.5
	_, ok = tcp4.RatioRounds[1][TCP4]
	require.False(t, ok)
	require.Equal(t, []int{1, 3}, r.Hops())
}

func TestEvaluateGoals(t *testing.T) {
	r := sample()
	r.EvaluateGoals(1, 3)
	require.Len(t, r.Goals, 8)
	one, three, small, ceiling, vpn, enc1, enc3, rtt := r.Goals[0], r.Goals[1], r.Goals[2], r.Goals[3], r.Goals[4], r.Goals[5], r.Goals[6], r.Goals[7]

	require.Equal(t, Undecided, one.Verdict, "fou-tc passes, gre-tc straddles 0.9")
	require.Equal(t, "fou-tc 0.95× [0.95×–0.95×] PASS, gre-tc 1.00× [0.80×–1.00×] UNDECIDED", one.Detail)

	require.Equal(t, Miss, three.Verdict, "gre-tc is below 1.0 in every round")
	require.Equal(t, "fou-tc 1.00× [0.90×–1.10×] UNDECIDED, gre-tc 0.95× [0.90×–0.95×] MISS", three.Detail)

	// fou: tcx misses, XDP straddles; gre: XDP passes.
	require.Equal(t, Undecided, small.Verdict)
	require.Contains(t, small.Detail, "fou-tc 0.90× [0.90×–0.90×] MISS, fou-xdp 1.20× [0.90×–1.50×] UNDECIDED")
	require.Contains(t, small.Detail, "gre-xdp 1.20× [1.10×–1.30×] PASS")

	require.Equal(t, Pass, ceiling.Verdict, "one hook above the reference in every round, per encapsulation")
	require.Contains(t, ceiling.Detail, "fou-xdp 1.50× [1.50×–1.50×] PASS")
	require.Contains(t, ceiling.Detail, "gre-xdp 1.30× [1.25×–1.35×] PASS")

	// Per round: 7.6/0.3, 7.2/0.4, 9/0.3.
	require.Equal(t, Undecided, vpn.Verdict)
	require.Equal(t, "slowest auto-hook re6st-bpf over fastest OpenVPN 25× [18×–30×] UNDECIDED", vpn.Detail)

	// Per round, over the faster OpenVPN with AES: 2/0.5, 2.4/0.5, 1.6/0.4.
	require.Equal(t, Pass, enc1.Verdict)
	require.Equal(t, "wireguard-tc over fastest OpenVPN with AES 4.00× [4.00×–4.80×] PASS", enc1.Detail)
	// 1/0.4, 1/0.3, 1/0.5: 2.5× to 3.3×.
	require.Equal(t, Undecided, enc3.Verdict)
	require.Contains(t, enc3.Name, "3 hop(s): encrypted TCP 1 stream (WireGuard) ≥ 3 × OpenVPN with AES")

	require.Equal(t, Miss, rtt.Verdict, "gre-tc adds 13 µs per hop over 3 hops in every round")
	require.Contains(t, rtt.Detail, "fou-tc/1h +4.0 µs [+4.0 µs–+4.0 µs] PASS")
	require.Contains(t, rtt.Detail, "gre-tc/1h +2.0 µs [+2.0 µs–+25.0 µs] UNDECIDED")
	require.Contains(t, rtt.Detail, "gre-tc/3h +13.3 µs [+13.3 µs–+13.3 µs] MISS")
	require.Contains(t, rtt.Detail, "fou-xdp/1h not measured")
}

func TestVPNFactorsNeedEveryAutoHookVariant(t *testing.T) {
	r := sample()
	delete(r.row(3, "gre-tc").Rounds[2], TCP1)
	f := r.vpnFactors(3)
	require.Len(t, f, 2, "a round without gre-tc's figure has no slowest variant")
	require.InDelta(t, 7.6/0.3, f[0], 1e-9)
	require.InDelta(t, 7.2/0.4, f[1], 1e-9)
}

func TestCompare(t *testing.T) {
	c := sample().Compare(3, "fou/gre+key/gre-tc", "fou-tc")
	require.Equal(t, "fou-tc", c.Base)
	tcp := c.Ratios[TCP1] // 0.5, 1.0, 0.5
	require.InDelta(t, 0.5, tcp.Median, 1e-9)
	require.InDelta(t, 0.5, tcp.Min, 1e-9)
	require.InDelta(t, 1.0, tcp.Max, 1e-9)
	require.InDelta(t, 0.0, c.Ratios[UDPRate].Max, 1e-9, "a mixed chain that loses everything shows as 0×")
	_, ok := c.Ratios[TCP4]
	require.False(t, ok)
}

func TestWriteMarkdown(t *testing.T) {
	r := sample()
	r.EvaluateGoals(1, 3)
	r.Comparisons = []Comparison{r.Compare(3, "fou/gre+key/gre-tc", "fou-tc")}
	r.Programs = []ProgramCost{{Variant: "fou-tc", Case: "transit", Program: "underlay_tc", NsPerPacket: 141, FastPath: 1, Runs: 100000, LiveNs: 52}}
	r.TimerFloorNs = 100
	r.RouteMap = []RouteMapFigure{{Routes: 100000, InsertsPerSec: 250000, MemoryBytes: 4800000}}
	r.Notes = []string{"a note"}
	var b bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&b))
	md := b.String()
	lines := strings.Split(md, "\n")
	header := "| variant | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | small UDP rx (kpkt/s) | UDP loss (%) | transit ceiling (kpkt/s) | ceiling loss (%) | RTT idle p50 (µs) | RTT idle p99 (µs) | RTT load p50 (µs) | RTT load p99 (µs) | CPU per byte (ns/B) |"
	require.Contains(t, lines, header)
	require.Contains(t, lines, "| plain | 10.0 (8.00–12.0) | – | 100 (100–100) | 0.000 (0.000–0.000) | – | – | 10.0 (10.0–10.0) | – | – | – | – |", "the reference: median and its spread")
	require.Contains(t, lines, "| fou-tc | 9.50 0.95× (0.95–0.95) | – | 120 1.20× (1.10–1.30) | 2.00 (1.00–3.00) | – | – | 14.0 1.40× (1.40–1.40) | – | – | – | – |", "a variant: median, median ratio and its range; loss has no ratio to a zero reference")
	require.Contains(t, lines, "openvpn-tcp errors:")
	require.Contains(t, lines, "- round 3: TCP 1 stream: boom")
	require.Contains(t, lines, "| 3 | fou/gre+key/gre-tc | fou-tc | 0.50× (0.50–1.00) | – | 0.00× (0.00–0.00) | 0.50× (0.50–1.00) | – |")
	require.Contains(t, lines, "| fou-tc | transit | underlay_tc | 141 | 41.0 | 100% | 52.0 |")
	require.Contains(t, lines, "| 100000 | 250000 | 4.6 | 48 |")
	require.Contains(t, lines, "- **MISS** 3 hops: TCP 1 stream ≥ 1.0 × reference (auto hook: tcx on veth): fou-tc 1.00× [0.90×–1.10×] UNDECIDED, gre-tc 0.95× [0.90×–0.95×] MISS")
	require.Contains(t, md, "**UNDECIDED** 1 hop")
	require.Contains(t, lines, "- a note")
}

func TestSingleRoundHasNoRange(t *testing.T) {
	r := &Results{Rounds: 1, Rows: []Row{
		{Hops: 1, Variant: Reference, Rounds: []map[string]float64{{TCP1: 10}}},
		{Hops: 1, Variant: "fou-tc", Rounds: []map[string]float64{{TCP1: 9}}},
	}}
	r.Summarize()
	require.Equal(t, "10.0", cell(&r.Rows[0], TCP1))
	require.Equal(t, "9.00 0.90×", cell(&r.Rows[1], TCP1))
}

func TestWriteJSON(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	require.NoError(t, r.WriteJSON(&b))
	var back Results
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, r.Rows, back.Rows)
	require.Equal(t, Metrics, back.Metrics)
	var raw struct {
		Rows []struct {
			Variant string               `json:"variant"`
			Rounds  []map[string]float64 `json:"rounds"`
		} `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
	require.Equal(t, "fou-tc", raw.Rows[1].Variant)
	require.Equal(t, []float64{9.5, 11.4, 7.6}, series(raw.Rows[1].Rounds, TCP1), "the JSON carries every round's figures")
}

func TestWritePNG(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample().WritePNG(&b))
	require.True(t, bytes.HasPrefix(b.Bytes(), []byte("\x89PNG\r\n")))
}
