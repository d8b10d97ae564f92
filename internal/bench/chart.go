package bench

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chartMetrics are the ratios the chart shows.
var chartMetrics = []string{TCP1, TCP4, UDPRate}

// WritePNG draws, for every variant but the reference on every chain, its
// median throughput and small-packet ratios to the reference, with the
// reference's 1.0 as a line (the ranges are in the tables).
func (r *Results) WritePNG(w io.Writer) error {
	p := plot.New()
	p.Title.Text = "re6st-bpf benchmark: ratio to plain kernel forwarding (1.0)"
	p.Y.Label.Text = "ratio to reference"
	var labels []string
	var rows []*Row
	for i := range r.Rows {
		if r.Rows[i].Variant != Reference {
			rows = append(rows, &r.Rows[i])
			labels = append(labels, fmt.Sprintf("%dh %s", r.Rows[i].Hops, r.Rows[i].Variant))
		}
	}
	width := vg.Points(8)
	top := 1.0
	for j, key := range chartMetrics {
		vals := make(plotter.Values, len(rows))
		for i, row := range rows {
			vals[i] = row.Ratios[key].Median // 0 when not measured
			top = max(top, vals[i])
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(j)
		bars.Offset = width * vg.Length(j-len(chartMetrics)/2)
		p.Add(bars)
		p.Legend.Add(metricName(key), bars)
	}
	ref := plotter.NewFunction(func(float64) float64 { return 1 })
	ref.Color = color.Gray{Y: 96}
	ref.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(ref)
	p.Legend.Top = true
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = -0.9
	p.Y.Min, p.Y.Max = 0, 1.3*top // room for the legend
	wt, err := p.WriterTo(12*vg.Inch, 6*vg.Inch, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}
