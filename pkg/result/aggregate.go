package result

import (
	"fmt"
	"math"
	"sort"
)

// WatchSidecar is the Record.Watched key of a sidecar proxy. The client record's
// Watched[WatchSidecar] is the client-side proxy (the one in the client pod), the server
// record's is the server-side proxy.
const WatchSidecar = "sidecar"

// Run pairs the records of one repetition of one scenario.
//
// Sidecar CPU is read from the records themselves (Client.Watched["sidecar"] is the client-side
// proxy, Server.Watched["sidecar"] the server-side one), so a Run needs no extra field for it.
type Run struct {
	Scenario string
	// Repeat numbers the repetition (0, 1, 2 ...). Baseline run (Mode, i) is paired with
	// scenario run (Mode, i) when ratios are computed, since the e2e suite alternates them.
	Repeat int
	// Mode is ModeBandwidth (unpaced: bandwidth figures) or ModeCost (paced at a load that
	// leaves the CPUs idle: cost figures). A run without a mode gives both (the records of
	// summaries written before modes existed).
	Mode   string
	Server *Record
	Client *Record
	// Forwarder is optional: the `tcpload sample` record of a node that forwards the traffic
	// (NodePort); only its Node figures are used.
	Forwarder *Record
	// SharedNode says that every record of the run measured the same machine (one kernel: the
	// local provider, or pods on one node). Then machine busy cores are the mean of the records'
	// Node.BusyCores instead of their sum. When false it is still assumed if client and server
	// records name the same non-empty Host.
	SharedNode bool
	// Error is set when the repeat failed (a process exited with an error, a record is
	// missing): the run is dropped from the figures and listed, with its error, in the row.
	Error string
}

// RunFigures are the figures of one run, before aggregation. Cores are CPU-seconds per second;
// every cores-per-Gbps figure divides by this run's client application Mbps. A nil figure was
// not measured (a part named in a record's Unmeasured, a missing sidecar or node figure, or a
// zero client Mbps for a per-Gbps figure); it is absent from the JSON, never 0.
type RunFigures struct {
	Repeat int    `json:"repeat"`
	Mode   string `json:"mode,omitempty"`
	// Saturated is true when a machine of the run was busier than SaturationBusyFraction of its
	// cores: its cost figures are capped by the cores available.
	Saturated          bool     `json:"saturated,omitempty"`
	ClientMbps         float64  `json:"client_mbps"`
	ServerMbps         float64  `json:"server_mbps"`
	ClientIfaceMbps    *float64 `json:"client_iface_mbps,omitempty"`
	ServerIfaceMbps    *float64 `json:"server_iface_mbps,omitempty"`
	ClientCores        *float64 `json:"client_cores,omitempty"`
	ServerCores        *float64 `json:"server_cores,omitempty"`
	SidecarClientCores *float64 `json:"sidecar_client_cores,omitempty"`
	SidecarServerCores *float64 `json:"sidecar_server_cores,omitempty"`
	ClientNodeBusy     *float64 `json:"client_node_busy_cores,omitempty"`
	ServerNodeBusy     *float64 `json:"server_node_busy_cores,omitempty"`
	ForwarderNodeBusy  *float64 `json:"forwarder_node_busy_cores,omitempty"`
	// ForwarderUnmeasured says why a forwarding node's figures are missing ("" when measured or
	// when the path has none).
	ForwarderUnmeasured string   `json:"forwarder_unmeasured,omitempty"`
	MachineBusyCores    *float64 `json:"machine_busy_cores,omitempty"`
	// MachineCores is the number of cores MachineBusyCores is out of (0: unknown).
	MachineCores int      `json:"machine_cores,omitempty"`
	KernelCores  *float64 `json:"kernel_cores,omitempty"`
	TotalCores   *float64 `json:"total_cores,omitempty"`
	// KernelUnmeasured says why the kernel share (and so the total) could not be measured: the
	// processes' or the machine's CPU was not read, or the processes exceeded the machine by
	// more than the reading tolerance (KernelTolerance). Within the tolerance of zero the share
	// may be slightly negative: it is not clamped.
	KernelUnmeasured    string   `json:"kernel_unmeasured,omitempty"`
	ClientCoresPerGbps  *float64 `json:"client_cores_per_gbps,omitempty"`
	ServerCoresPerGbps  *float64 `json:"server_cores_per_gbps,omitempty"`
	SidecarCoresPerGbps *float64 `json:"sidecar_cores_per_gbps,omitempty"`
	KernelCoresPerGbps  *float64 `json:"kernel_cores_per_gbps,omitempty"`
	TotalCoresPerGbps   *float64 `json:"total_cores_per_gbps,omitempty"`
	// SidecarPerApp is both sidecars' CPU over the client's and server's own (tcpload's) CPU in
	// the same run (a ratio of cores, so of cores per Gbps too): what the sidecars cost in units
	// of the workload's own cost, free of the baseline's noise.
	SidecarPerApp *float64 `json:"sidecar_per_app,omitempty"`
	Retransmits   *float64 `json:"retransmits,omitempty"`
	SetupSeconds  float64  `json:"setup_seconds"`
}

