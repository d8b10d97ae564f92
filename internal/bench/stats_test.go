package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name string
		xs   []float64
		want Stat
	}{
		{"one value", []float64{3}, Stat{Median: 3, Min: 3, Max: 3, N: 1}},
		{"odd count, unsorted", []float64{5, 1, 4}, Stat{Median: 4, Min: 1, Max: 5, N: 3}},
		{"even count: mean of the middle two", []float64{4, 1, 3, 10}, Stat{Median: 3.5, Min: 1, Max: 10, N: 4}},
		{"repeated values", []float64{2, 2, 2, 9, 2}, Stat{Median: 2, Min: 2, Max: 9, N: 5}},
		{"outlier does not move the median", []float64{10, 11, 12, 13, 1000}, Stat{Median: 12, Min: 10, Max: 1000, N: 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append([]float64(nil), c.xs...)
			got, ok := Summarize(c.xs)
			require.True(t, ok)
			require.Equal(t, c.want, got)
			require.Equal(t, in, c.xs, "the input is left in its order")
		})
	}
	_, ok := Summarize(nil)
	require.False(t, ok, "no values, no summary")
}

func TestJudge(t *testing.T) {
	atLeast := Bound{AtLeast, 0.9}
	above := Bound{Above, 1}
	atMost := Bound{AtMost, 10}
	for _, c := range []struct {
		name string
		xs   []float64
		b    Bound
		want Verdict
	}{
		{"all above a ≥ goal", []float64{0.91, 0.95, 1.2}, atLeast, Pass},
		{"the lowest on a ≥ goal passes", []float64{0.9, 0.95}, atLeast, Pass},
		{"all below a ≥ goal", []float64{0.5, 0.85, 0.89}, atLeast, Miss},
		{"straddling a ≥ goal", []float64{0.85, 0.92, 0.95}, atLeast, Undecided},
		// The example: 0.85× in one run, 1.21× in another.
		{"the two runs of issue 10", []float64{0.85, 1.21}, Bound{AtLeast, 1}, Undecided},
		{"a median above the goal does not decide", []float64{0.8, 1.1, 1.2, 1.3, 1.4}, Bound{AtLeast, 1}, Undecided},
		{"equal to a > goal misses", []float64{1, 1}, above, Miss},
		{"equal to a > goal in one round", []float64{1, 1.2}, above, Undecided},
		{"all above a > goal", []float64{1.01, 1.3}, above, Pass},
		{"all within a ≤ goal", []float64{2, 10}, atMost, Pass},
		{"all beyond a ≤ goal", []float64{10.5, 40}, atMost, Miss},
		{"straddling a ≤ goal", []float64{9, 11}, atMost, Undecided},
		{"one round decides", []float64{0.7}, atLeast, Miss},
		{"nothing measured", nil, atLeast, Undecided},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, Judge(c.xs, c.b))
		})
	}
}

func TestAllAny(t *testing.T) {
	for _, c := range []struct {
		vs       []Verdict
		all, any Verdict
	}{
		{[]Verdict{Pass, Pass}, Pass, Pass},
		{[]Verdict{Miss, Miss}, Miss, Miss},
		{[]Verdict{Pass, Miss}, Miss, Pass},
		{[]Verdict{Pass, Undecided}, Undecided, Pass},
		{[]Verdict{Miss, Undecided}, Miss, Undecided},
		{[]Verdict{Undecided, Undecided}, Undecided, Undecided},
		{[]Verdict{Pass, Undecided, Miss}, Miss, Pass},
		{nil, Undecided, Undecided},
	} {
		require.Equal(t, c.all, All(c.vs...), "All%v", c.vs)
		require.Equal(t, c.any, Any(c.vs...), "Any%v", c.vs)
	}
}
