package usage

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/pathcost/pathcost/pkg/result"
)

// partFigure maps a Snapshot part to the record's name for the figures it feeds.
var partFigure = map[string]string{
	PartProcess:    result.UnmeasuredCPU,
	PartNode:       result.UnmeasuredNode,
	PartInterfaces: result.UnmeasuredIface,
	PartTCP:        result.UnmeasuredTCP,
}

// Fill writes u into rec: the window's edges, this process's CPU, the node, the interfaces
// (totals of the interface named iface, the one that carried the session), the namespace's
// TCP counters and the watched processes. Every cores_per_gbps divides by rec.Mbps when
// rec.PerGbpsOf is result.PerGbpsOfMbps and is left 0 otherwise (set Mbps and PerGbpsOf
// first). What was not measured is listed in rec.Unmeasured with the reason in rec.Notes:
// parts not read at both edges, watched processes missing at either edge, and the session's
// interface when iface is "" (ifaceWhy says why) or was not among the interfaces read.
func (u Usage) Fill(rec *result.Record, iface, ifaceWhy string) {
	rec.WindowStartUnixNano, rec.WindowEndUnixNano = u.Start.UnixNano(), u.End.UnixNano()
	perGbps := func(cores float64) float64 {
		if rec.PerGbpsOf != result.PerGbpsOfMbps {
			return 0
		}
		return result.CoresPerGbps(cores, rec.Mbps)
	}
	rec.CPU = u.CPU
	rec.CPU.CoresPerGbps = perGbps(u.CPU.Cores)
	rec.Node = u.Node
	rec.Node.CoresPerGbps = perGbps(u.Node.BusyCores)
	rec.Iface = u.Iface
	rec.TCP.NsInSegs, rec.TCP.NsOutSegs, rec.TCP.NsRetransSegs = u.TCP.NsInSegs, u.TCP.NsOutSegs, u.TCP.NsRetransSegs
	for name, c := range u.Watched {
		if rec.Watched == nil {
			rec.Watched = map[string]result.CPU{}
		}
		c.CoresPerGbps = perGbps(c.Cores)
		rec.Watched[name] = c
	}
	for _, part := range u.Unmeasured {
		Unmeasured(rec, partFigure[part], fmt.Sprintf("%s counters could not be read at both window edges: the %s figures are not measured", part, partFigure[part]))
	}
	for _, name := range u.Missing {
		Unmeasured(rec, result.UnmeasuredWatched+name, fmt.Sprintf("watched %q could not be sampled at both window edges: its CPU is not measured", name))
	}
	for _, name := range u.Coarse {
		rec.Notes = append(rec.Notes, fmt.Sprintf("CPU of %s from utime/stime in 10 ms units (a thread exited during the window, or the kernel keeps no per-thread times)", name))
	}
	switch {
	case slices.Contains(u.Unmeasured, PartInterfaces):
	case iface == "":
		Unmeasured(rec, result.UnmeasuredIface, "the session's interface is unknown: "+ifaceWhy)
	case !SelectIface(&rec.Iface, iface):
		Unmeasured(rec, result.UnmeasuredIface, fmt.Sprintf("the session's interface %s is not in this network namespace's /proc/net/dev", iface))
	}
}

// Unmeasured adds figure to rec.Unmeasured (once) and the reason to rec.Notes.
func Unmeasured(rec *result.Record, figure, why string) {
	if !slices.Contains(rec.Unmeasured, figure) {
		rec.Unmeasured = append(rec.Unmeasured, figure)
	}
	rec.Notes = append(rec.Notes, why)
}

// InterfaceOf returns the name of the interface of the calling thread's network namespace
// that holds the local address ip (the address a connection is bound to): the interface that
// carries that connection's packets. A loopback address not assigned to any interface as such
// (127.0.0.2) is lo's: the kernel routes the whole loopback range through it.
func InterfaceOf(ip netip.Addr) (string, error) {
	ip = ip.Unmap().WithZone("")
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("find the interface of %s: %w", ip, err)
	}
	loopback := ""
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 && loopback == "" {
			loopback = ifc.Name
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if have, ok := netip.AddrFromSlice(n.IP); ok && have.Unmap() == ip {
				return ifc.Name, nil
			}
		}
	}
	if ip.IsLoopback() && loopback != "" {
		return loopback, nil
	}
	return "", fmt.Errorf("find the interface of %s: no interface of this network namespace holds it", ip)
}

// InterfaceOfAddr is InterfaceOf for an "ip:port" or "ip" string (a Result's Local).
func InterfaceOfAddr(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("find the session's interface: no local address (no connection was made)")
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return "", fmt.Errorf("find the session's interface: bad address %q: %w", addr, perr)
		}
		ip = ap.Addr()
	}
	return InterfaceOf(ip)
}