// DroppedRun is a repeat left out of a row, with the reason.
type DroppedRun struct {
	Mode   string `json:"mode,omitempty"`
	Repeat int    `json:"repeat"`
	Error  string `json:"error"`
}

// Row is one line of the result table: one scenario aggregated over its repeats. Bandwidth
// figures are Stats over the bandwidth runs, cost figures Stats over the cost runs (runs
// without a mode count for both); a figure whose runs are absent or did not measure it has
// N == 0 ("not measured"), never 0.
type Row struct {
	Scenario string `json:"scenario"`
	Title    string `json:"title,omitempty"`
	// Repeats is the number of runs aggregated (both modes); BandwidthRuns and CostRuns split
	// it by mode (a run without a mode counts in both). Dropped is the number left out (a run
	// with Error set, a missing record, a record with Error set); DroppedRuns says why, and so
	// do Notes.
	Repeats       int          `json:"repeats"`
	BandwidthRuns int          `json:"bandwidth_runs"`
	CostRuns      int          `json:"cost_runs"`
	Dropped       int          `json:"dropped,omitempty"`
	DroppedRuns   []DroppedRun `json:"dropped_runs,omitempty"`
	// SharedNode is true when all records measured one machine (see Run.SharedNode).
	SharedNode bool `json:"shared_node"`

	// Bandwidth runs. Application Mbps as each process counted it.
	ClientMbps Stat `json:"client_mbps"`
	ServerMbps Stat `json:"server_mbps"`
	// Interface Mbps in each process's network namespace (/proc/net/dev, like `sar -n DEV` or a
	// cloud's NIC monitoring), in the direction of the data: the sender's tx, the receiver's rx.
	// They include TCP/IP headers and retransmissions.
	ClientIfaceMbps Stat `json:"client_iface_mbps"`
	ServerIfaceMbps Stat `json:"server_iface_mbps"`
	// Retransmits is the sum of the client's and server's TCP retransmissions over the window
	// (TCP.WindowRetransmits); not measured for records without it.
	Retransmits Stat `json:"retransmits"`
	// SetupSeconds is the longer of the two processes' set-up times (connections up + warm-up).
	SetupSeconds Stat `json:"setup_seconds"`

	// Cost runs. CostLoadMbps is the client application Mbps the cost was measured at (the
	// paced load); every *CoresPerGbps figure divides by it, run by run (CoresPerGbpsOf says so).
	CostLoadMbps   Stat   `json:"cost_load_mbps"`
	CoresPerGbpsOf string `json:"cores_per_gbps_of,omitempty"`
	// SaturatedCostRuns counts the cost runs whose machine was busier than
	// SaturationBusyFraction of its cores; CostSaturated is true when there was any. Gates on
	// cost figures do not pass on such rows (see Gate).
	SaturatedCostRuns int  `json:"saturated_cost_runs,omitempty"`
	CostSaturated     bool `json:"cost_saturated,omitempty"`

	ClientCores Stat `json:"client_cores"`
	ServerCores Stat `json:"server_cores"`
	// Sidecar proxy cores; nil when no run measured that sidecar.
	SidecarClientCores *Stat `json:"sidecar_client_cores,omitempty"`
	SidecarServerCores *Stat `json:"sidecar_server_cores,omitempty"`

	// Node.BusyCores of the client's and server's machines, and of the forwarding node (nil
	// without one).
	ClientNodeBusyCores    Stat  `json:"client_node_busy_cores"`
	ServerNodeBusyCores    Stat  `json:"server_node_busy_cores"`
	ForwarderNodeBusyCores *Stat `json:"forwarder_node_busy_cores,omitempty"`
	// MachineBusyCores is the busy cores of all machines in the path: with SharedNode the mean of
	// the records' node figures (they measured the same kernel), otherwise client node + server
	// node + forwarding node.
	MachineBusyCores Stat `json:"machine_busy_cores"`
	// KernelCores is MachineBusyCores minus the measured processes and sidecars: what the
	// kernel(s) spend on the path outside the processes' own context (softirq on other CPUs,
	// ksoftirqd, forwarding, iptables) plus anything else running on the machines. Not
	// clamped: runs where it could not be measured (RunFigures.KernelUnmeasured) are left out.
	KernelCores Stat `json:"kernel_cores"`

	// Cores per Gbps of the cost runs' client application throughput ("service demand").
	ClientCoresPerGbps  Stat  `json:"client_cores_per_gbps"`
	ServerCoresPerGbps  Stat  `json:"server_cores_per_gbps"`
	SidecarCoresPerGbps *Stat `json:"sidecar_cores_per_gbps,omitempty"` // both sidecars summed
	// SidecarPerApp is both sidecars' CPU over client + server CPU, run by run
	// (RunFigures.SidecarPerApp).
	SidecarPerApp      *Stat `json:"sidecar_per_app,omitempty"`
	KernelCoresPerGbps Stat  `json:"kernel_cores_per_gbps"`
	// TotalCoresPerGbps is (client + server + sidecars + kernel) per Gbps, i.e. the whole
	// path's cost (machine busy per Gbps; a kernel share below zero within the reading tolerance
	// counts as 0, so never less than the measured processes; left out where the kernel share
	// was not measured).
	TotalCoresPerGbps Stat `json:"total_cores_per_gbps"`

	// VsBaseline compares this row with the baseline row of the same run (nil until
	// CompareToBaseline).
	VsBaseline *Comparison `json:"vs_baseline,omitempty"`

	Notes []string     `json:"notes,omitempty"`
	Runs  []RunFigures `json:"runs,omitempty"`
}

