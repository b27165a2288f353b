package result

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadThresholdsRepoFile(t *testing.T) {
	// the values are calibrated in the file; what must hold is its shape
	th, err := LoadThresholds(filepath.Join("..", "..", "testdata", "thresholds", "local.yaml"))
	require.NoError(t, err)
	d := th.For("plain")
	assert.True(t, d.MinClientMbps.Active())
	assert.True(t, d.MinBandwidthRatio.Active())
	assert.True(t, d.MaxCoresPerGbps.Total.Active())
	assert.False(t, d.MinSidecarCoresPerGbps.Active(), "no sidecar floor without a sidecar")
	for _, name := range []string{"gr+istio", "vpccni+istio"} {
		istio := th.For(name)
		assert.True(t, istio.MinSidecarCoresPerGbps.Active(), "%s proves its sidecar is in the path", name)
		assert.Less(t, istio.MinBandwidthRatio.Value, d.MinBandwidthRatio.Value, "%s: the proxy's ratio floor is overridden", name)
		assert.Equal(t, d.MaxCoresPerGbps.Server, istio.MaxCoresPerGbps.Server, "%s: defaults kept for keys not overridden", name)
		assert.Equal(t, d.MinClientMbps, istio.MinClientMbps)
	}
	assert.Empty(t, th.UnknownScenarios([]string{"plain", "gr", "gr+istio", "vpccni", "vpccni+istio", "nodeport"}))
	assert.Equal(t, []string{"gr", "gr+istio", "nodeport", "vpccni", "vpccni+istio"}, th.UnknownScenarios([]string{"plain"}))
}

// TestEveryThresholdsFileLoads: each file the make targets pass with -thresholds parses and names
// only the e2e scenarios.
func TestEveryThresholdsFileLoads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "thresholds", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			th, err := LoadThresholds(f)
			require.NoError(t, err)
			assert.Empty(t, th.UnknownScenarios([]string{"plain", "gr", "gr+istio", "vpccni", "vpccni+istio", "nodeport"}))
		})
	}
}

