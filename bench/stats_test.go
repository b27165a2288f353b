package bench

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMedian(t *testing.T) {
	assert.Equal(t, 2.0, median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, median([]float64{4, 1, 2, 3}))
	assert.True(t, math.IsNaN(median(nil)))
}

func TestMedianCI(t *testing.T) {
	xs := []float64{9, 1, 8, 2, 7, 3, 6, 4, 5} // n = 9: ranks 2 and 8 at 96.1 %
	lo, hi, cov, ok := medianCI(xs, 0.95)
	assert.True(t, ok)
	assert.Equal(t, 2.0, lo)
	assert.Equal(t, 8.0, hi)
	assert.InDelta(t, 0.961, cov, 0.001)
	// n = 5 cannot reach 95 %: min..max at 93.75 %
	lo, hi, cov, ok = medianCI([]float64{5, 1, 3, 2, 4}, 0.95)
	assert.False(t, ok)
	assert.Equal(t, 1.0, lo)
	assert.Equal(t, 5.0, hi)
	assert.InDelta(t, 0.9375, cov, 0.0001)
	// n = 20: ranks 6 and 15 (P(B<=5) = 0.0207)
	var ys []float64
	for i := 1; i <= 20; i++ {
		ys = append(ys, float64(i))
	}
	lo, hi, _, ok = medianCI(ys, 0.95)
	assert.True(t, ok)
	assert.Equal(t, 6.0, lo)
	assert.Equal(t, 15.0, hi)
}