// Comparison holds a row's ratios to the baseline row, each a Stat over the per-pair ratios
// (scenario run (Mode, i) over baseline run (Mode, i)).
type Comparison struct {
	// Baseline is the baseline's scenario name.
	Baseline string `json:"baseline"`
	// Pairs is the number of (baseline, scenario) run pairs the ratios came from (BandwidthPairs
	// of bandwidth runs, CostPairs of cost runs; a pair of runs without a mode counts in both
	// but once here). 0 means no run matched and the ratios are of the rows' aggregates instead
	// (median to median, min/max of the scenario against max/min of the baseline: the widest
	// range, with no samples).
	Pairs          int `json:"pairs"`
	BandwidthPairs int `json:"bandwidth_pairs"`
	CostPairs      int `json:"cost_pairs"`
	// SaturatedCostPairs counts the cost pairs in which either run was saturated.
	SaturatedCostPairs int `json:"saturated_cost_pairs,omitempty"`
	// BandwidthRatio is scenario client Mbps / baseline client Mbps (bandwidth runs).
	BandwidthRatio Stat `json:"bandwidth_ratio"`
	// CostRatio is scenario total cores per Gbps / baseline total cores per Gbps (cost runs).
	CostRatio Stat `json:"cost_ratio"`
	// Client, server and kernel cores per Gbps over the baseline's same component (cost runs).
	ClientCostRatio Stat `json:"client_cost_ratio"`
	ServerCostRatio Stat `json:"server_cost_ratio"`
	KernelCostRatio Stat `json:"kernel_cost_ratio"`
	// SidecarCostRatio is the sidecars' cores per Gbps over the baseline's TOTAL cores per Gbps
	// (a baseline has no sidecar): what the proxies cost in units of the whole plain path. Nil
	// without sidecars.
	SidecarCostRatio *Stat `json:"sidecar_cost_ratio,omitempty"`
}

