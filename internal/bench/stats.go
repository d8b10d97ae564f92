package bench

import (
	"math"
	"slices"
)

// Stat summarises one figure over the rounds that measured it.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"` // rounds
}

// Summarize is the median (the mean of the two middle values for an even
// count), minimum and maximum of xs; ok is false for no values.
func Summarize(xs []float64) (s Stat, ok bool) {
	if len(xs) == 0 {
		return Stat{}, false
	}
	v := slices.Clone(xs)
	slices.Sort(v)
	n := len(v)
	s = Stat{Min: v[0], Max: v[n-1], N: n, Median: v[n/2]}
	if n%2 == 0 {
		s.Median = (v[n/2-1] + v[n/2]) / 2
	}
	return s, true
}

// Verdict judges a goal from the range of a figure over the rounds.
type Verdict string

const (
	Pass Verdict = "PASS"
	Miss Verdict = "MISS"
	// Undecided: the rounds fall on both sides of the goal (or none
	// measured it), so the machine's noise decides, not the code.
	Undecided Verdict = "UNDECIDED"
)

// Bound is a goal on a figure: at least, above or at most Goal.
type Bound struct {
	Op   Op
	Goal float64
}

// Op compares a figure with its goal.
type Op int

const (
	AtLeast Op = iota // ≥
	Above             // >
	AtMost            // ≤
)

// holds says whether x meets the bound.
func (b Bound) holds(x float64) bool {
	switch b.Op {
	case AtLeast:
		return x >= b.Goal
	case Above:
		return x > b.Goal
	default:
		return x <= b.Goal
	}
}

// Judge is PASS when every value meets the bound, MISS when none does, and
// UNDECIDED when the values fall on both sides of it or there are none.
// Only the range matters: the values are one figure's rounds.
func Judge(xs []float64, b Bound) Verdict {
	s, ok := Summarize(xs)
	switch {
	case !ok:
		return Undecided
	case b.holds(s.Min) && b.holds(s.Max):
		return Pass
	case !b.holds(s.Min) && !b.holds(s.Max):
		return Miss
	}
	return Undecided
}

// All combines verdicts that must each pass: MISS if one misses, else PASS
// if all pass, else UNDECIDED (also for none).
func All(vs ...Verdict) Verdict { return combine(vs, Miss, Pass) }

// Any combines verdicts of which one passing is enough: PASS if one
// passes, else MISS if all miss, else UNDECIDED (also for none).
func Any(vs ...Verdict) Verdict { return combine(vs, Pass, Miss) }

// combine is decisive if one of vs is, else unanimous if all of them are,
// else UNDECIDED.
func combine(vs []Verdict, decisive, unanimous Verdict) Verdict {
	if slices.Contains(vs, decisive) {
		return decisive
	}
	if len(vs) > 0 && !slices.ContainsFunc(vs, func(v Verdict) bool { return v != unanimous }) {
		return unanimous
	}
	return Undecided
}

// finite drops NaN and infinities.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
