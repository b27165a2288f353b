package result

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modeRun is mkRun with a mode.
func modeRun(scenario, mode string, s runSpec) Run {
	r := mkRun(scenario, s)
	r.Mode = mode
	return r
}

func TestAggregateModes(t *testing.T) {
	var runs []Run
	for i := 0; i < 3; i++ {
		// unpaced: 10 Gbps on a saturated machine
		runs = append(runs, modeRun("gr", ModeBandwidth, runSpec{repeat: i, clientMbps: 10000 + float64(i)*100, serverMbps: 10000, clientCores: 0.9, serverCores: 0.9,
			clientBusy: 1.95, serverBusy: 1.95, shared: true, sidecarC: -1, sidecarS: -1, retrans: 5, setup: 0.1}))
		// paced: 1 Gbps with idle CPUs
		runs = append(runs, modeRun("gr", ModeCost, runSpec{repeat: i, clientMbps: 1000, serverMbps: 1000, clientCores: 0.05, serverCores: 0.06,
			clientBusy: 0.3, serverBusy: 0.3, shared: true, sidecarC: -1, sidecarS: -1, retrans: 1, setup: 0.1}))
	}
	row := Aggregate("gr", "", runs)
	assert.Equal(t, 6, row.Repeats)
	assert.Equal(t, 3, row.BandwidthRuns)
	assert.Equal(t, 3, row.CostRuns)
	assert.InDelta(t, 10100, row.ClientMbps.Median, 1e-9, "bandwidth from the unpaced runs")
	assert.InDelta(t, 1000, row.CostLoadMbps.Median, 1e-9, "the load the cost was measured at")
	assert.InDelta(t, 0.05, row.ClientCores.Median, 1e-9, "cost from the paced runs")
	assert.InDelta(t, 0.05, row.ClientCoresPerGbps.Median, 1e-9, "divides by the cost runs' client Mbps")
	assert.InDelta(t, 0.3, row.TotalCoresPerGbps.Median, 1e-9)
	assert.Equal(t, CoresPerGbpsOf, row.CoresPerGbpsOf)
	assert.False(t, row.CostSaturated, "the saturated runs are the bandwidth runs")
	assert.Equal(t, 0, row.SaturatedCostRuns)
	assert.Equal(t, 5.0, row.Retransmits.Median, "retransmits of the bandwidth runs")
	require.Len(t, row.Runs, 6)
	assert.True(t, row.Runs[0].Saturated || row.Runs[1].Saturated)

	// only one mode: the other mode's figures are absent, not 0
	bwOnly := Aggregate("gr", "", runs[0:1])
	assert.Equal(t, 0, bwOnly.ClientCores.N)
	assert.Equal(t, 0, bwOnly.TotalCoresPerGbps.N)
	assert.Equal(t, 0, bwOnly.CostLoadMbps.N)
	assert.Empty(t, bwOnly.CoresPerGbpsOf)
	costOnly := Aggregate("gr", "", runs[1:2])
	assert.Equal(t, 0, costOnly.ClientMbps.N)
	assert.Equal(t, 0, costOnly.SetupSeconds.N)
	assert.Equal(t, 1, costOnly.ClientCores.N)
}

func TestAggregateRunError(t *testing.T) {
	ok := modeRun("gr", ModeCost, runSpec{repeat: 0, clientMbps: 1000, serverMbps: 1000, clientCores: 0.1, serverCores: 0.1, clientBusy: 0.4, serverBusy: 0.4, shared: true, sidecarC: -1, sidecarS: -1})
	bad := Run{Scenario: "gr", Mode: ModeBandwidth, Repeat: 1, Error: "tcpload client: exit status 1"}
	row := Aggregate("gr", "", []Run{ok, bad})
	assert.Equal(t, 1, row.Repeats)
	assert.Equal(t, 1, row.Dropped)
	assert.Equal(t, []DroppedRun{{Mode: ModeBandwidth, Repeat: 1, Error: "tcpload client: exit status 1"}}, row.DroppedRuns)
	assert.Contains(t, strings.Join(row.Notes, "\n"), "bandwidth run 1 dropped: tcpload client: exit status 1")
	odd := ok
	odd.Mode, odd.Repeat = "fast", 7
	row2 := Aggregate("gr", "", []Run{ok, odd})
	assert.Equal(t, 1, row2.Dropped)
	assert.Contains(t, row2.DroppedRuns[0].Error, `unknown mode "fast"`)

	gs := Gate(row, Bounds{})
	require.Len(t, gs, 1)
	assert.Equal(t, GateFail, gs[0].Status)
	assert.Contains(t, gs[0].String(), "bandwidth run 1: tcpload client: exit status 1")
}

