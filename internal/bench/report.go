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

// cell is "value (ratio×)", "value" without a ratio, "–" when not measured.
func cell(row *Row, key string) string {
	v, ok := row.Values[key]
	if !ok {
		return "–"
	}
	s := formatValue(v)
	if r, ok := row.Ratios[key]; ok && row.Variant != Reference {
		s += fmt.Sprintf(" (%.2f×)", r)
	}
	return s
}

// WriteMarkdown writes the results as Markdown tables.
func (r *Results) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# re6st-bpf benchmark\n\n%s; %s", r.Date, r.Machine)
	if r.Quick {
		b.WriteString("; quick run (BENCH_QUICK)")
	}
	b.WriteString(".\n\nEach figure with its ratio to the reference (plain IPv6, kernel forwarding, same chain) in brackets.\n")
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
			if row.Hops == hops && row.Error != "" {
				fmt.Fprintf(&b, "\n%s: %s\n", row.Variant, row.Error)
			}
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
		fmt.Fprintf(&b, "\n%d single runs per case on the 3-hop chain's live programs and maps, mean of the kernel's timing of each; timer floor (an XDP program that only returns, timed the same way): %s ns. Live: the kernel's run-time statistics (BPF_ENABLE_STATS) of the attached program during the small-UDP test, warm caches, no timer floor.\n",
			r.Programs[0].Runs, formatValue(r.TimerFloorNs))
	}
	if len(r.RouteMap) > 0 {
		b.WriteString("\n## Route map (Datapath.AddRoute, /64 routes)\n\n| routes | inserts/s | memory (MiB) | bytes/route |\n|---:|---:|---:|---:|\n")
		for _, f := range r.RouteMap {
			fmt.Fprintf(&b, "| %d | %.0f | %.1f | %.0f |\n", f.Routes, f.InsertsPerSec, float64(f.MemoryBytes)/(1<<20), float64(f.MemoryBytes)/float64(f.Routes))
		}
	}
	if len(r.Goals) > 0 {
		b.WriteString("\n## Goals\n\n")
		for _, g := range r.Goals {
			verdict := "PASS"
			if !g.Pass {
				verdict = "MISS"
			}
			fmt.Fprintf(&b, "- **%s** %s: %s\n", verdict, g.Name, g.Detail)
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
