package result

import (
	"bytes"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummaryRoundTrip(t *testing.T) {
	rows := []Row{
		Aggregate("plain", "plain hosts", []Run{mkRun("plain", runSpec{clientMbps: 3000, serverMbps: 3100, clientCores: 0.3, serverCores: 0.4, clientBusy: 0.5, serverBusy: 0.6, sidecarC: -1, sidecarS: -1})}),
		Aggregate("gr+istio", "", []Run{mkRun("gr+istio", runSpec{clientMbps: 2000, serverMbps: 2100, clientCores: 0.3, serverCores: 0.2, clientBusy: 1, serverBusy: 1.5, sidecarC: 0.5, sidecarS: 0.3})}),
	}
	require.NoError(t, ApplyBaseline(rows, "plain"))
	s := Summary{Provider: "local", Host: "h", StartedAt: "2026-01-01T00:00:00Z", Settings: map[string]string{"conns": "100"}, Baseline: "plain", Rows: rows, Notes: []string{"n"}}
	s.ApplyGates(&Thresholds{Defaults: Bounds{MinClientMbps: Val(100)}})
	s.Rows[1].ClientMbps.Mean = math.NaN() // a hand-made NaN must not break encoding

	p := filepath.Join(t.TempDir(), "summary.json")
	require.NoError(t, s.WriteFile(p))
	back, err := ReadSummary(p)
	require.NoError(t, err)
	assert.Equal(t, SummarySchema, back.Schema)
	assert.Equal(t, "local", back.Provider)
	require.Len(t, back.Rows, 2)
	assert.Equal(t, s.Rows[0], back.Rows[0])
	assert.Equal(t, 0.0, back.Rows[1].ClientMbps.Mean)
	require.NotNil(t, back.Rows[1].SidecarClientCores)
	assert.Len(t, back.Gates, 1, "the baseline row is not gated")
	r, ok := back.Row("gr+istio")
	assert.True(t, ok)
	assert.Equal(t, "gr+istio", r.Scenario)
	_, ok = back.Row("nope")
	assert.False(t, ok)
}

func TestDecodeSummaryErrors(t *testing.T) {
	_, err := DecodeSummary([]byte(`{"schema":"pathcost/result/v1","rows":[]}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "schema")
	_, err = DecodeSummary([]byte(`{`))
	require.Error(t, err)
	_, err = ReadSummary(filepath.Join(t.TempDir(), "none.json"))
	require.Error(t, err)

	var buf bytes.Buffer
	require.NoError(t, (&Summary{}).Write(&buf))
	s, err := DecodeSummary(buf.Bytes())
	require.NoError(t, err)
	assert.Empty(t, s.Rows)
}

func TestReadLegacySummaryMarksSaturation(t *testing.T) {
	// the reference results of 2026-11-27 were measured at saturation on 2 cores, before runs
	// had a mode: reading them says so
	s, err := ReadSummary(filepath.Join("..", "..", "testdata", "reference", "local-2026-11-27", "summary.json"))
	require.NoError(t, err)
	require.NotEmpty(t, s.Rows)
	for _, r := range s.Rows {
		assert.Equal(t, r.Repeats, r.CostRuns, r.Scenario)
		assert.Equal(t, r.ClientMbps, r.CostLoadMbps, "%s: cost measured at the bandwidth runs' load", r.Scenario)
		assert.True(t, r.CostSaturated, "%s: 2 busy cores of 2", r.Scenario)
		assert.Contains(t, r.Notes, LegacyNote)
		gs := Gate(r, Bounds{MaxCoresPerGbps: CoreLimits{Total: Val(100)}})
		require.Len(t, gs, 1)
		assert.Equal(t, GateFail, gs[0].Status, "a saturated cost does not pass: %s", gs[0])
	}
}
