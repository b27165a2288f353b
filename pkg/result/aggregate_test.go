package result

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAggregateSeparateNodes(t *testing.T) {
	runs := []Run{
		mkRun("plain", runSpec{repeat: 0, clientMbps: 3000, serverMbps: 3100, clientCores: 0.3, serverCores: 0.4, clientBusy: 0.5, serverBusy: 0.7, sidecarC: -1, sidecarS: -1, retrans: 10, setup: 0.4}),
		mkRun("plain", runSpec{repeat: 1, clientMbps: 2000, serverMbps: 2100, clientCores: 0.2, serverCores: 0.3, clientBusy: 0.4, serverBusy: 0.5, sidecarC: -1, sidecarS: -1, retrans: 20, setup: 0.6}),
		mkRun("plain", runSpec{repeat: 2, clientMbps: 4000, serverMbps: 4100, clientCores: 0.4, serverCores: 0.5, clientBusy: 0.6, serverBusy: 0.9, sidecarC: -1, sidecarS: -1, retrans: 30, setup: 0.5}),
	}
	row := Aggregate("plain", "plain hosts", runs)
	assert.Equal(t, "plain", row.Scenario)
	assert.Equal(t, "plain hosts", row.Title)
	assert.Equal(t, 3, row.Repeats)
	assert.False(t, row.SharedNode)
	assert.Equal(t, Stat{N: 3, Median: 3000, Min: 2000, Max: 4000, Mean: 3000, Values: []float64{2000, 3000, 4000}}, row.ClientMbps)
	assert.InDelta(t, 3100, row.ServerMbps.Median, 1e-9)
	assert.InDelta(t, 3000*1.03, row.ClientIfaceMbps.Median, 1e-9, "client iface = rx of the receiver")
	assert.InDelta(t, 3100*1.03, row.ServerIfaceMbps.Median, 1e-9, "server iface = tx of the sender")
	assert.Nil(t, row.SidecarClientCores)
	assert.Nil(t, row.SidecarServerCores)
	assert.Nil(t, row.SidecarCoresPerGbps)
	assert.Nil(t, row.ForwarderNodeBusyCores)
	// machine busy = client node + server node
	assert.InDelta(t, 1.2, row.MachineBusyCores.Median, 1e-9)
	// kernel = 1.2 - 0.7 = 0.5 in run 0
	assert.InDelta(t, 0.5, *row.Runs[0].KernelCores, 1e-9)
	assert.InDelta(t, 0.1, row.ClientCoresPerGbps.Median, 1e-9)
	assert.InDelta(t, 1.2/3, *row.Runs[0].TotalCoresPerGbps, 1e-9)
	assert.Equal(t, 20.0, row.Retransmits.Median)
	assert.Equal(t, 0.5, row.SetupSeconds.Median)
	assert.Empty(t, row.Notes)
}

