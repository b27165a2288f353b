package result

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// NodeSample is one reading of the machine's cumulative CPU time (the "cpu" line of
// /proc/stat, seconds summed over all CPUs since boot) taken at TUnixNano (wall clock, read
// just before /proc/stat). `tcpload sample` records a series of them (Record.NodeSeries) so that
// the node's figures can be computed afterwards over any window the series covers (NodeOver).
type NodeSample struct {
	TUnixNano int64   `json:"t_unix_ns"`
	User      float64 `json:"user"`
	Nice      float64 `json:"nice"`
	System    float64 `json:"system"`
	Idle      float64 `json:"idle"`
	IOWait    float64 `json:"iowait"`
	IRQ       float64 `json:"irq"`
	SoftIRQ   float64 `json:"softirq"`
	Steal     float64 `json:"steal"`
}

// grow returns b-a when it is a finite positive number, else 0 (a counter that went backwards,
// or NaN/Inf input, contributes nothing).
func grow(a, b float64) float64 {
	d := b - a
	if !(d > 0) || math.IsInf(d, 0) {
		return 0
	}
	return d
}

// NodeBetween returns the machine's CPU between readings a and b, taken seconds apart on
// numCPU CPUs (CoresPerGbps is left 0).
//
// BusyCores is the time the CPUs were neither idle nor waiting for I/O, less the part of the
// hypervisor's steal that fell in it: (numCPU*seconds - idle - iowait)*(1 - steal/(numCPU*seconds))
// / seconds. The kernel keeps idle and iowait time with its nanosecond idle clocks (NO_HZ), so
// the first factor is exact to the 10 ms unit of /proc/stat per reading, where the
// user/system/irq/softirq columns are sampled by the scheduler tick (250 Hz here: a CPU busy for
// a third of the time may be charged anywhere between a quarter and a half of it over one
// second; a paced load was charged 0.005 to 0.38 cores for 0.13 to 0.15 cores of its processes
// over 2 s windows here). UserCores (user+nice), SysCores, IRQCores and SoftirqCores are those
// tick-sampled columns: a rough split of BusyCores, not parts that add up to it.
//
// Steal (StealCores, time the hypervisor ran something else while a CPU wanted to run) falls
// in busy and in idle time alike, and /proc/stat does not say where: the idle clock keeps
// running while a CPU woken from idle waits for the hypervisor, so time stolen from an idle CPU
// is counted both as idle and as steal. BusyCores takes from the non-idle time the share of the
// steal that the non-idle time is of the window (all of it on a saturated machine, none on an
// idle one), an estimate between the two bounds, 1 - idle - steal and 1 - idle. Measured here
// (e2e-quick, 2026-12-06, host stealing 0.04-0.56 cores), against the kernel share of the same
// scenario's runs without steal (0.006-0.017 cores): subtracting all the steal read a baseline
// whose processes used 0.16 cores as 0 to 0.03 cores busy; subtracting none read the sidecar
// scenarios up to 0.38 cores high (a 0.56-core steal); the estimate leaves them between 0.015
// below and 0.08 cores above.
//
// IdlePct is 100*(idle+iowait)/(numCPU*seconds). Idle and iowait are taken together because the
// kernel moves time between them (iowait can go backwards). BusyCores is kept within
// [0, numCPU] (the 10 ms unit can push an idle or saturated machine just outside). Seconds
// <= 0, numCPU <= 0, or idle+iowait going backwards (b is not a later reading of the same
// machine) give zeros (NumCPU is still set).
func NodeBetween(a, b NodeSample, seconds float64, numCPU int) Node {
	n := Node{NumCPU: numCPU}
	if !(seconds > 0) || math.IsInf(seconds, 0) || numCPU <= 0 || a.Idle+a.IOWait > b.Idle+b.IOWait {
		return n
	}
	total := float64(numCPU) * seconds
	idle := grow(a.Idle+a.IOWait, b.Idle+b.IOWait)
	steal := grow(a.Steal, b.Steal)
	wall := min(max(total-idle, 0), total) // not idle, steal included
	busy := max(wall-steal*wall/total, 0)

	n.BusyCores = busy / seconds
	n.UserCores = (grow(a.User, b.User) + grow(a.Nice, b.Nice)) / seconds
	n.SysCores = grow(a.System, b.System) / seconds
	n.IRQCores = grow(a.IRQ, b.IRQ) / seconds
	n.SoftirqCores = grow(a.SoftIRQ, b.SoftIRQ) / seconds
	n.StealCores = steal / seconds
	n.IOWaitCores = grow(a.IOWait, b.IOWait) / seconds
	n.IdlePct = min(100*idle/total, 100)
	return n
}

