package result

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKernelTolerance(t *testing.T) {
	assert.InDelta(t, 0.03, KernelTolerance(2, 2, 0), 1e-12)
	assert.InDelta(t, 0.006, KernelTolerance(10, 2, 0), 1e-12)
	assert.InDelta(t, 0.03+2*0.004/2, KernelTolerance(2, 2, 0.004), 1e-12, "misaligned readings widen it")
	assert.True(t, math.IsInf(KernelTolerance(0, 2, 0), 1))
	assert.True(t, math.IsInf(KernelTolerance(math.NaN(), 2, 0), 1))
}

func TestKernelShare(t *testing.T) {
	const ns = int64(1e9)
	rec := func(role string, cores, busy float64, seconds float64, unmeasured ...string) *Record {
		return &Record{Role: role, Seconds: seconds, CPU: CPU{Cores: cores}, Node: Node{NumCPU: 2, BusyCores: busy},
			WindowStartUnixNano: 100 * ns, WindowEndUnixNano: 100*ns + int64(seconds*1e9), Unmeasured: unmeasured}
	}
	for _, tc := range []struct {
		name      string
		c, s      *Record
		busy      float64
		want      float64 // NaN: not measured
		wantWhy   string
		misalignS int64 // server window shifted by this many ns
	}{
		{"kernel share", rec("client", 0.8, 1.9, 2), rec("server", 0.7, 1.9, 2), 1.9, 0.4, "", 0},
		{"zero", rec("client", 1, 2, 2), rec("server", 1, 2, 2), 2, 0, "", 0},
		{"below zero within the tolerance", rec("client", 1, 1.98, 2), rec("server", 1, 1.98, 2), 1.98, -0.02, "", 0},
		{"below zero beyond the tolerance", rec("client", 1, 1.9, 2), rec("server", 1, 1.9, 2), 1.9, math.NaN(), "exceed machine busy (1.900 cores) by 0.100, more than the reading tolerance of 0.030 cores", 0},
		{"misaligned windows widen the tolerance", rec("client", 1, 1.9, 2), rec("server", 1, 1.9, 2), 1.9, -0.1, "", ns / 20},
		{"unknown window length", rec("client", 1, 1.9, 0), rec("server", 1, 1.9, 0), 1.9, math.NaN(), "window's length is unknown", 0},
		{"client CPU not measured", rec("client", 0, 1.9, 2, UnmeasuredCPU), rec("server", 1, 1.9, 2), 1.9, math.NaN(), "client's cpu figures were not measured", 0},
		{"server node not measured", rec("client", 1, 1.9, 2), rec("server", 1, 0, 2, UnmeasuredNode), 1.9, math.NaN(), "server's node figures", 0},
		{"sidecar not measured", rec("client", 1, 1.9, 2, UnmeasuredWatched+WatchSidecar), rec("server", 1, 1.9, 2), 1.9, math.NaN(), "watched.sidecar", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.WindowStartUnixNano += tc.misalignS
			tc.s.WindowEndUnixNano += tc.misalignS
			got, why := kernelShare(tc.c, tc.s, tc.busy, tc.c.CPU.Cores+tc.s.CPU.Cores)
			if math.IsNaN(tc.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				assert.Contains(t, why, tc.wantWhy)
				return
			}
			assert.Empty(t, why)
			assert.InDelta(t, tc.want, got, 1e-9)
		})
	}
}

func TestAggregateKernelNotMeasuredIsNotZero(t *testing.T) {
	ok := mkRun("plain", runSpec{repeat: 0, clientMbps: 1000, serverMbps: 1000, clientCores: 0.8, serverCores: 0.9, clientBusy: 1.9, serverBusy: 1.9, sidecarC: -1, sidecarS: -1, shared: true})
	bad := mkRun("plain", runSpec{repeat: 1, clientMbps: 1000, serverMbps: 1000, clientCores: 1, serverCores: 1, clientBusy: 1.5, serverBusy: 1.5, sidecarC: -1, sidecarS: -1, shared: true})
	for _, r := range []Run{ok, bad} {
		r.Client.Seconds, r.Server.Seconds = 2, 2
	}
	row := Aggregate("plain", "", []Run{ok, bad})
	assert.Equal(t, 2, row.Repeats)
	assert.Equal(t, 1, row.KernelCores.N, "the run whose processes exceed the machine is left out, not counted as 0")
	assert.InDelta(t, 0.2, row.KernelCores.Median, 1e-9)
	assert.Equal(t, 1, row.TotalCoresPerGbps.N)
	assert.InDelta(t, 1.9, row.TotalCoresPerGbps.Median, 1e-9)
	assert.Equal(t, 2, row.MachineBusyCores.N)
	assert.Empty(t, row.Runs[0].KernelUnmeasured)
	assert.Contains(t, row.Runs[1].KernelUnmeasured, "more than the reading tolerance")
	assert.Contains(t, row.Notes, "kernel share not measured in 1 of 2 cost runs")
}