func TestAggregateSharedNodeSidecarsForwarder(t *testing.T) {
	r := mkRun("gr+istio", runSpec{clientMbps: 2000, serverMbps: 2050, clientCores: 0.3, serverCores: 0.2,
		clientBusy: 1.9, serverBusy: 2.1, sidecarC: 0.6, sidecarS: 0.4, shared: true})
	r.Client.Notes = []string{"n1"}
	r.Server.Notes = []string{"n1", "n2"}
	row := Aggregate("gr+istio", "", []Run{r})
	require.Equal(t, 1, row.Repeats)
	assert.True(t, row.SharedNode)
	assert.InDelta(t, 2.0, row.MachineBusyCores.Median, 1e-9, "shared: mean of the node figures")
	require.NotNil(t, row.SidecarClientCores)
	require.NotNil(t, row.SidecarServerCores)
	assert.InDelta(t, 0.6, row.SidecarClientCores.Median, 1e-9)
	assert.InDelta(t, 0.4, row.SidecarServerCores.Median, 1e-9)
	require.NotNil(t, row.SidecarCoresPerGbps)
	assert.InDelta(t, 0.5, row.SidecarCoresPerGbps.Median, 1e-9)
	require.NotNil(t, row.SidecarPerApp)
	assert.InDelta(t, 2.0, row.SidecarPerApp.Median, 1e-9, "(0.6 + 0.4) / (0.3 + 0.2)")
	assert.InDelta(t, 0.5, row.KernelCores.Median, 1e-9, "2.0 - 0.3 - 0.2 - 0.6 - 0.4")
	assert.InDelta(t, 1.0, row.TotalCoresPerGbps.Median, 1e-9)
	require.Len(t, row.Notes, 3)
	assert.Equal(t, []string{"n1", "n2"}, row.Notes[:2])
	assert.Contains(t, row.Notes[2], "cost measured on a saturated machine (busier than 80% of its cores) in 1 of 1 cost runs")
	assert.True(t, row.CostSaturated, "2.0 busy cores of 2")
	assert.True(t, row.Runs[0].Saturated)

	// Separate nodes with a forwarding node: its busy cores count in the machine total.
	r2 := mkRun("nodeport", runSpec{clientMbps: 1000, serverMbps: 1000, clientCores: 0.1, serverCores: 0.1,
		clientBusy: 0.2, serverBusy: 0.3, sidecarC: -1, sidecarS: -1})
	r2.Forwarder = &Record{Schema: Schema, Role: "sample", Node: Node{BusyCores: 0.25}}
	row = Aggregate("nodeport", "", []Run{r2})
	require.NotNil(t, row.ForwarderNodeBusyCores)
	assert.InDelta(t, 0.25, row.ForwarderNodeBusyCores.Median, 1e-9)
	assert.InDelta(t, 0.75, row.MachineBusyCores.Median, 1e-9)
	assert.InDelta(t, 0.55, row.KernelCores.Median, 1e-9)
}

func TestAggregateSameHostMeansShared(t *testing.T) {
	r := mkRun("plain", runSpec{clientMbps: 1000, serverMbps: 1000, clientCores: 0.1, serverCores: 0.1, clientBusy: 1, serverBusy: 1, sidecarC: -1, sidecarS: -1})
	r.Client.Host, r.Server.Host = "box", "box"
	row := Aggregate("plain", "", []Run{r})
	assert.True(t, row.SharedNode)
	assert.InDelta(t, 1.0, row.MachineBusyCores.Median, 1e-9)
}

func TestAggregateClientPush(t *testing.T) {
	r := mkRun("plain", runSpec{clientMbps: 1000, serverMbps: 1000, sidecarC: -1, sidecarS: -1})
	r.Server.Sending, r.Client.Sending = false, true
	r.Client.Iface = Iface{TxMbps: 1100, RxMbps: 5}
	r.Server.Iface = Iface{TxMbps: 6, RxMbps: 1090}
	row := Aggregate("plain", "", []Run{r})
	assert.InDelta(t, 1100, row.ClientIfaceMbps.Median, 1e-9)
	assert.InDelta(t, 1090, row.ServerIfaceMbps.Median, 1e-9)
}

