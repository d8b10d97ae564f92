package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sample is a run with the reference and a few variants on two chains.
func sample() *Results {
	r := &Results{Date: "2026-01-01 00:00 UTC", Machine: "test machine", Metrics: Metrics, Rows: []Row{
		{Hops: 1, Variant: Reference, Values: map[string]float64{TCP1: 10, RTTIdle50: 10, UDPRate: 100, UDPLoss: 0}},
		{Hops: 1, Variant: "fou-tc", Values: map[string]float64{TCP1: 9.5, RTTIdle50: 14, UDPRate: 120, UDPLoss: 1}},
		{Hops: 1, Variant: "gre-tc", Values: map[string]float64{TCP1: 8, RTTIdle50: 12}},
		{Hops: 3, Variant: Reference, Values: map[string]float64{TCP1: 8, RTTIdle50: 20, UDPRate: 100}},
		{Hops: 3, Variant: "fou-tc", Values: map[string]float64{TCP1: 8.8, RTTIdle50: 29, UDPRate: 90}},
		{Hops: 3, Variant: "fou-xdp", Values: map[string]float64{UDPRate: 150}},
		{Hops: 3, Variant: "gre-tc", Values: map[string]float64{TCP1: 7.6, RTTIdle50: 26, UDPRate: 90}},
		{Hops: 3, Variant: "openvpn-udp", Values: map[string]float64{TCP1: 0.2}},
		{Hops: 3, Variant: "openvpn-tcp", Values: map[string]float64{TCP1: 0.3}, Error: "RTT under load: boom"},
	}}
	r.ComputeRatios()
	return r
}

func TestComputeRatios(t *testing.T) {
	r := sample()
	require.InDelta(t, 0.95, r.row(1, "fou-tc").Ratios[TCP1], 1e-9)
	require.InDelta(t, 1.4, r.row(1, "fou-tc").Ratios[RTTIdle50], 1e-9)
	require.InDelta(t, 1.1, r.row(3, "fou-tc").Ratios[TCP1], 1e-9, "ratio to the reference of the same chain")
	require.Equal(t, 1.0, r.row(3, Reference).Ratios[TCP1])
	_, ok := r.row(1, "fou-tc").Ratios[UDPLoss]
	require.False(t, ok, "no ratio to a zero reference")
	_, ok = r.row(3, "fou-tc").Ratios[CPUPerB]
	require.False(t, ok, "no ratio without a figure")
	require.Equal(t, []int{1, 3}, r.Hops())
}

func TestEvaluateGoals(t *testing.T) {
	r := sample()
	r.EvaluateGoals(1, 3)
	require.Len(t, r.Goals, 5)
	one, three, small, vpn, rtt := r.Goals[0], r.Goals[1], r.Goals[2], r.Goals[3], r.Goals[4]

	require.False(t, one.Pass, one.Detail) // gre-tc 0.80 < 0.9
	require.Equal(t, "fou-tc 0.95×, gre-tc 0.80× (short by 11%)", one.Detail)
	require.False(t, three.Pass)
	require.Contains(t, three.Detail, "gre-tc 0.95× (short by 5%)")

	require.False(t, small.Pass, "gre has no rate above the reference")
	require.Equal(t, "fou best fou-xdp 1.50×, gre best gre-tc 0.90×", small.Detail)

	require.True(t, vpn.Pass, vpn.Detail) // 7.6 ≥ 20 × 0.3
	require.Contains(t, vpn.Detail, "25 × fastest OpenVPN (openvpn-tcp")

	require.False(t, rtt.Pass)
	require.Contains(t, rtt.Detail, "fou-tc/1h +4.0 µs")
	require.Contains(t, rtt.Detail, "fou-tc/3h +3.0 µs")
	require.Contains(t, rtt.Detail, "fou-xdp/1h not measured")
}

func TestWriteMarkdown(t *testing.T) {
	r := sample()
	r.EvaluateGoals(1, 3)
	r.Programs = []ProgramCost{{Variant: "fou-tc", Case: "transit", Program: "underlay_tc", NsPerPacket: 141, FastPath: 1, Runs: 100000, LiveNs: 52}}
	r.TimerFloorNs = 100
	r.RouteMap = []RouteMapFigure{{Routes: 100000, InsertsPerSec: 250000, MemoryBytes: 4800000}}
	r.Notes = []string{"a note"}
	var b bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&b))
	md := b.String()
	lines := strings.Split(md, "\n")
	header := "| variant | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | small UDP rx (kpkt/s) | UDP loss (%) | RTT idle p50 (µs) | RTT idle p99 (µs) | RTT load p50 (µs) | RTT load p99 (µs) | CPU per byte (ns/B) |"
	require.Contains(t, lines, header)
	require.Contains(t, lines, "| plain | 10.0 | – | 100 | 0.000 | 10.0 | – | – | – | – |", "the reference has no ratios")
	require.Contains(t, lines, "| fou-tc | 9.50 (0.95×) | – | 120 (1.20×) | 1.00 | 14.0 (1.40×) | – | – | – | – |")
	require.Contains(t, lines, "| fou-tc | 8.80 (1.10×) | – | 90.0 (0.90×) | – | 29.0 (1.45×) | – | – | – | – |")
	require.Contains(t, lines, "openvpn-tcp: RTT under load: boom")
	require.Contains(t, lines, "| fou-tc | transit | underlay_tc | 141 | 41.0 | 100% | 52.0 |")
	require.Contains(t, lines, "| 100000 | 250000 | 4.6 | 48 |")
	require.Contains(t, lines, "- **MISS** 1 hop: TCP 1 stream ≥ 0.9 × reference (auto hook: tcx on veth): fou-tc 0.95×, gre-tc 0.80× (short by 11%)")
	require.Contains(t, lines, "- a note")
}

func TestWriteJSON(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	require.NoError(t, r.WriteJSON(&b))
	var back Results
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, r.Rows, back.Rows)
	require.Equal(t, Metrics, back.Metrics)
}

func TestWritePNG(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample().WritePNG(&b))
	require.True(t, bytes.HasPrefix(b.Bytes(), []byte("\x89PNG\r\n")))
}
