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
// CoresPerGbps is left 0 (fill it with result.CoresPerGbps). It returns zeros when seconds is
// not positive, when a and b are of different processes (Start differs), and for any counter
// that went backwards.
func ProcCPU(a, b ProcTimes, seconds float64) result.CPU {
	if !validSeconds(seconds) || (a.Start != 0 && b.Start != 0 && a.Start != b.Start) {
		return result.CPU{}
	}
	user := rate(dsec(a.User, b.User), seconds)
	sys := rate(dsec(a.System, b.System), seconds)
	return result.CPU{Cores: user + sys, UserCores: user, SysCores: sys}
}

// NodeCPU returns the machine's CPU use between readings a and b, seconds apart. BusyCores is
// the time this machine's own work used (user, nice, system, irq, softirq) per second: steal,
// time the hypervisor gave to others, is reported apart (StealCores), not as busy;
// UserCores includes nice; IdlePct is 100*(idle+iowait)/(all time). CoresPerGbps is left 0.
// Counters that went backwards count as 0; seconds <= 0 gives zeros (NumCPU is still set).
func NodeCPU(a, b NodeTimes, seconds float64) result.Node {
	n := result.Node{NumCPU: b.NumCPU}
	if !validSeconds(seconds) {
		return n
	}
	user := dsec(a.User, b.User) + dsec(a.Nice, b.Nice)
	sys := dsec(a.System, b.System)
	irq := dsec(a.IRQ, b.IRQ)
	softirq := dsec(a.SoftIRQ, b.SoftIRQ)
	steal := dsec(a.Steal, b.Steal)
	idle := dsec(a.Idle, b.Idle)
	iowait := dsec(a.IOWait, b.IOWait)
	busy := user + sys + irq + softirq
	total := busy + steal + idle + iowait

	n.BusyCores = rate(busy, seconds)
	n.UserCores = rate(user, seconds)
	n.SysCores = rate(sys, seconds)
	n.SoftirqCores = rate(softirq, seconds)
	n.IRQCores = rate(irq, seconds)
	n.StealCores = rate(steal, seconds)
	n.IOWaitCores = rate(iowait, seconds)
	if total > 0 {
		n.IdlePct = 100 * (idle + iowait) / total
	}
	return n
}

// Loopback is the name of the loopback interface.
const Loopback = "lo"

// IfaceDelta returns the interface traffic between readings a and b, seconds apart: every
// interface present in b (one absent from a counts from zero: it appeared during the window),
// and totals summed over the non-loopback interfaces, or loopback's alone when no other
// interface moved a byte (a loopback run). Interfaces that are bridged or stacked (bridge and
// its ports, ifb) are summed as they are, as sar would show them. Byte and packet counts are
// kept when seconds <= 0; rates are then 0.
func IfaceDelta(a, b map[string]DevCounters, seconds float64) result.Iface {
	out := result.Iface{Interfaces: make(map[string]result.IfaceCount, len(b))}
	var rx, tx uint64
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
		if name != Loopback {
			rx += c.RxBytes
			tx += c.TxBytes
		}
	}
	if rx == 0 && tx == 0 {
		lo := out.Interfaces[Loopback]
		rx, tx = lo.RxBytes, lo.TxBytes
	}
	out.RxBytes, out.TxBytes = rx, tx
	out.RxMbps, out.TxMbps = mbps(rx, seconds), mbps(tx, seconds)
	return out
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
