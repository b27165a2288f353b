package bench

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteComparison(t *testing.T) {
	progs := []program{{name: "tcpload"}, {name: "seed-c"}, {name: "iperf3", missing: "iperf3 not installed"}}
	var tl, c []measurement
	for i := 0; i < 9; i++ {
		tl = append(tl, measurement{mbps: 20000 + float64(i)*200, serverCores: 0.5, clientCores: 0.5, queuedMB: 3 + float64(i)})
		c = append(c, measurement{mbps: 20000, serverCores: 0.5, clientCores: 0.6})
	}
	// the C pair in full queues in two rounds, at twice its usual cost
	c[1].queuedMB, c[1].clientCores = 380, 1.5
	c[5].queuedMB, c[5].clientCores = 390, 1.5
	var out bytes.Buffer
	ms := writeComparison(&out, progs, map[string][]measurement{"tcpload": tl, "seed-c": c})
	require.Len(t, ms, 5, "no iperf3 ratios without iperf3 runs")
	assert.Equal(t, "x-seed-tput", ms[0].unit)
	assert.InDelta(t, 1.04, ms[0].value, 1e-9, "median of the per-round throughput ratios")
	assert.Equal(t, "x-seed-cost", ms[1].unit)
	assert.Less(t, ms[1].value, 1.0)
	// the servers used the same cores, so tcpload's server per Gbps is 1/throughput ratio; the
	// clients 0.5 against 0.6 (1.5 in the two full-queue rounds, the two lowest ratios, so the
	// median is the fifth lowest: round 6's)
	assert.Equal(t, "x-seed-server-cost", ms[2].unit)
	assert.InDelta(t, 1/1.04, ms[2].value, 1e-9, "server cores per Gbps: the same cores over more Mbps")
	assert.Equal(t, "x-seed-client-cost", ms[3].unit)
	assert.InDelta(t, 20/(1.2*(20+0.2*6)), ms[3].value, 1e-9, "client cores per Gbps, median round")
	assert.Equal(t, "x-seed-cost-short", ms[4].unit)
	assert.Contains(t, out.String(), "over 7 of 9 rounds", "the two full-queue rounds of the C pair are left out")
	// tcpload's cost per round i: 1/(20+0.2i) cores/Gbps, the C pair's 1.1/20: rounds 0, 2-4, 6-8
	assert.InDelta(t, 20/(1.1*(20+0.2*4)), ms[4].value, 1e-9, "median over the short-queue rounds only")
	assert.Contains(t, out.String(), "95% CI 1.01-1.07")
	assert.Contains(t, out.String(), "iperf3 not installed")
	assert.Contains(t, out.String(), "     7 (   3-  11)", "tcpload's queued MB: median (min-max)")
	assert.Contains(t, out.String(), "queued MB per round, tcpload: 3 4 5 6 7 8 9 10 11\n")
}
