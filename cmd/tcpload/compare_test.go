package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/result"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/compare/")

const compareDir = "testdata/compare"

// synthetic builds a summary of one scenario from per-repeat samples: bandwidth (client Mbps),
// cost (total cores per Gbps at equal load) and its ratio to a baseline, each sample scaled.
func synthetic(mbps, cost []float64, bwScale, costScale float64) result.Summary {
	sc := func(xs []float64, f float64) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x * f
		}
		return out
	}
	row := result.Row{Scenario: "gr", Repeats: 2 * len(mbps), BandwidthRuns: len(mbps), CostRuns: len(cost),
		ClientMbps:        result.Summarize(sc(mbps, bwScale)),
		CostLoadMbps:      result.Summarize(sc([]float64{1000, 1000, 1000, 1000, 1000}[:len(cost)], 1)),
		TotalCoresPerGbps: result.Summarize(sc(cost, costScale)),
		CoresPerGbpsOf:    result.CoresPerGbpsOf}
	return result.Summary{Schema: result.SummarySchema, Provider: "synthetic", Rows: []result.Row{row}}
}

// writeInput writes a synthetic summary into testdata/compare (regenerated with -update, so the
// golden outputs name stable paths).
func writeInput(t *testing.T, name string, s result.Summary) string {
	t.Helper()
	p := filepath.Join(compareDir, name)
	if *update {
		require.NoError(t, os.MkdirAll(compareDir, 0o755))
		require.NoError(t, s.WriteFile(p))
	}
	return p
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join(compareDir, name)
	if *update {
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "missing golden file: go test ./cmd/tcpload -run Compare -update")
	assert.Equal(t, string(want), got, "%s differs: go test ./cmd/tcpload -run Compare -update and review the diff", p)
}

func TestCompareGolden(t *testing.T) {
	mbps := []float64{8000, 8100, 7950, 8050, 7990}
	cost := []float64{0.40, 0.41, 0.39, 0.40, 0.42}
	base := writeInput(t, "in-base.json", synthetic(mbps, cost, 1, 1))
	same := writeInput(t, "in-same.json", synthetic(mbps, cost, 1, 1))
	shifted := writeInput(t, "in-shifted.json", synthetic(mbps, cost, 0.7, 1.3))
	base2 := writeInput(t, "in-base-2repeats.json", synthetic([]float64{8000, 6000}, []float64{0.40, 0.55}, 1, 1))
	noisy2 := writeInput(t, "in-shifted-2repeats.json", synthetic([]float64{8000, 6000}, []float64{0.40, 0.55}, 0.7, 1.3))

	tests := []struct {
		name     string
		args     []string
		wantCode int
		golden   string
	}{
		{"identical", []string{base, same}, 0, "identical.golden.txt"},
		{"shifted 30% over 5 repeats", []string{base, shifted}, 1, "shifted.golden.txt"},
		{"shifted 30% as JSON", []string{base, shifted, "--json"}, 1, "shifted.golden.json"},
		{"shifted 30% within a 50% tolerance", []string{base, shifted, "--tolerance", "50"}, 0, "shifted-tolerated.golden.txt"},
		{"shifted 30% but noisy with 2 repeats", []string{base2, noisy2}, 0, "shifted-2repeats.golden.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runTool(t, append([]string{"compare"}, tt.args...)...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr)
			checkGolden(t, tt.golden, out)
		})
	}
	if *update {
		return
	}
	_, out, _ := runTool(t, "compare", base, same)
	assert.NotContains(t, out, "REGRESSION")
	assert.Contains(t, out, "~ (p=1.000 n=5+5)")
	_, out, _ = runTool(t, "compare", base, shifted)
	assert.Contains(t, out, "-30.00% (p=0.008 n=5+5)  REGRESSION")
	assert.Contains(t, out, "+30.00% (p=0.008 n=5+5)  REGRESSION")
	_, out, _ = runTool(t, "compare", base2, noisy2)
	assert.Contains(t, out, "need >= 4 samples to detect a difference at alpha level 0.05; run more repeats")
	assert.NotContains(t, out, "REGRESSION")
}

