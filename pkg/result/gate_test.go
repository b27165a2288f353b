package result

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ratioRow is a row whose cost and bandwidth ratios to the baseline are the given per-pair
// samples, as CompareToBaseline makes them.
func ratioRow(bw, cost []float64) Row {
	return Row{Scenario: "gr", Repeats: len(cost), CostRuns: len(cost), BandwidthRuns: len(bw),
		VsBaseline: &Comparison{Baseline: "baseline:gr", Pairs: len(cost), BandwidthPairs: len(bw), CostPairs: len(cost),
			BandwidthRatio: Summarize(bw), CostRatio: Summarize(cost)}}
}

func TestGateConfidenceInterval(t *testing.T) {
	tests := []struct {
		name      string
		bw, cost  []float64
		b         Bounds
		want      string
		decidedBy string
	}{
		{"identical: pass", []float64{1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 1},
			Bounds{MinBandwidthRatio: Val(0.9), MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GatePass, DecidedByCI},
		{"A/A with noise: pass", []float64{0.97, 1.02, 1.0, 0.99, 1.03}, []float64{1.03, 0.98, 1.0, 1.01, 0.97},
			Bounds{MinBandwidthRatio: Val(0.9), MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GatePass, DecidedByCI},
		{"cost 20% worse, tight, 5 pairs: fail", nil, []float64{1.19, 1.2, 1.21, 1.2, 1.18},
			Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GateFail, DecidedByCI},
		{"bandwidth 20% lower, tight, 5 pairs: fail", []float64{0.8, 0.81, 0.79, 0.8, 0.82}, nil,
			Bounds{MinBandwidthRatio: Val(0.9)}, GateFail, DecidedByCI},
		{"cost 20% worse but noisy: warn", nil, []float64{0.95, 1.3, 1.2, 1.45, 1.05},
			Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GateWarn, DecidedByCI},
		{"bandwidth noisy around the floor: warn", []float64{0.7, 0.95, 0.85, 1.0, 0.88}, nil,
			Bounds{MinBandwidthRatio: Val(0.9)}, GateWarn, DecidedByCI},
		{"3 pairs, median beyond: fail by the median", nil, []float64{1.3, 1.0, 1.25},
			Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GateFail, DecidedByMedian},
		{"3 pairs, median within: pass by the median", nil, []float64{1.3, 1.0, 1.05},
			Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GatePass, DecidedByMedian},
		{"touching the bound is within", nil, []float64{1.0, 1.05, 1.1, 1.1, 1.1},
			Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}}, GatePass, DecidedByCI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs := Gate(ratioRow(tt.bw, tt.cost), tt.b)
			require.NotEmpty(t, gs)
			for _, g := range gs[1:] {
				assert.Equal(t, tt.want, g.Status, g.String())
			}
			g := gs[0]
			assert.Equal(t, tt.want, g.Status, g.String())
			assert.Equal(t, tt.decidedBy, g.DecidedBy)
			if tt.decidedBy == DecidedByCI {
				require.NotNil(t, g.CI)
				assert.GreaterOrEqual(t, g.CI.Confidence, DefaultConfidence)
			} else {
				assert.Nil(t, g.CI)
				assert.Contains(t, g.Reason, "too few for a 90% confidence interval (need >= 5 samples")
				assert.Contains(t, g.String(), "the median decides")
			}
		})
	}
}

func TestGateStrings(t *testing.T) {
	g := Gate(ratioRow(nil, []float64{1.19, 1.2, 1.21, 1.2, 1.18}), Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}})[0]
	assert.Equal(t, "FAIL gr: total cores/Gbps ratio to baseline median 1.20 (min 1.18, max 1.21, n=5), 93.7% CI [1.18, 1.21] is above the ceiling 1.10", g.String())
	g = Gate(ratioRow(nil, []float64{0.95, 1.3, 1.2, 1.45, 1.05}), Bounds{MaxCostRatio: CoreLimits{Total: Val(1.1)}})[0]
	assert.Equal(t, "WARN gr: total cores/Gbps ratio to baseline median 1.20 (min 0.95, max 1.45, n=5), 93.7% CI [0.95, 1.45] <= ceiling 1.10: the confidence interval straddles the bound: within the noise", g.String())
}