func TestAggregateBadInput(t *testing.T) {
	good := mkRun("x", runSpec{repeat: 3, clientMbps: 1000, serverMbps: 1000, clientCores: 0.5, serverCores: 0.6, clientBusy: 0.4, serverBusy: 0.4, sidecarC: -1, sidecarS: -1, shared: true})
	failed := mkRun("x", runSpec{repeat: 1, clientMbps: 10, sidecarC: -1, sidecarS: -1})
	failed.Client.Error = "connect: refused"
	zero := mkRun("x", runSpec{repeat: 2, clientMbps: 0, serverMbps: math.NaN(), clientCores: math.Inf(1), sidecarC: -1, sidecarS: -1})
	runs := []Run{good, {Repeat: 0}, {Repeat: 4, Client: good.Client}, failed, zero}
	row := Aggregate("x", "", runs)
	assert.Equal(t, 2, row.Repeats)
	assert.Equal(t, 3, row.Dropped)
	assert.Equal(t, []int{2, 3}, []int{row.Runs[0].Repeat, row.Runs[1].Repeat}, "runs sorted by repeat")
	joined := strings.Join(row.Notes, "\n")
	assert.Contains(t, joined, "repeat 0 dropped: no client and no server record")
	assert.Contains(t, joined, "repeat 4 dropped: no server record")
	assert.Contains(t, joined, "repeat 1 dropped: client: connect: refused")
	assert.Contains(t, joined, "repeat 3: kernel share not measured: measured processes (1.100 cores) exceed machine busy (0.400 cores)")
	assert.Contains(t, joined, "kernel share not measured in 1 of 2 cost runs")
	assert.Contains(t, joined, "machine busy cores not measured in 1 of 2 cost runs")
	// the zero-Mbps run gives no cores/Gbps, the good run's kernel share is not measured (its
	// processes exceed its machine): no total cost at all, never 0
	assert.Zero(t, row.TotalCoresPerGbps.N)
	assert.Zero(t, row.KernelCores.N)
	assert.Equal(t, 2, row.ClientCoresPerGbps.N+row.ServerCoresPerGbps.N)

	var buf bytes.Buffer
	s := Summary{Rows: []Row{row, Aggregate("empty", "", nil)}}
	require.NoError(t, s.Write(&buf))
	assert.NotContains(t, buf.String(), "NaN")
	var back map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))

	empty := Aggregate("empty", "", nil)
	assert.Equal(t, 0, empty.Repeats)
	assert.False(t, empty.SharedNode)
	assert.Equal(t, Stat{}, empty.ClientMbps)
}

func TestCompareToBaselinePaired(t *testing.T) {
	// Machine state drifts between pairs (run 1 is slow for both); pairing cancels it.
	var base, scen []Run
	for i, mbps := range []float64{3000, 1500, 3000} {
		base = append(base, mkRun("plain", runSpec{repeat: i, clientMbps: mbps, serverMbps: mbps, clientCores: 0.3, serverCores: 0.3, clientBusy: 0.6, serverBusy: 0.6, sidecarC: -1, sidecarS: -1}))
		scen = append(scen, mkRun("gr", runSpec{repeat: i, clientMbps: mbps * 0.9, serverMbps: mbps * 0.9, clientCores: 0.3, serverCores: 0.3, clientBusy: 0.9, serverBusy: 0.9, sidecarC: -1, sidecarS: -1}))
	}
	b := Aggregate("plain", "", base)
	row := Aggregate("gr", "", scen)
	CompareToBaseline(&row, b)
	require.NotNil(t, row.VsBaseline)
	cmp := row.VsBaseline
	assert.Equal(t, "plain", cmp.Baseline)
	assert.Equal(t, 3, cmp.Pairs)
	assert.InDelta(t, 0.9, cmp.BandwidthRatio.Median, 1e-9)
	assert.InDelta(t, 0.9, cmp.BandwidthRatio.Min, 1e-9, "paired ratios have no spread from the drift")
	assert.InDelta(t, 0.9, cmp.BandwidthRatio.Max, 1e-9)
	// cost: (1.8/2.7)/(1.2/3) = 1.6667
	assert.InDelta(t, (1.8/2.7)/(1.2/3.0), cmp.CostRatio.Median, 1e-9)

	CompareToBaseline(nil, b) // must not panic
}

