package result

import (
	"fmt"
	"math"
	"slices"
)

// CPUReadingUnit is, in seconds, the most one reading of a CPU-time counter can be off: the
// "cpu" line of /proc/stat counts in 10 ms units (USER_HZ 100), and a thread that is running
// while its time is read (schedstat) lags by up to one tick (at most 10 ms for any HZ >= 100).
const CPUReadingUnit = 0.010

// KernelTolerance is, in cores, how far the measured processes can exceed the machine's busy
// cores from reading error alone, over a window of seconds on numCPU CPUs, when the
// processes' readings were taken misalign seconds (start and end edges together) away from the
// node's. At each of the two edges the node's busy reading (its idle clocks, NodeBetween) is off
// by at most one unit, and the processes' readings together by at most one tick per CPU (no
// more than numCPU threads run while they are read); during the misalignment the processes can
// have used at most numCPU cores. So: (2*(numCPU+1)*CPUReadingUnit + numCPU*misalign) /
// seconds. On 2 CPUs that is 0.03 cores over a 2 s window with aligned readings, 0.006 over
// 10 s. It is +Inf when seconds is not positive (no window: no tolerance can be stated).
func KernelTolerance(seconds float64, numCPU int, misalign float64) float64 {
	if !(seconds > 0) || math.IsInf(seconds, 0) {
		return math.Inf(1)
	}
	n := float64(max(numCPU, 1))
	return (2*(n+1)*CPUReadingUnit + n*max(misalign, 0)) / seconds
}

// kernelShare computes a run's kernel share: the machine's busy cores minus the cores of the
// measured processes (client, server, sidecars). It returns the share and "" when it is
// measured; a share below zero by no more than KernelTolerance is kept as it is (it is zero
// within the reading error) and reported, but the run's total is then the measured processes
// alone: a baseline paced at 1 Gbit/s uses about 0.15 cores, and a share of -0.09 there made
// its total 0.06 cores and one scenario's total cost ratio 34.7 (e2e-quick, 2026-12-06). It
// returns NaN and the reason when the processes' or the machine's CPU was not measured, or
// when the processes exceed the machine by more than the tolerance: then one of the readings
// is wrong and no share can be told.
func kernelShare(c, s *Record, busy, measured float64) (float64, string) {
	for _, r := range []*Record{c, s} {
		for _, fig := range []string{UnmeasuredCPU, UnmeasuredNode, UnmeasuredWatched + WatchSidecar} {
			if slices.Contains(r.Unmeasured, fig) {
				return math.NaN(), fmt.Sprintf("%s's %s figures were not measured", r.Role, fig)
			}
		}
	}
	k := busy - measured
	if !finite(k) {
		return math.NaN(), "machine or process cores are not finite numbers"
	}
	if k >= 0 {
		return k, ""
	}
	seconds := min(c.Seconds, s.Seconds)
	numCPU := max(c.Node.NumCPU, s.Node.NumCPU)
	tol := KernelTolerance(seconds, numCPU, misalignment(c, s))
	if math.IsInf(tol, 1) {
		return math.NaN(), fmt.Sprintf("measured processes (%.3f cores) exceed machine busy (%.3f cores) and the window's length is unknown", measured, busy)
	}
	if -k <= tol {
		return k, ""
	}
	return math.NaN(), fmt.Sprintf("measured processes (%.3f cores) exceed machine busy (%.3f cores) by %.3f, more than the reading tolerance of %.3f cores", measured, busy, -k, tol)
}

// misalignment is how far apart, in seconds, the client's and the server's windows were at
// their two edges together (0 when either record does not carry its window's edges).
func misalignment(c, s *Record) float64 {
	if c.WindowStartUnixNano == 0 || s.WindowStartUnixNano == 0 || c.WindowEndUnixNano == 0 || s.WindowEndUnixNano == 0 {
		return 0
	}
	abs := func(d int64) float64 { return math.Abs(float64(d)) / 1e9 }
	return abs(c.WindowStartUnixNano-s.WindowStartUnixNano) + abs(c.WindowEndUnixNano-s.WindowEndUnixNano)
}
