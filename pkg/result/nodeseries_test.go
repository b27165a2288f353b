package result

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodeBetween(t *testing.T) {
	// 2 CPUs over 2 s = 4 CPU-seconds: 1.4 idle + 0.2 iowait: 2.4 not idle, of which the 0.2
	// steal's share 2.4/4 is taken off: 2.28 busy. The tick-sampled columns: 1.0 user + 0.2
	// nice, 0.6 sys, 0.1 irq, 0.3 softirq.
	a := NodeSample{User: 100, Nice: 1, System: 50, Idle: 1000, IOWait: 3, IRQ: 1, SoftIRQ: 5, Steal: 2}
	b := NodeSample{User: 101, Nice: 1.2, System: 50.6, Idle: 1001.4, IOWait: 3.2, IRQ: 1.1, SoftIRQ: 5.3, Steal: 2.2}
	for _, tc := range []struct {
		name    string
		a, b    NodeSample
		seconds float64
		numCPU  int
		want    Node
	}{
		{"window", a, b, 2, 2, Node{NumCPU: 2, BusyCores: 1.14, IdlePct: 40, UserCores: 0.6, SysCores: 0.3, SoftirqCores: 0.15, IRQCores: 0.05, StealCores: 0.1, IOWaitCores: 0.1}},
		{"zero seconds", a, b, 0, 2, Node{NumCPU: 2}},
		{"NaN seconds", a, b, math.NaN(), 2, Node{NumCPU: 2}},
		{"no CPUs", a, b, 2, 0, Node{}},
		// b is not a later reading of the same machine
		{"backwards", b, a, 1, 2, Node{NumCPU: 2}},
		// the kernel moves time from iowait to idle: taken together they still grew by 1.59
		{"iowait backwards", a, func() NodeSample { c := b; c.IOWait = a.IOWait - 0.01; return c }(), 2, 2,
			Node{NumCPU: 2, BusyCores: (4 - 1.39) * (1 - 0.2/4) / 2, IdlePct: 100 * 1.39 / 4, UserCores: 0.6, SysCores: 0.3, SoftirqCores: 0.15, IRQCores: 0.05, StealCores: 0.1}},
		// a baseline cost run of e2e-quick (2026-12-06) with processes at 0.159 cores: idle
		// 1.82 cores and steal 0.29 overlap (the idle clock runs while a woken CPU waits for
		// the host); subtracting all the steal read busy as 0, its share 0.09 leaves 0.154
		{"steal mostly in idle", NodeSample{Idle: 500, Steal: 7}, NodeSample{Idle: 503.64, Steal: 7.58}, 2, 2,
			Node{NumCPU: 2, BusyCores: 0.18 * (1 - 0.29/2), IdlePct: 91, StealCores: 0.29}},
		// a saturated machine: all the steal is in busy time
		{"saturated", NodeSample{Idle: 500, Steal: 7}, NodeSample{Idle: 500, Steal: 7.4}, 2, 2,
			Node{NumCPU: 2, BusyCores: 1.8, StealCores: 0.2}},
		// more idle than wall time (the 10 ms unit): busy is kept at 0, idle at 100 %
		{"idle beyond wall time", a, func() NodeSample { c := a; c.Idle += 2.03; return c }(), 1, 2, Node{NumCPU: 2, IdlePct: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NodeBetween(tc.a, tc.b, tc.seconds, tc.numCPU)
			assert.Equal(t, tc.want.NumCPU, got.NumCPU)
			for name, pair := range map[string][2]float64{
				"busy": {tc.want.BusyCores, got.BusyCores}, "idle%": {tc.want.IdlePct, got.IdlePct},
				"user": {tc.want.UserCores, got.UserCores}, "sys": {tc.want.SysCores, got.SysCores},
				"softirq": {tc.want.SoftirqCores, got.SoftirqCores}, "irq": {tc.want.IRQCores, got.IRQCores},
				"steal": {tc.want.StealCores, got.StealCores}, "iowait": {tc.want.IOWaitCores, got.IOWaitCores},
			} {
				assert.InDelta(t, pair[0], pair[1], 1e-9, name)
			}
		})
	}
}

