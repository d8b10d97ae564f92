package bench

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartMetrics are the ratios the chart shows.
var chartMetrics = []string{TCP1, TCP4, UDPRate, CeilRate}

// whiskers draws, across bar i of a bar chart shifted by offset, a line
// from lo[i] to hi[i]: the min–max of the rounds.
type whiskers struct {
	lo, hi []float64
	offset vg.Length
}

// Plot implements plot.Plotter.
func (w whiskers) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	style := draw.LineStyle{Color: color.Black, Width: vg.Points(1)}
	for i := range w.lo {
		if w.hi[i] > w.lo[i] { // a range: more than one round, not all equal
			x := trX(float64(i)) + w.offset
			c.StrokeLine2(style, x, trY(w.lo[i]), x, trY(w.hi[i]))
		}
	}
}

// WritePNG draws, for every variant but the reference on every chain, its
// median throughput, small-packet and transit-ceiling ratios to the
// reference as bars, the min–max of the rounds as a line across each bar,
// and the reference's 1.0 as a dashed line.
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
		w := whiskers{lo: make([]float64, len(rows)), hi: make([]float64, len(rows)), offset: width * vg.Length(float64(j)-float64(len(chartMetrics)-1)/2)}
		for i, row := range rows {
			s := row.Ratios[key] // zero when not measured
			vals[i], w.lo[i], w.hi[i] = s.Median, s.Min, s.Max
			top = max(top, s.Max)
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(j)
		bars.Offset = w.offset
		p.Add(bars, w)
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