func TestAggregateUnmeasured(t *testing.T) {
	r := modeRun("gr+istio", ModeCost, runSpec{clientMbps: 1000, serverMbps: 1000, clientCores: 0.1, serverCores: 0.1,
		clientBusy: 1, serverBusy: 1, shared: true, sidecarC: 0.2, sidecarS: 0.2, retrans: 3})
	r.Client.Unmeasured = []string{UnmeasuredIface, UnmeasuredWatched + WatchSidecar}
	r.Server.Unmeasured = []string{UnmeasuredTCP}
	row := Aggregate("gr+istio", "", []Run{r})
	require.Len(t, row.Runs, 1)
	assert.Nil(t, row.Runs[0].ClientIfaceMbps, "iface not measured on the client")
	assert.NotNil(t, row.Runs[0].ServerIfaceMbps)
	assert.Nil(t, row.Runs[0].Retransmits, "tcp not measured on the server: no sum")

	old := modeRun("plain", ModeBandwidth, runSpec{clientMbps: 1000, serverMbps: 1000, clientCores: 0.1, serverCores: 0.1, clientBusy: 1, serverBusy: 1, retrans: 3})
	old.Server.TCP.WindowRetransmits = nil // a record of before window_retransmits
	assert.Nil(t, Aggregate("plain", "", []Run{old}).Runs[0].Retransmits, "the session's retransmits are not the window's")
	assert.Nil(t, row.SidecarClientCores)
	require.NotNil(t, row.SidecarServerCores)
	assert.Nil(t, row.SidecarCoresPerGbps, "one of two sidecars unmeasured: no sum")
	assert.Equal(t, 0, row.KernelCores.N, "kernel = machine minus every process: unknown")
	assert.Equal(t, 0, row.TotalCoresPerGbps.N)
	assert.Equal(t, 1, row.MachineBusyCores.N)

	r.Client.Unmeasured, r.Server.Unmeasured = []string{UnmeasuredCPU}, []string{UnmeasuredNode}
	row = Aggregate("gr+istio", "", []Run{r})
	assert.Equal(t, 0, row.ClientCores.N)
	assert.Equal(t, 0, row.ClientCoresPerGbps.N)
	assert.Equal(t, 1, row.ServerCores.N)
	assert.Equal(t, 0, row.ServerNodeBusyCores.N)
	assert.Equal(t, 0, row.TotalCoresPerGbps.N)
	for _, g := range Gate(row, Bounds{MaxCoresPerGbps: CoreLimits{Client: Val(5), Total: Val(5)}}) {
		assert.Equal(t, GateFail, g.Status, g.String())
		assert.Contains(t, g.String(), NotMeasured)
	}
}

func TestCompareToBaselineByModeAndRepeat(t *testing.T) {
	var base, scen []Run
	for i := 0; i < 5; i++ {
		base = append(base,
			modeRun("b", ModeBandwidth, runSpec{repeat: i, clientMbps: 10000, serverMbps: 10000, clientCores: 1, serverCores: 1, clientBusy: 1.9, serverBusy: 1.9, shared: true, sidecarC: -1, sidecarS: -1}),
			modeRun("b", ModeCost, runSpec{repeat: i, clientMbps: 1000, serverMbps: 1000, clientCores: 0.05, serverCores: 0.05, clientBusy: 0.2, serverBusy: 0.2, shared: true, sidecarC: -1, sidecarS: -1}))
		scen = append(scen,
			modeRun("s", ModeBandwidth, runSpec{repeat: i, clientMbps: 2000, serverMbps: 2000, clientCores: 0.3, serverCores: 0.3, clientBusy: 1.9, serverBusy: 1.9, shared: true, sidecarC: 0.9, sidecarS: 0.4}),
			modeRun("s", ModeCost, runSpec{repeat: i, clientMbps: 1000, serverMbps: 1000, clientCores: 0.06, serverCores: 0.05, clientBusy: 0.6, serverBusy: 0.6, shared: true, sidecarC: 0.2, sidecarS: 0.2}))
	}
	b, row := Aggregate("b", "", base), Aggregate("s", "", scen)
	CompareToBaseline(&row, b)
	c := row.VsBaseline
	require.NotNil(t, c)
	assert.Equal(t, 10, c.Pairs)
	assert.Equal(t, 5, c.BandwidthPairs)
	assert.Equal(t, 5, c.CostPairs)
	assert.Equal(t, 0, c.SaturatedCostPairs)
	assert.InDelta(t, 0.2, c.BandwidthRatio.Median, 1e-9)
	assert.Len(t, c.BandwidthRatio.Values, 5, "per-pair samples kept for the gates")
	assert.InDelta(t, 3.0, c.CostRatio.Median, 1e-9, "0.6 / 0.2 per Gbps at the same load")
	assert.InDelta(t, 1.2, c.ClientCostRatio.Median, 1e-9)
	assert.InDelta(t, 1.0, c.ServerCostRatio.Median, 1e-9)
	assert.InDelta(t, 0.9, c.KernelCostRatio.Median, 1e-9, "kernel share 0.6-0.51 over the baseline's 0.2-0.1")
	require.NotNil(t, c.SidecarCostRatio)
	assert.InDelta(t, 2.0, c.SidecarCostRatio.Median, 1e-9, "0.4 sidecar cores/Gbps over the baseline's 0.2 total")
}
