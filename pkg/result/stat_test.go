package result

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		in   []float64
		want Stat
	}{
		{"nil", nil, Stat{}},
		{"empty", []float64{}, Stat{}},
		{"only non-finite", []float64{nan, inf, -inf}, Stat{}},
		{"one", []float64{3}, Stat{N: 1, Median: 3, Min: 3, Max: 3, Mean: 3, Values: []float64{3}}},
		{"odd unsorted", []float64{5, 1, 3}, Stat{N: 3, Median: 3, Min: 1, Max: 5, Mean: 3, Values: []float64{1, 3, 5}}},
		{"even", []float64{4, 1, 2, 3}, Stat{N: 4, Median: 2.5, Min: 1, Max: 4, Mean: 2.5, Values: []float64{1, 2, 3, 4}}},
		{"NaN dropped", []float64{nan, 2, inf, 4}, Stat{N: 2, Median: 3, Min: 2, Max: 4, Mean: 3, Values: []float64{2, 4}}},
		{"huge values do not overflow", []float64{math.MaxFloat64, math.MaxFloat64},
			Stat{N: 2, Median: math.MaxFloat64, Min: math.MaxFloat64, Max: math.MaxFloat64, Mean: math.MaxFloat64, Values: []float64{math.MaxFloat64, math.MaxFloat64}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.in)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSummarizeDoesNotReorderInput(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	assert.Equal(t, []float64{3, 1, 2}, in)
}

func TestStatValid(t *testing.T) {
	assert.True(t, Summarize([]float64{1}).Valid())
	assert.False(t, Stat{}.Valid())
}

func TestStatJSONNeverNaN(t *testing.T) {
	s := Stat{N: 1, Median: math.NaN(), Min: math.Inf(-1), Max: math.Inf(1), Mean: 2}
	data, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"n":1,"median":0,"min":0,"max":0,"mean":2}`, string(data))

	var back Stat
	require.NoError(t, json.Unmarshal([]byte(`{"n":3,"median":2,"min":1,"max":3,"mean":2}`), &back))
	assert.Equal(t, Stat{N: 3, Median: 2, Min: 1, Max: 3, Mean: 2}, back)
}

func TestNum(t *testing.T) {
	tests := map[float64]string{
		0: "0.00", 3072.4: "3072", 100: "100", 42.26: "42.3", 0.5: "0.50", 1.234: "1.23",
		0.05: "0.05", 0.00123: "0.00123", -0.41: "-0.41", math.NaN(): "n/a", math.Inf(1): "n/a",
	}
	for in, want := range tests {
		assert.Equal(t, want, Num(in), "Num(%v)", in)
	}
}

func TestStatString(t *testing.T) {
	assert.Equal(t, "not measured", Stat{}.String())
	assert.Equal(t, "median 2.00 (min 1.00, max 3.00, n=3)", Summarize([]float64{1, 2, 3}).String())
	assert.Equal(t, "3072 (n=1)", Summarize([]float64{3072}).String())
}
