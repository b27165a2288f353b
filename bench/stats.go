package bench

import (
	"math"
	"slices"
)

// median returns the median of xs (NaN when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianCI returns a distribution-free confidence interval for the median of xs from order
// statistics: the widest k with P(Binomial(n, 1/2) < k) <= (1-level)/2 gives [x(k), x(n+1-k)].
// coverage is the interval's exact coverage (>= level); ok is false when n is too small for the
// level (then lo and hi are the minimum and maximum and coverage is theirs).
func medianCI(xs []float64, level float64) (lo, hi, coverage float64, ok bool) {
	n := len(xs)
	if n == 0 {
		return math.NaN(), math.NaN(), 0, false
	}
	s := slices.Sorted(slices.Values(xs))
	tail := (1 - level) / 2
	k := 0 // P(B < k+1) = cdf(k)
	for k+1 <= n/2 && binomCDF(n, k) <= tail {
		k++
	}
	if k == 0 {
		return s[0], s[n-1], 1 - 2*binomCDF(n, 0), false
	}
	// ranks k..n+1-k (1-based): indices k-1 .. n-k
	return s[k-1], s[n-k], 1 - 2*binomCDF(n, k-1), true
}

// binomCDF is P(Binomial(n, 1/2) <= k).
func binomCDF(n, k int) float64 {
	sum, c := 0.0, 1.0 // c = C(n, i)
	for i := 0; i <= k; i++ {
		if i > 0 {
			c = c * float64(n-i+1) / float64(i)
		}
		sum += c
	}
	return sum / math.Pow(2, float64(n))
}
