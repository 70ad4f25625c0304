package measure

import (
	"fmt"
	"math"
	"slices"
)

// A Summary is the median and range of several runs.
type Summary struct {
	Median, Min, Max float64
	Runs             []float64 // in the order measured
}

// Summarize returns the median, minimum and maximum of xs (the mean of
// the two middle values for an even count). It returns the zero Summary
// for no runs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[n-1], Runs: slices.Clone(xs)}
}

// Format formats the summary as "median (min-max)" with prec decimals.
func (s Summary) Format(prec int) string {
	if len(s.Runs) == 1 {
		return fmt.Sprintf("%.*f", prec, s.Median)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

// Percentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method; NaN for no values.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}
