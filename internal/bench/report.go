package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// formatValue prints a figure with about three significant digits.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// span is " (min–max)", or nothing for a single round.
func span(s Stat, format func(float64) string) string {
	if s.N < 2 {
		return ""
	}
	return fmt.Sprintf(" (%s–%s)", format(s.Min), format(s.Max))
}

func ratioText(x float64) string { return fmt.Sprintf("%.2f", x) }

// cell is the median of a figure over the rounds, then for a variant its
// median ratio to the reference with the ratios' min–max, "16.0 0.85×
// (0.80–0.90)"; for the reference and a figure without a ratio, the
// figure's own min–max, "18.8 (12.2–19.0)"; "–" when never measured.
func cell(row *Row, key string) string {
	v, ok := row.Values[key]
	if !ok {
		return "–"
	}
	s := formatValue(v.Median)
	if r, ok := row.Ratios[key]; ok && row.Variant != Reference {
		return s + " " + ratioText(r.Median) + "×" + span(r, ratioText)
	}
	return s + span(v, formatValue)
}

// metricName is the name of the metric key.
func metricName(key string) string {
	for _, m := range Metrics {
		if m.Key == key {
			return m.Name
		}
	}
	return key
}

// WriteMarkdown writes the results as Markdown tables.
func (r *Results) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# re6st-bpf benchmark\n\n%s; %s", r.Date, r.Machine)
	if r.Quick {
		b.WriteString("; quick run (BENCH_QUICK)")
	}
	fmt.Fprintf(&b, "; %d round(s).\n\nEach cell: the median over the rounds; for a variant, then its median ratio to the reference (plain IPv6, kernel forwarding, same chain, same round) with the ratios' min–max in brackets; for the reference (and figures without a ratio), the figure's own min–max.\n", r.Rounds)
	for _, hops := range r.Hops() {
		fmt.Fprintf(&b, "\n## %d tunnel hop(s) (%d nodes)\n\n| variant |", hops, hops+1)
		for _, m := range Metrics {
			fmt.Fprintf(&b, " %s (%s) |", m.Name, m.Unit)
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(Metrics)) + "\n")
		for i := range r.Rows {
			row := &r.Rows[i]
			if row.Hops != hops {
				continue
			}
			fmt.Fprintf(&b, "| %s |", row.Variant)
			for _, m := range Metrics {
				fmt.Fprintf(&b, " %s |", cell(row, m.Key))
			}
			b.WriteString("\n")
		}
		for _, row := range r.Rows {
			if row.Hops == hops && len(row.Errors) > 0 {
				fmt.Fprintf(&b, "\n%s errors:\n", row.Variant)
				for _, e := range row.Errors {
					fmt.Fprintf(&b, "- %s\n", e)
				}
			}
		}
	}
	if len(r.Comparisons) > 0 {
		b.WriteString("\n## Mixed-shape chains against single-shape chains, IPv4 payload against IPv6\n\nMedian of the per-round ratios of the chain's figure to that of the chain it is compared with (a mixed chain: the single-shape chains of the same hook; an IPv4 chain: the IPv6 chain of the same shape and hook), min–max in brackets.\n\n| hops | chain | against |")
		for _, key := range comparedMetrics {
			fmt.Fprintf(&b, " %s |", metricName(key))
		}
		b.WriteString("\n|---:|---|---|" + strings.Repeat("---:|", len(comparedMetrics)) + "\n")
		for _, c := range r.Comparisons {
			fmt.Fprintf(&b, "| %d | %s | %s |", c.Hops, c.Variant, c.Base)
			for _, key := range comparedMetrics {
				x := "–"
				if s, ok := c.Ratios[key]; ok {
					x = ratioText(s.Median) + "×" + span(s, ratioText)
				}
				fmt.Fprintf(&b, " %s |", x)
			}
			b.WriteString("\n")
		}
	}
	if len(r.Programs) > 0 {
		b.WriteString("\n## BPF programs, BPF_PROG_RUN (ns per packet)\n\n| variant | case | program | prog.Run ns/run | minus timer floor | fast path | live ns/run (small UDP) |\n|---|---|---|---:|---:|---:|---:|\n")
		for _, p := range r.Programs {
			live := "–"
			if p.LiveNs > 0 {
				live = formatValue(p.LiveNs)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.0f%% | %s |\n", p.Variant, p.Case, p.Program,
				formatValue(p.NsPerPacket), formatValue(p.NsPerPacket-r.TimerFloorNs), 100*p.FastPath, live)
		}
		fmt.Fprintf(&b, "\n%d single runs per case on the 3-hop chain's live programs and maps, mean of the kernel's timing of each; timer floor (an XDP program that only returns, timed the same way): %s ns. Live: the kernel's run-time statistics (BPF_ENABLE_STATS) of the attached program during a small-UDP test of its own after the rounds, warm caches, no timer floor; none where no frame reached the program.\n",
			r.Programs[0].Runs, formatValue(r.TimerFloorNs))
	}
	if len(r.RouteMap) > 0 {
		b.WriteString("\n## Route map (Datapath.AddRoute, /64 routes)\n\n| routes | inserts/s | memory (MiB) | bytes/route |\n|---:|---:|---:|---:|\n")
		for _, f := range r.RouteMap {
			fmt.Fprintf(&b, "| %d | %.0f | %.1f | %.0f |\n", f.Routes, f.InsertsPerSec, float64(f.MemoryBytes)/(1<<20), float64(f.MemoryBytes)/float64(f.Routes))
		}
	}
	if r.Classes != nil {
		r.Classes.writeMarkdown(&b)
	}
	if r.Gateway != nil {
		r.Gateway.writeMarkdown(&b)
	}
	if len(r.Goals) > 0 {
		b.WriteString("\n## Goals\n\n")
		b.WriteString("Each contender: median [min–max] over the rounds, and its verdict. PASS or MISS only when every round is on the same side of the goal; UNDECIDED when the rounds straddle it.\n\n")
		for _, g := range r.Goals {
			fmt.Fprintf(&b, "- **%s** %s: %s\n", g.Verdict, g.Name, g.Detail)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the results as indented JSON. Figures not measured
// (NaN) are left out of the rows, since JSON has no NaN.
func (r *Results) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}