func TestParseThresholds(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"ok", "defaults:\n  min_client_mbps: 100\n", ""},
		{"off", "defaults:\n  max_cost_ratio: {total: 3}\nscenarios:\n  a:\n    max_cost_ratio: off\n", ""},
		{"confidence", "defaults:\n  confidence: 0.95\nscenarios:\n  a:\n    confidence: 0.8\n", ""},
		{"confidence too high", "defaults:\n  confidence: 1\n", "confidence must be"},
		{"confidence too low in a scenario", "scenarios:\n  a:\n    confidence: 0.3\n", "scenario a: confidence must be"},
		{"confidence off", "defaults:\n  confidence: off\n", "confidence must be"},
		{"cost ratio as one number", "defaults:\n  max_cost_ratio: 3\n", "{total: 3}"},
		{"unknown cost ratio component", "defaults:\n  max_cost_ratio: {envoy: 2}\n", "field envoy not found"},
		{"empty cost ratio component", "defaults:\n  max_cost_ratio: {total: }\n", "total has no value"},
		{"duplicate cost ratio component", "defaults:\n  max_cost_ratio: {total: 1, total: 2}\n", "already defined"},
		{"unknown top key", "default:\n  min_client_mbps: 100\n", "field default not found"},
		{"empty value", "defaults:\n  min_client_mbps:\n", "min_client_mbps has no value"},
		{"null value in a scenario", "scenarios:\n  gr:\n    max_cost_ratio: ~\n", "max_cost_ratio has no value"},
		{"unknown bound key", "defaults:\n  min_client_mpbs: 100\n", "min_client_mpbs"},
		{"unknown core key", "defaults:\n  max_cores_per_gbps: {envoy: 1}\n", "envoy"},
		{"unknown key in scenario", "scenarios:\n  gr:\n    max_bogus: 1\n", "max_bogus"},
		{"negative", "defaults:\n  min_client_mbps: -5\n", "negative bound -5"},
		{"nan", "defaults:\n  max_setup_seconds: .nan\n", "not a finite number"},
		{"inf", "defaults:\n  max_setup_seconds: .inf\n", "not a finite number"},
		{"text", "defaults:\n  max_setup_seconds: lots\n", `"lots" is not a number`},
		{"list", "defaults:\n  max_setup_seconds: [1]\n", "want a number or off"},
		{"empty", "", "empty document"},
		{"comments only", "# nothing\n", "empty document"},
		{"bad yaml", "defaults: [\n", "parse thresholds"},
		{"duplicate", "defaults:\n  max_setup_seconds: 1\n  max_setup_seconds: 2\n", "already defined"},
		{"empty scenario name", "scenarios:\n  \"\": {}\n", "empty scenario name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, err := ParseThresholds([]byte(tt.yaml))
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, th)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestLoadThresholdsErrorsNamePath(t *testing.T) {
	_, err := LoadThresholds(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	p := filepath.Join(t.TempDir(), "t.yaml")
	require.NoError(t, os.WriteFile(p, []byte("defaults:\n  min_floor: 1\n"), 0o644))
	_, err = LoadThresholds(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p)
	assert.Contains(t, err.Error(), "min_floor")
}

func TestForMergesAndOff(t *testing.T) {
	th, err := ParseThresholds([]byte(`
defaults:
  min_client_mbps: 100
  max_cost_ratio: {total: 3, client: 1.2}
  max_cores_per_gbps: {client: 1, total: 4}
scenarios:
  a:
    max_cost_ratio: {total: off}
    max_cores_per_gbps: {total: 6}
  c:
    max_cost_ratio: off
`))
	require.NoError(t, err)
	a := th.For("a")
	assert.False(t, a.MaxCostRatio.Total.Active())
	assert.Equal(t, Val(1.2), a.MaxCostRatio.Client, "components not overridden keep the default")
	assert.False(t, th.For("c").MaxCostRatio.Client.Active(), "off switches every component off")
	assert.Equal(t, Val(6), a.MaxCoresPerGbps.Total)
	assert.Equal(t, Val(1), a.MaxCoresPerGbps.Client)
	assert.Equal(t, Val(100), a.MinClientMbps)
	assert.Equal(t, Val(3), th.For("b").MaxCostRatio.Total)
	var nilT *Thresholds
	assert.Equal(t, Bounds{}, nilT.For("a"))
	assert.Nil(t, nilT.UnknownScenarios(nil))
}

func rowWith(scenario string, mutate func(*Row)) Row {
	r := Row{Scenario: scenario, Repeats: 3,
		ClientMbps:         Stat{N: 3, Median: 3000, Min: 2900, Max: 3100, Mean: 3000},
		ClientCoresPerGbps: Stat{N: 3, Median: 0.1, Min: 0.09, Max: 0.11, Mean: 0.1},
		ServerCoresPerGbps: Stat{N: 3, Median: 0.1, Min: 0.09, Max: 0.11, Mean: 0.1},
		KernelCoresPerGbps: Stat{N: 3, Median: 0.2, Min: 0.1, Max: 0.3, Mean: 0.2},
		TotalCoresPerGbps:  Stat{N: 3, Median: 0.4, Min: 0.3, Max: 0.5, Mean: 0.4},
		SetupSeconds:       Stat{N: 3, Median: 0.2, Min: 0.1, Max: 0.3, Mean: 0.2},
		VsBaseline: &Comparison{Baseline: "plain", Pairs: 3,
			BandwidthRatio: Stat{N: 3, Median: 0.41, Min: 0.39, Max: 0.44, Mean: 0.41},
			CostRatio:      Stat{N: 3, Median: 1.5, Min: 1.4, Max: 1.6, Mean: 1.5}},
	}
	if mutate != nil {
		mutate(&r)
	}
	return r
}

func TestCheckAndViolationString(t *testing.T) {
	b := Bounds{MinBandwidthRatio: Val(0.5), MaxCostRatio: CoreLimits{Total: Val(3)}, MinClientMbps: Val(200)}
	vs := Check(rowWith("gr+istio", nil), b)
	require.Len(t, vs, 1)
	assert.Equal(t, "gr+istio: client Mbps ratio to baseline median 0.41 (min 0.39, max 0.44, n=3) is below the floor 0.50 (n=3: no per-run samples kept; the median decides)", vs[0].String())
	assert.Equal(t, FigBandwidthRatio, vs[0].Figure)
	assert.Equal(t, BoundMin, vs[0].Bound)
	assert.Equal(t, 0.5, vs[0].Threshold)

	vs = Check(rowWith("x", func(r *Row) {
		r.TotalCoresPerGbps = Stat{N: 1, Median: 5, Min: 5, Max: 5, Mean: 5}
	}), Bounds{MaxCoresPerGbps: CoreLimits{Total: Val(4)}})
	require.Len(t, vs, 1)
	assert.Equal(t, "x: total cores/Gbps 5.00 (n=1) is above the ceiling 4.00 (n=1: no per-run samples kept; the median decides)", vs[0].String())
}

func TestGateSidecarAndBaseline(t *testing.T) {
	b := Bounds{
		MinSidecarCoresPerGbps: Val(0.05),
		MaxCoresPerGbps:        CoreLimits{Sidecar: Val(3), Client: Val(1), Server: Val(1), Kernel: Val(2), Total: Val(4)},
		MinBandwidthRatio:      Val(0.3),
		MaxCostRatio:           CoreLimits{Total: Val(3)},
		MaxSetupSeconds:        Val(30),
		MaxRetransmits:         Val(1000),
	}
	// No sidecar and no baseline comparison.
	gs := Gate(rowWith("gr+istio", func(r *Row) { r.VsBaseline = nil }), b)
	byKey := map[string]GateResult{}
	for _, g := range gs {
		byKey[g.Figure+"/"+g.Bound] = g
	}
	assert.Len(t, gs, 10)
	assert.Equal(t, GateFail, byKey["sidecar_cores_per_gbps/min"].Status)
	assert.Equal(t, GateSkip, byKey["sidecar_cores_per_gbps/max"].Status)
	assert.Equal(t, GateFail, byKey["bandwidth_ratio/min"].Status)
	assert.Equal(t, GateFail, byKey["cost_ratio/max"].Status)
	assert.Equal(t, GatePass, byKey["total_cores_per_gbps/max"].Status)
	assert.Equal(t, GateFail, byKey["retransmits/max"].Status, "retransmits not measured in this hand-made row")
	assert.Equal(t, "gr+istio: sidecar cores/Gbps no sidecar measured (floor 0.05)", byKey["sidecar_cores_per_gbps/min"].Violation().String())
	assert.True(t, strings.HasPrefix(byKey["sidecar_cores_per_gbps/max"].String(), "SKIP gr+istio: sidecar cores/Gbps ceiling 3.00: no sidecar"))
	assert.True(t, strings.HasPrefix(byKey["total_cores_per_gbps/max"].String(), "PASS gr+istio: total cores/Gbps median 0.40"))

	// With a sidecar in the path.
	sc := Stat{N: 3, Median: 0.4, Min: 0.3, Max: 0.5, Mean: 0.4}
	gs = Gate(rowWith("gr+istio", func(r *Row) { r.SidecarCoresPerGbps = &sc }), Bounds{MinSidecarCoresPerGbps: Val(0.05)})
	require.Len(t, gs, 1)
	assert.Equal(t, GatePass, gs[0].Status)

	// Inactive limits produce nothing.
	assert.Empty(t, Gate(rowWith("x", nil), Bounds{MaxCostRatio: CoreLimits{Total: Limit{Set: true, Off: true}}}))
}

func TestSummaryApplyGates(t *testing.T) {
	th, err := ParseThresholds([]byte("defaults:\n  min_bandwidth_ratio: 0.5\n  min_client_mbps: 200\nscenarios:\n  plain:\n    min_bandwidth_ratio: off\n"))
	require.NoError(t, err)
	s := Summary{Rows: []Row{rowWith("plain", nil), rowWith("gr", nil)}}
	vs := s.ApplyGates(th)
	require.Len(t, vs, 1)
	assert.Equal(t, "gr", vs[0].Scenario)
	assert.Len(t, s.Gates, 3)
	assert.True(t, s.Failed())
	assert.Empty(t, s.ApplyGates(nil))
	assert.Empty(t, s.Gates)
	assert.False(t, s.Failed())
}

func TestNumExact(t *testing.T) {
	for in, want := range map[float64]string{0.5: "0.50", 200: "200", 0.405: "0.405", 0.05: "0.05", 3: "3.00", 1234.5: "1234.5"} {
		assert.Equal(t, want, numExact(in), "numExact(%v)", in)
	}
}

func TestGateInvalidThresholdBuiltInCode(t *testing.T) {
	gs := Gate(rowWith("x", nil), Bounds{MinClientMbps: Val(math.NaN()), MaxCostRatio: CoreLimits{Total: Val(-1)}})
	require.Len(t, gs, 2)
	for _, g := range gs {
		assert.Equal(t, GateFail, g.Status)
		assert.Contains(t, g.Reason, "invalid threshold")
		assert.Equal(t, 0.0, g.Threshold)
	}
	var buf bytes.Buffer
	s := Summary{Gates: gs}
	require.NoError(t, s.Write(&buf))
}

func TestFailedRepeatsFailTheGate(t *testing.T) {
	ok := mkRun("gr", runSpec{repeat: 0, clientMbps: 1000, clientCores: 0.1, sidecarC: -1, sidecarS: -1})
	bad := mkRun("gr", runSpec{repeat: 1, clientMbps: 1000, clientCores: 0.1, sidecarC: -1, sidecarS: -1})
	bad.Client.Error = "connect refused"
	row := Aggregate("gr", "", []Run{ok, bad})
	require.Equal(t, 1, row.Dropped)
	vs := Check(row, Bounds{MinClientMbps: Val(10)})
	require.Len(t, vs, 1, "the client Mbps floor passes; the failed repeat does not")
	assert.Equal(t, FigFailedRuns, vs[0].Figure)
	assert.Contains(t, vs[0].String(), "failed repeats")
}