// Aggregate turns the runs of one scenario, of both modes, into a Row: bandwidth figures from
// the bandwidth runs, cost figures from the cost runs (runs without a mode count for both). A
// run with Error set, or missing a client or server record, or whose records carry an Error,
// is dropped and listed in DroppedRuns and Notes. Aggregate never fails: with no usable run it
// returns a Row with Repeats == 0 and empty Stats ("not measured").
func Aggregate(scenario, title string, runs []Run) Row {
	row := Row{Scenario: scenario, Title: title}
	var notes noteSet
	var figs []RunFigures
	shared, noKernel, noBusy, stolen := 0, 0, 0, 0
	var maxSteal float64
	for _, r := range runs {
		if reason := unusable(r); reason != "" {
			row.Dropped++
			row.DroppedRuns = append(row.DroppedRuns, DroppedRun{Mode: r.Mode, Repeat: r.Repeat, Error: reason})
			notes.add(fmt.Sprintf("%s dropped: %s", runName(r.Mode, r.Repeat), reason))
			continue
		}
		f, sh, steal := figuresOf(r)
		if sh {
			shared++
		}
		if modeMatches(f.Mode, ModeCost) {
			row.CostRuns++
			if f.ForwarderUnmeasured != "" {
				notes.add(fmt.Sprintf("%s: %s", runName(r.Mode, r.Repeat), f.ForwarderUnmeasured))
			}
			if f.MachineBusyCores != nil && f.KernelUnmeasured != "" {
				noKernel++
				notes.add(fmt.Sprintf("%s: kernel share not measured: %s", runName(r.Mode, r.Repeat), f.KernelUnmeasured))
			}
			if f.MachineBusyCores == nil {
				noBusy++
			}
			if steal > 0 {
				stolen++
				maxSteal = max(maxSteal, steal)
			}
			if f.Saturated {
				row.SaturatedCostRuns++
			}
		}
		if modeMatches(f.Mode, ModeBandwidth) {
			row.BandwidthRuns++
		}
		// the forwarder's record notes are about its own record (its interfaces, its window);
		// what the row takes from it is its node over the client's window, and why not
		for _, rec := range []*Record{r.Client, r.Server} {
			if rec != nil {
				notes.add(rec.Notes...)
			}
		}
		figs = append(figs, f)
	}
	sort.SliceStable(figs, func(i, j int) bool {
		if figs[i].Repeat != figs[j].Repeat {
			return figs[i].Repeat < figs[j].Repeat
		}
		return figs[i].Mode < figs[j].Mode
	})
	row.Runs = figs
	row.Repeats = len(figs)
	row.SharedNode = len(figs) > 0 && shared == len(figs)
	row.CostSaturated = row.SaturatedCostRuns > 0
	if row.CostRuns > 0 {
		row.CoresPerGbpsOf = CoresPerGbpsOf
	}
	if shared > 0 && shared < len(figs) {
		notes.add(fmt.Sprintf("machine sharing differs between runs (%d of %d on one machine)", shared, len(figs)))
	}
	if noKernel > 0 {
		notes.add(fmt.Sprintf("kernel share not measured in %d of %d cost runs", noKernel, row.CostRuns))
	}
	if noBusy > 0 {
		notes.add(fmt.Sprintf("machine busy cores not measured in %d of %d cost runs; kernel share and total cost not measured there", noBusy, row.CostRuns))
	}
	if stolen > 0 {
		notes.add(fmt.Sprintf("the hypervisor stole up to %.2f cores in %d of %d cost runs: machine busy takes off the share of it that its busy time is of the window, an estimate: it, the kernel share and the total may be off by up to that much",
			maxSteal, stolen, row.CostRuns))
	}
	if row.SaturatedCostRuns > 0 {
		notes.add(fmt.Sprintf("cost measured on a saturated machine (busier than %.0f%% of its cores) in %d of %d cost runs: its cores per Gbps are capped by the cores available",
			SaturationBusyFraction*100, row.SaturatedCostRuns, row.CostRuns))
	}
	row.fill(figs)
	row.Notes = notes.list
	return row
}

// runName names a run in notes: "bandwidth run 2", "cost run 0" or "repeat 1" (no mode).
func runName(mode string, repeat int) string {
	if mode == "" {
		return fmt.Sprintf("repeat %d", repeat)
	}
	return fmt.Sprintf("%s run %d", mode, repeat)
}

// fill sets every figure of the row from the runs of its mode.
func (row *Row) fill(figs []RunFigures) {
	for _, fg := range figures {
		if fg.run == nil || fg.set == nil {
			continue
		}
		var xs []float64
		for i := range figs {
			if !modeMatches(figs[i].Mode, fg.mode) {
				continue
			}
			if p := fg.run(&figs[i]); p != nil {
				xs = append(xs, *p)
			}
		}
		fg.set(row, Summarize(xs))
	}
}

