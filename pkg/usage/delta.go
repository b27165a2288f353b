package usage

import (
	"math"

	"github.com/pathcost/pathcost/pkg/result"
)

// dsec returns b-a when it is a finite positive number, else 0 (a counter that went backwards,
// or NaN/Inf input, contributes nothing).
func dsec(a, b float64) float64 {
	d := b - a
	if !(d > 0) || math.IsInf(d, 0) {
		return 0
	}
	return d
}

// dcount returns b-a, or 0 when the counter went backwards (reset or wrapped).
func dcount(a, b uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}

// validSeconds reports whether seconds can divide a delta.
func validSeconds(seconds float64) bool {
	return seconds > 0 && !math.IsInf(seconds, 0)
}

// rate returns amount/seconds, or 0 when seconds is not a finite positive number.
func rate(amount, seconds float64) float64 {
	if !validSeconds(seconds) {
		return 0
	}
	r := amount / seconds
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0
	}
	return r
}

// mbps turns a byte count over seconds into megabits per second.
func mbps(bytes uint64, seconds float64) float64 { return rate(float64(bytes)*8/1e6, seconds) }

// ProcCPU returns a process's CPU use between readings a and b, seconds apart, in cores.
// Cores comes from the threads' nanosecond schedstat times (Tasks) when both readings have
// them and no thread of a exited before b (a new thread counts from zero); otherwise from
// utime+stime, in 10 ms units. UserCores and SysCores split Cores in the proportion of the
// utime and stime deltas (both 0 when the process got less than one 10 ms unit).
// CoresPerGbps is left 0 (fill it with result.CoresPerGbps). It returns zeros when seconds is
// not positive, when a and b are of different processes (Start differs), and for any counter
// that went backwards.
func ProcCPU(a, b ProcTimes, seconds float64) result.CPU {
	c, _ := procCPU(a, b, seconds)
	return c
}

// procCPU is ProcCPU, also telling whether Cores came from the nanosecond thread times.
func procCPU(a, b ProcTimes, seconds float64) (result.CPU, bool) {
	if !validSeconds(seconds) || (a.Start != 0 && b.Start != 0 && a.Start != b.Start) {
		return result.CPU{}, false
	}
	user := rate(dsec(a.User, b.User), seconds)
	sys := rate(dsec(a.System, b.System), seconds)
	run, precise := taskSeconds(a.Tasks, b.Tasks)
	if !precise {
		return result.CPU{Cores: user + sys, UserCores: user, SysCores: sys}, false
	}
	c := result.CPU{Cores: rate(run, seconds)}
	if ticks := user + sys; ticks > 0 {
		c.UserCores = c.Cores * user / ticks
		c.SysCores = c.Cores - c.UserCores
	}
	return c, true
}

// taskSeconds returns the CPU seconds the threads used between readings a and b, and false
// when that cannot be told from them: either is nil, a thread of a is gone from b (its time
// since a is lost), or a thread's time went backwards.
func taskSeconds(a, b map[int]uint64) (float64, bool) {
	if a == nil || b == nil {
		return 0, false
	}
	for tid := range a {
		if _, ok := b[tid]; !ok {
			return 0, false
		}
	}
	var ns uint64
	for tid, nb := range b {
		na := a[tid]
		if nb < na {
			return 0, false
		}
		ns += nb - na
	}
	return float64(ns) / 1e9, true
}

// NodeCPU returns the machine's CPU use between readings a and b, seconds apart: see
// result.NodeBetween for what each figure is (BusyCores from the idle clocks, the split from
// the tick-sampled columns). CoresPerGbps is left 0; NumCPU is b's.
func NodeCPU(a, b NodeTimes, seconds float64) result.Node {
	return result.NodeBetween(a.Sample(0), b.Sample(0), seconds, b.NumCPU)
}

// Sample turns a reading into a result.NodeSample taken at unixNano.
func (t NodeTimes) Sample(unixNano int64) result.NodeSample {
	return result.NodeSample{TUnixNano: unixNano, User: t.User, Nice: t.Nice, System: t.System, Idle: t.Idle,
		IOWait: t.IOWait, IRQ: t.IRQ, SoftIRQ: t.SoftIRQ, Steal: t.Steal}
}

// Loopback is the name of the loopback interface.
const Loopback = "lo"

// IfaceDelta returns the traffic of every interface between readings a and b, seconds apart:
// every interface present in b (one absent from a counts from zero: it appeared during the
// window). The totals are left zero: Select picks the interface they are of. Byte and packet
// counts are kept when seconds <= 0; rates are then 0.
func IfaceDelta(a, b map[string]DevCounters, seconds float64) result.Iface {
	out := result.Iface{Interfaces: make(map[string]result.IfaceCount, len(b))}
	for name, cb := range b {
		ca := a[name]
		c := result.IfaceCount{
			RxBytes:   dcount(ca.RxBytes, cb.RxBytes),
			TxBytes:   dcount(ca.TxBytes, cb.TxBytes),
			RxPackets: dcount(ca.RxPackets, cb.RxPackets),
			TxPackets: dcount(ca.TxPackets, cb.TxPackets),
		}
		c.RxMbps = mbps(c.RxBytes, seconds)
		c.TxMbps = mbps(c.TxBytes, seconds)
		out.Interfaces[name] = c
	}
	return out
}

// SelectIface sets i's name and totals to those of the interface name; false (and i's
// totals left alone) when i has no such interface.
func SelectIface(i *result.Iface, name string) bool {
	c, ok := i.Interfaces[name]
	if !ok || name == "" {
		return false
	}
	i.Name = name
	i.RxBytes, i.TxBytes, i.RxMbps, i.TxMbps = c.RxBytes, c.TxBytes, c.RxMbps, c.TxMbps
	return true
}

// TCPDelta returns the namespace-wide TCP segment counts between readings a and b (0 for a
// counter that went backwards). Retransmits (per-socket TCP_INFO) is not known here.
func TCPDelta(a, b TCPCounters) result.TCP {
	return result.TCP{
		NsInSegs:      dcount(a.InSegs, b.InSegs),
		NsOutSegs:     dcount(a.OutSegs, b.OutSegs),
		NsRetransSegs: dcount(a.RetransSegs, b.RetransSegs),
	}
}