func TestGateConfidenceLevelFromBounds(t *testing.T) {
	// at 0.95 five pairs are too few for an interval: the median decides
	row := ratioRow(nil, []float64{0.95, 1.3, 1.2, 1.45, 1.05})
	g := Gate(row, Bounds{Confidence: Val(0.95), MaxCostRatio: CoreLimits{Total: Val(1.1)}})[0]
	assert.Equal(t, GateFail, g.Status)
	assert.Equal(t, DecidedByMedian, g.DecidedBy)
	assert.Contains(t, g.Reason, "95% confidence interval (need >= 6 samples")
}

func TestGateSaturatedCost(t *testing.T) {
	b := Bounds{MaxCostRatio: CoreLimits{Total: Val(1.5)}, MinBandwidthRatio: Val(0.5)}
	row := ratioRow([]float64{1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 1})
	row.VsBaseline.SaturatedCostPairs = 2
	gs := Gate(row, b)
	require.Len(t, gs, 2)
	assert.Equal(t, GatePass, gs[0].Status, "bandwidth is measured at saturation on purpose")
	assert.Equal(t, GateWarn, gs[1].Status)
	assert.Contains(t, gs[1].Reason, "saturated machine in 2 of 5 cost pairs")
	row.VsBaseline.SaturatedCostPairs = 3
	gs = Gate(row, b)
	assert.Equal(t, GateFail, gs[1].Status)
	assert.Contains(t, gs[1].String(), "saturated machine in 3 of 5 cost pairs")

	// absolute cost figures use the row's saturated cost runs
	r := Row{Scenario: "x", CostRuns: 3, SaturatedCostRuns: 3, TotalCoresPerGbps: Summarize([]float64{0.1, 0.1, 0.1})}
	g := Gate(r, Bounds{MaxCoresPerGbps: CoreLimits{Total: Val(1)}})[0]
	assert.Equal(t, GateFail, g.Status)
}

func TestGateNotMeasuredFails(t *testing.T) {
	// only bandwidth runs: every cost gate fails as not measured, none passes on 0
	r := Row{Scenario: "x", BandwidthRuns: 3, ClientMbps: Summarize([]float64{1000, 1000, 1000})}
	gs := Gate(r, Bounds{MinClientMbps: Val(10), MaxCoresPerGbps: CoreLimits{Client: Val(1), Total: Val(1)}})
	require.Len(t, gs, 3)
	assert.Equal(t, GatePass, gs[0].Status)
	for _, g := range gs[1:] {
		assert.Equal(t, GateFail, g.Status)
		assert.Contains(t, g.String(), "not measured")
	}
}

func TestGateSidecarPerApp(t *testing.T) {
	b := Bounds{MaxSidecarPerApp: Val(5)}
	tests := []struct {
		name   string
		row    Row
		status string
	}{
		{"within", Row{Scenario: "gr+istio", CostRuns: 3, SidecarPerApp: optStat(Summarize([]float64{4.4, 4.6, 4.5}))}, GatePass},
		{"a fifth dearer", Row{Scenario: "gr+istio", CostRuns: 3, SidecarPerApp: optStat(Summarize([]float64{5.3, 5.5, 5.4}))}, GateFail},
		{"no sidecar", Row{Scenario: "gr", CostRuns: 3}, GateSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs := Gate(tt.row, b)
			require.Len(t, gs, 1)
			assert.Equal(t, FigSidecarPerApp, gs[0].Figure)
			assert.Equal(t, tt.status, gs[0].Status, gs[0].String())
		})
	}
}

func TestApplyGatesSkipsBaselineRows(t *testing.T) {
	th, err := ParseThresholds([]byte("defaults:\n  min_bandwidth_ratio: 0.5\n"))
	require.NoError(t, err)
	base := Row{Scenario: "baseline:gr", ClientMbps: Summarize([]float64{1000})}
	s := Summary{Rows: []Row{base, ratioRow([]float64{1, 1, 1}, nil)}}
	assert.Empty(t, s.ApplyGates(th))
	require.Len(t, s.Gates, 1)
	assert.Equal(t, "gr", s.Gates[0].Scenario)

	base.Dropped = 1
	base.DroppedRuns = []DroppedRun{{Mode: ModeCost, Repeat: 2, Error: "server exited 1"}}
	s.Rows[0] = base
	vs := s.ApplyGates(th)
	require.Len(t, vs, 1, "a baseline's failed repeat still fails")
	assert.Equal(t, FigFailedRuns, vs[0].Figure)
	assert.True(t, strings.Contains(vs[0].String(), "cost run 2: server exited 1"), vs[0].String())

	named := Summary{Baseline: "plain", Rows: []Row{{Scenario: "plain"}}}
	assert.Empty(t, named.ApplyGates(th))
}