// unusable says why a run cannot be aggregated ("" when it can).
func unusable(r Run) string {
	switch {
	case r.Error != "":
		return r.Error
	case r.Mode != "" && r.Mode != ModeBandwidth && r.Mode != ModeCost:
		return fmt.Sprintf("unknown mode %q (want %q or %q)", r.Mode, ModeBandwidth, ModeCost)
	case r.Client == nil && r.Server == nil:
		return "no client and no server record"
	case r.Client == nil:
		return "no client record"
	case r.Server == nil:
		return "no server record"
	case r.Client.Error != "":
		return "client: " + r.Client.Error
	case r.Server.Error != "":
		return "server: " + r.Server.Error
	}
	return ""
}

// Measured reports whether the record measured part (see Unmeasured). A nil record measured
// nothing.
func (r *Record) Measured(part string) bool {
	if r == nil {
		return false
	}
	for _, u := range r.Unmeasured {
		if u == part {
			return false
		}
	}
	return true
}

func ptr(v float64) *float64 { return &v }

// figuresOf computes one run's figures; shared reports whether its records measured one machine,
// steal how far its machine busy cores may be off (runSteal).
func figuresOf(r Run) (f RunFigures, shared bool, steal float64) {
	c, s := r.Client, r.Server
	f.Repeat, f.Mode = r.Repeat, r.Mode
	f.ClientMbps = clean(c.Mbps)
	f.ServerMbps = clean(s.Mbps)
	if serverSends(c, s) {
		f.ServerIfaceMbps = measuredPtr(s, UnmeasuredIface, s.Iface.TxMbps)
		f.ClientIfaceMbps = measuredPtr(c, UnmeasuredIface, c.Iface.RxMbps)
	} else {
		f.ServerIfaceMbps = measuredPtr(s, UnmeasuredIface, s.Iface.RxMbps)
		f.ClientIfaceMbps = measuredPtr(c, UnmeasuredIface, c.Iface.TxMbps)
	}
	f.ClientCores = measuredPtr(c, UnmeasuredCPU, c.CPU.Cores)
	f.ServerCores = measuredPtr(s, UnmeasuredCPU, s.CPU.Cores)
	// every process on the path must be measured for the kernel share (machine minus them)
	allProcs := f.ClientCores != nil && f.ServerCores != nil
	var sidecars float64
	sidecarSeen, sidecarsMeasured := false, true
	for _, side := range []struct {
		rec *Record
		dst **float64
	}{{c, &f.SidecarClientCores}, {s, &f.SidecarServerCores}} {
		cpu, ok := side.rec.Watched[WatchSidecar]
		switch {
		case !side.rec.Measured(UnmeasuredWatched + WatchSidecar):
			sidecarSeen, sidecarsMeasured, allProcs = true, false, false
		case ok:
			v := clean(cpu.Cores)
			*side.dst = &v
			sidecars += v
			sidecarSeen = true
		}
	}
	f.ClientNodeBusy = nodeBusy(c)
	f.ServerNodeBusy = nodeBusy(s)
	fwd, fwdOK, fwdWhy := forwarderNode(r)
	f.ForwarderUnmeasured = fwdWhy
	if fwdOK {
		f.ForwarderNodeBusy = ptr(clean(fwd.BusyCores))
	}
	shared = r.SharedNode || (c.Host != "" && c.Host == s.Host)
	var machine float64
	if shared {
		machine = meanPositive(deref(f.ClientNodeBusy), deref(f.ServerNodeBusy))
		f.MachineCores = max(c.Node.NumCPU, s.Node.NumCPU)
		f.Saturated = saturated(machine, f.MachineCores)
	} else if f.ClientNodeBusy != nil && f.ServerNodeBusy != nil && (r.Forwarder == nil || fwdOK && fwd.BusyCores > 0) {
		// separate machines: the sum is only meaningful when every node was measured
		machine = *f.ClientNodeBusy + *f.ServerNodeBusy
		f.MachineCores = c.Node.NumCPU + s.Node.NumCPU
		f.Saturated = saturated(*f.ClientNodeBusy, c.Node.NumCPU) || saturated(*f.ServerNodeBusy, s.Node.NumCPU)
		if fwdOK {
			machine += fwd.BusyCores
			f.MachineCores += fwd.NumCPU
			f.Saturated = f.Saturated || saturated(fwd.BusyCores, fwd.NumCPU)
		}
	}
	if machine > 0 {
		f.MachineBusyCores = ptr(machine)
	}
	steal = runSteal(c, s, fwd, fwdOK, shared)
	if machine > 0 && allProcs {
		measured := *f.ClientCores + *f.ServerCores + sidecars
		k, why := kernelShare(c, s, machine, measured)
		if why == "" {
			f.KernelCores = ptr(k)
			// a share below zero is zero within the reading error (kernelShare): the measured
			// processes, read to the nanosecond, are the floor of the total
			f.TotalCores = ptr(measured + max(k, 0))
		}
		f.KernelUnmeasured = why
	}
	perGbps := func(cores *float64) *float64 {
		if cores == nil || f.ClientMbps <= 0 {
			return nil
		}
		return ptr(*cores / (f.ClientMbps / 1000))
	}
	f.ClientCoresPerGbps = perGbps(f.ClientCores)
	f.ServerCoresPerGbps = perGbps(f.ServerCores)
	if sidecarSeen && sidecarsMeasured {
		f.SidecarCoresPerGbps = perGbps(&sidecars)
		if f.ClientCores != nil && f.ServerCores != nil && *f.ClientCores+*f.ServerCores > 0 {
			f.SidecarPerApp = ptr(sidecars / (*f.ClientCores + *f.ServerCores))
		}
	}
	f.KernelCoresPerGbps = perGbps(f.KernelCores)
	f.TotalCoresPerGbps = perGbps(f.TotalCores)
	if c.Measured(UnmeasuredTCP) && s.Measured(UnmeasuredTCP) && c.TCP.WindowRetransmits != nil && s.TCP.WindowRetransmits != nil {
		f.Retransmits = ptr(float64(*c.TCP.WindowRetransmits) + float64(*s.TCP.WindowRetransmits))
	}
	f.SetupSeconds = math.Max(clean(c.SetupSeconds), clean(s.SetupSeconds))
	return f, shared, steal
}