// series returns samples every 100 ms from t0 (ns), the machine 1.5 of 2 cores busy: idle
// grows by 0.05 s per 100 ms, user by 0.1, system by 0.05.
func series(t0 int64, n int) []NodeSample {
	out := make([]NodeSample, n)
	for i := range out {
		f := float64(i)
		out[i] = NodeSample{TUnixNano: t0 + int64(i)*100e6, User: 10 + 0.1*f, System: 5 + 0.05*f, Idle: 100 + 0.05*f}
	}
	return out
}

func TestNodeOver(t *testing.T) {
	const t0 = int64(1_700_000_000_000_000_000)
	ms := int64(1e6)
	s := series(t0, 31) // t0 .. t0+3 s
	withGap := append(append([]NodeSample{}, s[:5]...), s[25:]...)
	for _, tc := range []struct {
		name       string
		series     []NodeSample
		start, end int64
		numCPU     int
		wantErr    string
		wantSecs   float64 // span of the bracketing samples
	}{
		{"on samples", s, t0 + 500*ms, t0 + 2500*ms, 2, "", 2},
		{"between samples", s, t0 + 550*ms, t0 + 2450*ms, 2, "", 2},
		{"whole series", s, t0, t0 + 3000*ms, 2, "", 3},
		{"started late", s, t0 - 50*ms, t0 + 1000*ms, 2, "series starts 50ms after the window opened (started late)", 0},
		{"ended early", s, t0 + 100*ms, t0 + 3200*ms, 2, "series ends 200ms before the window closed (ended early)", 0},
		{"gap before the end", withGap, t0 + 100*ms, t0 + 2000*ms, 2, "after the window's end is 500ms late, more than 2 intervals of 100ms", 0},
		{"gap after the start", withGap, t0 + 1000*ms, t0 + 2600*ms, 2, "before the window's start is 600ms early", 0},
		{"empty window", s, t0 + 1000*ms, t0 + 1000*ms, 2, "ends", 0},
		{"one sample", s[:1], t0, t0 + 1, 2, "1 samples", 0},
		{"out of order", []NodeSample{s[1], s[0], s[2]}, t0, t0 + 200*ms, 2, "not after sample", 0},
		{"no CPUs", s, t0 + 100*ms, t0 + 200*ms, 0, "0 CPUs", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NodeOver(tc.series, tc.start, tc.end, tc.numCPU)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 2, got.NumCPU)
			assert.InDelta(t, 1.5, got.BusyCores, 1e-6, "over %.1f s", tc.wantSecs)
			assert.InDelta(t, 1.0, got.UserCores, 1e-6)
			assert.InDelta(t, 0.5, got.SysCores, 1e-6)
			assert.InDelta(t, 25, got.IdlePct, 1e-6)
		})
	}
	t.Run("brackets the window", func(t *testing.T) {
		// the machine is idle except between 1.0 and 1.5 s, when both CPUs are busy: a window
		// of [1.0, 1.5] reads 2 cores, a window around it less
		s := series(t0, 31)
		for i := range s {
			if i > 10 && i <= 15 {
				s[i].Idle = s[10].Idle
			} else if i > 15 {
				s[i].Idle = s[10].Idle + 0.2*float64(i-15)
			} else {
				s[i].Idle = 100 + 0.2*float64(i)
			}
		}
		got, err := NodeOver(s, t0+1000*ms, t0+1500*ms, 2)
		require.NoError(t, err)
		assert.InDelta(t, 2, got.BusyCores, 1e-6)
		got, err = NodeOver(s, t0+900*ms, t0+1600*ms, 2)
		require.NoError(t, err)
		assert.InDelta(t, 2*0.5/0.7, got.BusyCores, 1e-6)
	})
}