func TestAggregateTotalNeverBelowTheMeasuredProcesses(t *testing.T) {
	// processes 0.15 cores, machine busy 0.13: a share of -0.02, within the 0.03 tolerance of a
	// 2 s window on 2 CPUs
	r := mkRun("plain", runSpec{repeat: 0, clientMbps: 1000, serverMbps: 1000, clientCores: 0.07, serverCores: 0.08, clientBusy: 0.13, serverBusy: 0.13, sidecarC: -1, sidecarS: -1, shared: true})
	r.Client.Seconds, r.Server.Seconds = 2, 2
	row := Aggregate("plain", "", []Run{r})
	require.Empty(t, row.Runs[0].KernelUnmeasured)
	assert.InDelta(t, -0.02, row.KernelCores.Median, 1e-9, "the share is reported as read")
	assert.InDelta(t, 0.15, row.TotalCoresPerGbps.Median, 1e-9, "the total is the processes', not the machine's 0.13")
}

func TestAggregateNotesSteal(t *testing.T) {
	run := func(repeat int, steal float64) Run {
		r := mkRun("plain", runSpec{repeat: repeat, clientMbps: 1000, serverMbps: 1000, clientCores: 0.07, serverCores: 0.08, clientBusy: 0.18, serverBusy: 0.18, sidecarC: -1, sidecarS: -1, shared: true})
		r.Client.Seconds, r.Server.Seconds = 2, 2
		r.Client.Node.StealCores, r.Server.Node.StealCores = steal, steal
		return r
	}
	// 0.02 cores is within a 2 s window's reading tolerance (0.03 on 2 CPUs): no note
	row := Aggregate("plain", "", []Run{run(0, 0.29), run(1, 0.02), run(2, 0.16)})
	require.Equal(t, 3, row.CostRuns)
	assert.Contains(t, row.Notes, "the hypervisor stole up to 0.29 cores in 2 of 3 cost runs: machine busy takes off the share of it that its busy time is of the window, an estimate: it, the kernel share and the total may be off by up to that much")
	assert.Equal(t, 3, row.TotalCoresPerGbps.N, "steal does not unmeasure a run")
	row = Aggregate("plain", "", []Run{run(0, 0.02)})
	for _, n := range row.Notes {
		assert.NotContains(t, n, "stole")
	}
}

func TestAggregateStealOfSeparateMachinesAddsUp(t *testing.T) {
	// client, server and forwarding node on machines of their own: their busy cores are summed,
	// so is what steal may have added to them
	r := mkRun("nodeport", runSpec{repeat: 0, clientMbps: 1000, serverMbps: 1000, clientCores: 0.07, serverCores: 0.08, clientBusy: 0.1, serverBusy: 0.1, sidecarC: -1, sidecarS: -1})
	r.Client.Seconds, r.Server.Seconds = 2, 2
	r.Client.Host, r.Server.Host = "node1", "node2"
	r.Client.Node.StealCores, r.Server.Node.StealCores = 0.1, 0.02
	r.Forwarder = &Record{Schema: Schema, Role: "sample", Node: Node{NumCPU: 2, BusyCores: 0.05, StealCores: 0.03}}
	row := Aggregate("nodeport", "", []Run{r})
	assert.Contains(t, row.Notes, "the hypervisor stole up to 0.15 cores in 1 of 1 cost runs: machine busy takes off the share of it that its busy time is of the window, an estimate: it, the kernel share and the total may be off by up to that much")
}