// measuredPtr returns v when rec measured part, else nil.
func measuredPtr(rec *Record, part string, v float64) *float64 {
	if !rec.Measured(part) {
		return nil
	}
	return ptr(clean(v))
}

// nodeBusy returns the record's node busy cores, nil when not measured (named unmeasured, or 0:
// a machine running tcpload is never idle, so 0 is what records without a node reading held).
func nodeBusy(rec *Record) *float64 {
	if !rec.Measured(UnmeasuredNode) || !(clean(rec.Node.BusyCores) > 0) {
		return nil
	}
	return ptr(rec.Node.BusyCores)
}

// runSteal returns the steal behind a run's machine busy cores: how far the estimate of the part
// of it that fell in busy time (NodeBetween) may be off. That is the steal of the one machine
// when client and server share it (shared), else the sum over the client's, the server's and
// the forwarder's nodes (fwd, when fwdOK), whose busy cores are summed too. It is 0 when no
// machine's steal exceeds the reading tolerance of its window.
func runSteal(c, s *Record, fwd Node, fwdOK, shared bool) float64 {
	var sum, most float64
	above := false
	add := func(n Node, seconds float64) {
		st := clean(n.StealCores)
		sum += st
		most = max(most, st)
		above = above || st > KernelTolerance(seconds, n.NumCPU, 0)
	}
	for _, rec := range []*Record{c, s} {
		if rec.Measured(UnmeasuredNode) {
			add(rec.Node, rec.Seconds)
		}
	}
	if !shared && fwdOK {
		add(fwd, c.Seconds)
	}
	switch {
	case !above:
		return 0
	case shared:
		return most
	default:
		return sum
	}
}

// saturated reports whether busy cores exceed SaturationBusyFraction of cores (false when the
// number of cores is unknown).
func saturated(busy float64, cores int) bool {
	return cores > 0 && busy > SaturationBusyFraction*float64(cores)
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// serverSends decides the direction of the data: the records' Sending flags first, then their
// Direction, and server-push (the seed's workload) when neither says.
func serverSends(c, s *Record) bool {
	switch {
	case s.Sending:
		return true
	case c.Sending:
		return false
	case c.Direction == "client-push" || s.Direction == "client-push":
		return false
	}
	return true
}

// meanPositive averages the values that are > 0 (0 when none is).
func meanPositive(xs ...float64) float64 {
	var sum float64
	n := 0
	for _, x := range xs {
		if x > 0 {
			sum += x
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// noteSet keeps notes in order without duplicates.
type noteSet struct {
	list []string
	seen map[string]bool
}

func (n *noteSet) add(notes ...string) {
	for _, s := range notes {
		if s == "" || n.seen[s] {
			continue
		}
		if n.seen == nil {
			n.seen = map[string]bool{}
		}
		n.seen[s] = true
		n.list = append(n.list, s)
	}
}
