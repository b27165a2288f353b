package result

import (
	"encoding/json"
	"math"
	"sort"
)

// Stat summarises one figure over the repeats of a scenario: how many finite values there were,
// their median, extremes and mean, and the values themselves (sorted) so that gates and
// `tcpload compare` can compute confidence intervals and tests on the samples. The zero Stat
// (N == 0) means "not measured". Values is empty in summaries written before it existed and in
// Stats built from aggregates; then only the median can decide.
type Stat struct {
	N      int       `json:"n"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Mean   float64   `json:"mean"`
	Values []float64 `json:"values,omitempty"`
}

// Summarize returns the Stat of xs. NaN and infinite values are left out (N counts only the
// finite ones), so a failed division upstream never reaches a report; an empty or all-NaN
// list gives the zero Stat.
func Summarize(xs []float64) Stat {
	vals := make([]float64, 0, len(xs))
	for _, x := range xs {
		if finite(x) {
			vals = append(vals, x)
		}
	}
	if len(vals) == 0 {
		return Stat{}
	}
	sort.Float64s(vals)
	n := len(vals)
	var med float64
	if n%2 == 1 {
		med = vals[n/2]
	} else {
		med = vals[n/2-1]/2 + vals[n/2]/2
	}
	// Running mean: no overflow on large finite values.
	var mean float64
	for i, x := range vals {
		mean += (x - mean) / float64(i+1)
	}
	return Stat{N: n, Median: med, Min: vals[0], Max: vals[n-1], Mean: mean, Values: vals}
}

// String renders s as "median (min–max, n=N)", or "not measured" when N is 0.
func (s Stat) String() string {
	if s.N == 0 {
		return NotMeasured
	}
	return describe(s)
}

// NotMeasured is how a figure that was not measured is shown (never as 0).
const NotMeasured = "not measured"

// samples returns the values of s for statistics: Values when present, else nothing.
func (s Stat) samples() []float64 {
	if len(s.Values) != s.N {
		return nil
	}
	return append([]float64(nil), s.Values...)
}

// Valid reports whether s holds at least one measurement.
func (s Stat) Valid() bool { return s.N > 0 }

// MarshalJSON writes s with any non-finite field (which Summarize never produces, but a
// hand-built Stat may hold) written as 0, so a Summary always encodes.
func (s Stat) MarshalJSON() ([]byte, error) {
	type plain Stat
	p := plain{N: s.N, Median: clean(s.Median), Min: clean(s.Min), Max: clean(s.Max), Mean: clean(s.Mean)}
	for _, v := range s.Values {
		if finite(v) {
			p.Values = append(p.Values, v)
		}
	}
	return json.Marshal(p)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// clean maps NaN and ±Inf to 0.
func clean(x float64) float64 {
	if finite(x) {
		return x
	}
	return 0
}

// ratio returns a/b, or NaN when it is undefined (b <= 0 or either is not finite); NaN is
// dropped later by Summarize.
func ratio(a, b float64) float64 {
	if !finite(a) || !finite(b) || b <= 0 {
		return math.NaN()
	}
	return a / b
}