func TestCompareAndReportBadInput(t *testing.T) {
	good := filepath.Join(compareDir, "in-base.json")
	dir := t.TempDir()
	wrongSchema := filepath.Join(dir, "record.json")
	require.NoError(t, os.WriteFile(wrongSchema, []byte(`{"schema":"pathcost/result/v1","role":"client"}`), 0o644))
	notJSON := filepath.Join(dir, "garbage.json")
	require.NoError(t, os.WriteFile(notJSON, []byte("not json"), 0o644))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	other := filepath.Join(dir, "other.json")
	s := synthetic([]float64{1}, []float64{1}, 1, 1)
	s.Rows[0].Scenario = "nodeport"
	require.NoError(t, s.WriteFile(other))
	missing := filepath.Join(dir, "missing.json")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing file", []string{"compare", missing, good}, []string{"OLD", missing}},
		{"wrong schema", []string{"compare", good, wrongSchema}, []string{"NEW", wrongSchema, `schema "pathcost/result/v1"`}},
		{"not JSON", []string{"compare", notJSON, good}, []string{notJSON, "decode summary"}},
		{"empty directory", []string{"compare", good, empty}, []string{empty, "without summary.json"}},
		{"no scenario in common", []string{"compare", good, other}, []string{"no scenario in common", good, other, "gr", "nodeport"}},
		{"bad tolerance", []string{"compare", good, good, "--tolerance", "-1"}, []string{"--tolerance"}},
		{"one argument", []string{"compare", good}, []string{"want OLD and NEW"}},
		{"report: nothing readable", []string{"report", missing, empty}, []string{"no readable summary", missing, empty}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runTool(t, tt.args...)
			assert.Equal(t, 2, code, stderr)
			for _, w := range tt.want {
				assert.Contains(t, stderr, w)
			}
		})
	}
}

func TestReportSkipsUnreadableAndDoesNotGateBaselines(t *testing.T) {
	dir := t.TempDir()
	// a single-scenario results directory as the e2e suite writes it: the scenario and its
	// baseline; the thresholds' ratio bounds apply to the scenario only
	base := result.Row{Scenario: result.BaselinePrefix + "gr", Repeats: 1, BandwidthRuns: 1, ClientMbps: result.Summarize([]float64{9000})}
	row := result.Row{Scenario: "gr", Repeats: 1, BandwidthRuns: 1, ClientMbps: result.Summarize([]float64{8000}),
		VsBaseline: &result.Comparison{Baseline: base.Scenario, Pairs: 1, BandwidthPairs: 1, BandwidthRatio: result.Summarize([]float64{0.89})}}
	s := result.Summary{Schema: result.SummarySchema, Rows: []result.Row{row, base}}
	run := filepath.Join(dir, "run-gr")
	require.NoError(t, os.Mkdir(run, 0o755))
	require.NoError(t, s.WriteFile(filepath.Join(run, "summary.json")))
	th := filepath.Join(dir, "t.yaml")
	require.NoError(t, os.WriteFile(th, []byte("defaults:\n  min_bandwidth_ratio: 0.5\n  min_client_mbps: 100\n"), 0o644))
	broken := filepath.Join(dir, "run-broken")
	require.NoError(t, os.Mkdir(broken, 0o755))

	code, out, stderr := runTool(t, "report", run, "--thresholds", th)
	assert.Equal(t, 0, code, "the baseline row is not gated: %s\n%s", stderr, out)
	assert.Contains(t, out, "PASS gr: client Mbps ratio to baseline")
	assert.NotContains(t, out, "baseline:gr: client Mbps ratio")

	code, out, stderr = runTool(t, "report", run, broken)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "warning: skipping "+broken)
	assert.Contains(t, out, "gr ")
}