// NodeOver returns the node figures over the window [startNs, endNs] (Unix nanoseconds, e.g. a
// client record's WindowStartUnixNano and WindowEndUnixNano) from a series sampled every
// interval: between the nearest sample at or before the start and the nearest at or after the
// end, so the figures cover the window plus at most the distance to those samples. It fails,
// naming the gap, when the series does not cover the window (it started after the window
// opened or ended before it closed), when a bracketing sample is more than two of the
// series' intervals (its median spacing) away from its edge, when the series has fewer than
// two samples or is out of order, or on a bad window or numCPU.
func NodeOver(series []NodeSample, startNs, endNs int64, numCPU int) (Node, error) {
	switch {
	case numCPU <= 0:
		return Node{}, fmt.Errorf("node over window: %d CPUs", numCPU)
	case endNs <= startNs:
		return Node{}, fmt.Errorf("node over window: the window ends (%d) at or before it starts (%d)", endNs, startNs)
	case len(series) < 2:
		return Node{}, fmt.Errorf("node over window: %d samples in the series, need 2 or more", len(series))
	}
	gaps := make([]int64, 0, len(series)-1)
	for i := 1; i < len(series); i++ {
		d := series[i].TUnixNano - series[i-1].TUnixNano
		if d <= 0 {
			return Node{}, fmt.Errorf("node over window: sample %d (t=%d) is not after sample %d (t=%d)", i, series[i].TUnixNano, i-1, series[i-1].TUnixNano)
		}
		gaps = append(gaps, d)
	}
	slices.Sort(gaps)
	interval := gaps[len(gaps)/2]
	first, last := series[0], series[len(series)-1]
	if first.TUnixNano > startNs {
		return Node{}, fmt.Errorf("node over window: the series starts %s after the window opened (started late)", nsDur(first.TUnixNano-startNs))
	}
	if last.TUnixNano < endNs {
		return Node{}, fmt.Errorf("node over window: the series ends %s before the window closed (ended early)", nsDur(endNs-last.TUnixNano))
	}
	// a: the last sample at or before the start; b: the first at or after the end
	ia, _ := slices.BinarySearchFunc(series, startNs+1, func(s NodeSample, t int64) int { return cmp.Compare(s.TUnixNano, t) })
	a := series[ia-1]
	ib, _ := slices.BinarySearchFunc(series, endNs, func(s NodeSample, t int64) int { return cmp.Compare(s.TUnixNano, t) })
	b := series[ib]
	if d := startNs - a.TUnixNano; d > 2*interval {
		return Node{}, fmt.Errorf("node over window: the nearest sample before the window's start is %s early, more than 2 intervals of %s", nsDur(d), nsDur(interval))
	}
	if d := b.TUnixNano - endNs; d > 2*interval {
		return Node{}, fmt.Errorf("node over window: the nearest sample after the window's end is %s late, more than 2 intervals of %s", nsDur(d), nsDur(interval))
	}
	return NodeBetween(a, b, float64(b.TUnixNano-a.TUnixNano)/1e9, numCPU), nil
}

// nsDur prints a nanosecond count as a duration.
func nsDur(ns int64) string { return time.Duration(ns).String() }