func TestCompareToBaselineUnpairedAndZero(t *testing.T) {
	b := Aggregate("plain", "", []Run{
		mkRun("plain", runSpec{repeat: 0, clientMbps: 1000, clientCores: 0.1, serverCores: 0.1, sidecarC: -1, sidecarS: -1}),
		mkRun("plain", runSpec{repeat: 1, clientMbps: 2000, clientCores: 0.1, serverCores: 0.1, sidecarC: -1, sidecarS: -1}),
	})
	row := Aggregate("gr", "", []Run{
		mkRun("gr", runSpec{repeat: 7, clientMbps: 1500, clientCores: 0.1, serverCores: 0.1, sidecarC: -1, sidecarS: -1}),
	})
	CompareToBaseline(&row, b)
	cmp := row.VsBaseline
	assert.Equal(t, 0, cmp.Pairs)
	assert.InDelta(t, 1.0, cmp.BandwidthRatio.Median, 1e-9)
	assert.InDelta(t, 0.75, cmp.BandwidthRatio.Min, 1e-9)
	assert.InDelta(t, 1.5, cmp.BandwidthRatio.Max, 1e-9)

	// zero baseline: no ratio, no NaN
	zb := Aggregate("plain", "", []Run{mkRun("plain", runSpec{clientMbps: 0, sidecarC: -1, sidecarS: -1})})
	zr := Aggregate("gr", "", []Run{mkRun("gr", runSpec{clientMbps: 100, sidecarC: -1, sidecarS: -1})})
	CompareToBaseline(&zr, zb)
	assert.Equal(t, 1, zr.VsBaseline.Pairs)
	assert.Equal(t, Stat{}, zr.VsBaseline.BandwidthRatio)
	assert.Equal(t, Stat{}, zr.VsBaseline.CostRatio)
	zr.VsBaseline = nil
	zr.Runs[0].Repeat = 9
	CompareToBaseline(&zr, zb)
	assert.Equal(t, Stat{}, zr.VsBaseline.BandwidthRatio)
}

func TestMachineNotMeasuredIsNotZero(t *testing.T) {
	// no node figures (e.g. /proc/stat unreadable at an edge): kernel and total cost are unknown
	row := Aggregate("gr", "", []Run{mkRun("gr", runSpec{clientMbps: 1000, clientCores: 0.1, serverCores: 0.1, sidecarC: -1, sidecarS: -1})})
	assert.Zero(t, row.KernelCoresPerGbps.N)
	assert.Zero(t, row.TotalCoresPerGbps.N)
	for _, g := range Gate(row, Bounds{MaxCoresPerGbps: CoreLimits{Kernel: Val(0.01), Total: Val(1)}}) {
		assert.Equal(t, GateFail, g.Status, "%s: a gate on an unmeasured figure fails, never passes on 0", g.Figure)
	}
	// separate machines with one node unmeasured: no machine-wide sum either
	sep := Aggregate("gr", "", []Run{mkRun("gr", runSpec{clientMbps: 1000, clientCores: 0.1, clientBusy: 2, sidecarC: -1, sidecarS: -1})})
	assert.Zero(t, sep.MachineBusyCores.N)
}

func TestApplyBaseline(t *testing.T) {
	rows := []Row{
		Aggregate("plain", "", []Run{mkRun("plain", runSpec{clientMbps: 1000, clientCores: 0.1, clientBusy: 0.1, serverBusy: 0.1, shared: true, sidecarC: -1, sidecarS: -1})}),
		Aggregate("gr", "", []Run{mkRun("gr", runSpec{clientMbps: 500, clientCores: 0.1, clientBusy: 0.1, serverBusy: 0.1, shared: true, sidecarC: -1, sidecarS: -1})}),
	}
	require.NoError(t, ApplyBaseline(rows, "plain"))
	assert.InDelta(t, 1.0, rows[0].VsBaseline.BandwidthRatio.Median, 1e-9)
	assert.InDelta(t, 0.5, rows[1].VsBaseline.BandwidthRatio.Median, 1e-9)
	assert.InDelta(t, 2.0, rows[1].VsBaseline.CostRatio.Median, 1e-9)

	err := ApplyBaseline(rows, "nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope"`)
	require.Error(t, ApplyBaseline(nil, "plain"))
}
