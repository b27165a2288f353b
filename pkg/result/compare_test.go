package result

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func scale(xs []float64, f float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * f
	}
	return out
}

func TestCompare(t *testing.T) {
	mbps := []float64{3000, 2950, 3050, 3010, 2990}
	cores := []float64{0.40, 0.41, 0.39, 0.40, 0.42}
	old := Summary{Rows: []Row{
		{Scenario: "plain", ClientMbps: Summarize(mbps), ServerCores: Summarize(cores),
			ClientCoresPerGbps: Summarize([]float64{0.1, 0.1}), SetupSeconds: Summarize([]float64{0.2, 0.21, 0.19, 0.2, 0.2})},
		{Scenario: "gone", ClientMbps: Summarize([]float64{10})},
		{Scenario: "zero", ClientMbps: Summarize([]float64{0})},
	}}
	new := Summary{Rows: []Row{
		{Scenario: "added", ClientMbps: Summarize([]float64{5})},
		{Scenario: "plain", ClientMbps: Summarize(scale(mbps, 0.7)), ServerCores: Summarize(cores),
			ClientCoresPerGbps: Summarize([]float64{0.13, 0.13}), SetupSeconds: Summarize(scale([]float64{0.2, 0.21, 0.19, 0.2, 0.2}, 0.5))},
		{Scenario: "zero", ClientMbps: Summarize([]float64{7})},
	}}
	ds := Compare(old, new, CompareOptions{TolerancePct: 5})
	byKey := map[string]Delta{}
	for _, d := range ds {
		byKey[d.Scenario+"/"+d.Figure] = d
	}
	require.Len(t, ds, 7)
	assert.Equal(t, []string{"plain", "plain", "plain", "plain", "gone", "zero", "added"},
		[]string{ds[0].Scenario, ds[1].Scenario, ds[2].Scenario, ds[3].Scenario, ds[4].Scenario, ds[5].Scenario, ds[6].Scenario})

	bw := byKey["plain/client_mbps"]
	require.NotNil(t, bw.ChangePct)
	assert.InDelta(t, -30, *bw.ChangePct, 1e-9)
	assert.True(t, bw.Significant)
	assert.True(t, bw.Worse)
	assert.True(t, bw.Regression)
	assert.Less(t, *bw.P, 0.05)

	same := byKey["plain/server_cores"]
	assert.False(t, same.Significant, "identical samples")
	assert.Empty(t, same.Hint)

	few := byKey["plain/client_cores_per_gbps"]
	assert.False(t, few.Significant, "2 repeats cannot show a difference at 0.05")
	assert.Contains(t, few.Hint, "need >= 4 samples")
	assert.Contains(t, few.Hint, "run more repeats")

	faster := byKey["plain/setup_seconds"]
	assert.True(t, faster.Significant)
	assert.False(t, faster.Worse, "a shorter set-up is better")

	assert.Equal(t, "old", byKey["gone/client_mbps"].Only)
	assert.Equal(t, "new", byKey["added/client_mbps"].Only)
	assert.Nil(t, byKey["zero/client_mbps"].ChangePct, "no percentage from a zero old median")

	require.Len(t, Regressions(ds), 1)
	assert.Equal(t, []string{"plain", "zero"}, CommonScenarios(old, new))

	var buf bytes.Buffer
	require.NoError(t, WriteDeltas(&buf, ds))
	out := buf.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 8)
	assert.Regexp(t, `^scenario\s+figure\s+old\s+new\s+delta\s+verdict$`, lines[0])
	assert.Regexp(t, `^plain\s+client Mbps\s+3000 ±2%\s+2100 ±2%\s+-30\.00% \(p=0\.008 n=5\+5\)\s+REGRESSION$`, lines[1])
	assert.Contains(t, out, "~ (p=1.000 n=5+5)")
	assert.Contains(t, out, "only in old")
	assert.Contains(t, out, "better")

	assert.Empty(t, Compare(Summary{}, Summary{}, CompareOptions{}))
}

func TestCompareFallsBackToRuns(t *testing.T) {
	// a summary written before Stats kept their values: samples come from the runs
	mk := func(f float64) Row {
		var runs []Run
		for i, m := range []float64{1000, 1010, 990, 1005, 995} {
			runs = append(runs, mkRun("plain", runSpec{repeat: i, clientMbps: m * f, serverMbps: m * f, sidecarC: -1, sidecarS: -1}))
		}
		r := Aggregate("plain", "", runs)
		r.ClientMbps.Values = nil
		return r
	}
	ds := Compare(Summary{Rows: []Row{mk(1)}}, Summary{Rows: []Row{mk(0.8)}}, CompareOptions{TolerancePct: 5})
	var found bool
	for _, d := range ds {
		if d.Figure == FigClientMbps {
			found = true
			require.NotNil(t, d.P)
			assert.True(t, d.Regression)
		}
	}
	assert.True(t, found)
}
