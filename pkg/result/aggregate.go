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
	// Repeat numbers the repetition (0, 1, 2 ...). Baseline run i is paired with scenario run i
	// when ratios are computed, since the e2e suite alternates them.
	Repeat int
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
}

// RunFigures are the figures of one run, before aggregation. Cores are CPU-seconds per second;
// cores per Gbps are normalised by the client's application Mbps and are 0 when it was 0
// (such values are left out of the Stats).
type RunFigures struct {
	Repeat             int      `json:"repeat"`
	ClientMbps         float64  `json:"client_mbps"`
	ServerMbps         float64  `json:"server_mbps"`
	ClientIfaceMbps    float64  `json:"client_iface_mbps"`
	ServerIfaceMbps    float64  `json:"server_iface_mbps"`
	ClientCores        float64  `json:"client_cores"`
	ServerCores        float64  `json:"server_cores"`
	SidecarClientCores *float64 `json:"sidecar_client_cores,omitempty"`
	SidecarServerCores *float64 `json:"sidecar_server_cores,omitempty"`
	ClientNodeBusy     float64  `json:"client_node_busy_cores"`
	ServerNodeBusy     float64  `json:"server_node_busy_cores"`
	ForwarderNodeBusy  *float64 `json:"forwarder_node_busy_cores,omitempty"`
	MachineBusyCores   float64  `json:"machine_busy_cores"`
	// KernelCores is MachineBusyCores minus the measured processes; within the reading
	// tolerance (KernelTolerance) of zero it may be slightly negative. When KernelUnmeasured
	// is set it was not measured (0 here, left out of the Stats) and TotalCores neither.
	KernelCores float64 `json:"kernel_cores"`
	TotalCores  float64 `json:"total_cores"`
	// KernelUnmeasured says why the kernel share (and so the total) could not be measured:
	// the processes' or the machine's CPU was not read, or the processes exceeded the machine
	// by more than the reading tolerance.
	KernelUnmeasured    string  `json:"kernel_unmeasured,omitempty"`
	ClientCoresPerGbps  float64 `json:"client_cores_per_gbps"`
	ServerCoresPerGbps  float64 `json:"server_cores_per_gbps"`
	SidecarCoresPerGbps float64 `json:"sidecar_cores_per_gbps"`
	KernelCoresPerGbps  float64 `json:"kernel_cores_per_gbps"`
	TotalCoresPerGbps   float64 `json:"total_cores_per_gbps"`
	Retransmits         float64 `json:"retransmits"`
	SetupSeconds        float64 `json:"setup_seconds"`
}

// Row is one line of the result table: one scenario aggregated over its repeats. Every figure
// is a Stat over the runs that produced both a client and a server record without error.
type Row struct {
	Scenario string `json:"scenario"`
	Title    string `json:"title,omitempty"`
	// Repeats is the number of runs aggregated; Dropped the number left out (missing record or
	// a record with Error set; the reason is in Notes).
	Repeats int `json:"repeats"`
	Dropped int `json:"dropped,omitempty"`
	// SharedNode is true when all records measured one machine (see Run.SharedNode).
	SharedNode bool `json:"shared_node"`

	// Application Mbps as each process counted it.
	ClientMbps Stat `json:"client_mbps"`
	ServerMbps Stat `json:"server_mbps"`
	// Interface Mbps in each process's network namespace (/proc/net/dev, like `sar -n DEV` or a
	// cloud's NIC monitoring), in the direction of the data: the sender's tx, the receiver's rx.
	// They include TCP/IP headers and retransmissions.
	ClientIfaceMbps Stat `json:"client_iface_mbps"`
	ServerIfaceMbps Stat `json:"server_iface_mbps"`

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

	// Cores per Gbps of client application throughput ("service demand").
	ClientCoresPerGbps  Stat  `json:"client_cores_per_gbps"`
	ServerCoresPerGbps  Stat  `json:"server_cores_per_gbps"`
	SidecarCoresPerGbps *Stat `json:"sidecar_cores_per_gbps,omitempty"` // both sidecars summed
	KernelCoresPerGbps  Stat  `json:"kernel_cores_per_gbps"`
	// TotalCoresPerGbps is (client + server + sidecars + kernel) per Gbps, i.e. the whole
	// path's cost (machine busy per Gbps; left out where the kernel share was not measured).
	TotalCoresPerGbps Stat `json:"total_cores_per_gbps"`

	// Retransmits is the sum of the client's and server's TCP_INFO total_retrans.
	Retransmits Stat `json:"retransmits"`
	// SetupSeconds is the longer of the two processes' set-up times (connections up + warm-up).
	SetupSeconds Stat `json:"setup_seconds"`

	// VsBaseline compares this row with the baseline row of the same run (nil until
	// CompareToBaseline).
	VsBaseline *Comparison `json:"vs_baseline,omitempty"`

	Notes []string     `json:"notes,omitempty"`
	Runs  []RunFigures `json:"runs,omitempty"`
}

// Comparison holds a row's ratios to the baseline row.
type Comparison struct {
	// Baseline is the baseline's scenario name.
	Baseline string `json:"baseline"`
	// Pairs is the number of (baseline run i, scenario run i) pairs the ratios came from; 0 means
	// no repeat numbers matched and the ratios are of the rows' aggregates instead (median to
	// median, min/max of the scenario against max/min of the baseline: the widest range).
	Pairs int `json:"pairs"`
	// BandwidthRatio is scenario client Mbps / baseline client Mbps.
	BandwidthRatio Stat `json:"bandwidth_ratio"`
	// CostRatio is scenario total cores per Gbps / baseline total cores per Gbps.
	CostRatio Stat `json:"cost_ratio"`
}

// Aggregate turns the runs of one scenario into a Row. Runs missing a client or server record,
// or whose records carry an Error, are dropped and named in Notes. Aggregate never fails: with
// no usable run it returns a Row with Repeats == 0 and empty Stats.
func Aggregate(scenario, title string, runs []Run) Row {
	row := Row{Scenario: scenario, Title: title}
	var notes noteSet
	var figs []RunFigures
	shared, noKernel, noBusy := 0, 0, 0
	for _, r := range runs {
		if reason := unusable(r); reason != "" {
			row.Dropped++
			notes.add(fmt.Sprintf("repeat %d dropped: %s", r.Repeat, reason))
			continue
		}
		f, sh := figuresOf(r)
		if sh {
			shared++
		}
		if f.MachineBusyCores > 0 && f.KernelUnmeasured != "" {
			noKernel++
			notes.add(fmt.Sprintf("repeat %d: kernel share not measured: %s", r.Repeat, f.KernelUnmeasured))
		}
		if f.MachineBusyCores <= 0 {
			noBusy++
		}
		for _, rec := range []*Record{r.Client, r.Server, r.Forwarder} {
			if rec != nil {
				notes.add(rec.Notes...)
			}
		}
		figs = append(figs, f)
	}
	sort.SliceStable(figs, func(i, j int) bool { return figs[i].Repeat < figs[j].Repeat })
	row.Runs = figs
	row.Repeats = len(figs)
	row.SharedNode = len(figs) > 0 && shared == len(figs)
	if shared > 0 && shared < len(figs) {
		notes.add(fmt.Sprintf("machine sharing differs between runs (%d of %d on one machine)", shared, len(figs)))
	}
	if noKernel > 0 {
		notes.add(fmt.Sprintf("kernel share not measured in %d of %d runs", noKernel, len(figs)))
	}
	if noBusy > 0 {
		notes.add(fmt.Sprintf("machine busy cores not measured in %d of %d runs; kernel share unknown there", noBusy, len(figs)))
	}
	row.fill(figs)
	row.Notes = notes.list
	return row
}

func (row *Row) fill(figs []RunFigures) {
	get := func(f func(RunFigures) float64) Stat {
		xs := make([]float64, 0, len(figs))
		for _, r := range figs {
			xs = append(xs, f(r))
		}
		return Summarize(xs)
	}
	opt := func(f func(RunFigures) *float64) *Stat {
		var xs []float64
		for _, r := range figs {
			if p := f(r); p != nil {
				xs = append(xs, *p)
			}
		}
		s := Summarize(xs)
		if s.N == 0 {
			return nil
		}
		return &s
	}
	row.ClientMbps = get(func(r RunFigures) float64 { return r.ClientMbps })
	row.ServerMbps = get(func(r RunFigures) float64 { return r.ServerMbps })
	row.ClientIfaceMbps = get(func(r RunFigures) float64 { return r.ClientIfaceMbps })
	row.ServerIfaceMbps = get(func(r RunFigures) float64 { return r.ServerIfaceMbps })
	row.ClientCores = get(func(r RunFigures) float64 { return r.ClientCores })
	row.ServerCores = get(func(r RunFigures) float64 { return r.ServerCores })
	row.SidecarClientCores = opt(func(r RunFigures) *float64 { return r.SidecarClientCores })
	row.SidecarServerCores = opt(func(r RunFigures) *float64 { return r.SidecarServerCores })
	row.ClientNodeBusyCores = get(func(r RunFigures) float64 { return r.ClientNodeBusy })
	row.ServerNodeBusyCores = get(func(r RunFigures) float64 { return r.ServerNodeBusy })
	row.ForwarderNodeBusyCores = opt(func(r RunFigures) *float64 { return r.ForwarderNodeBusy })
	// machine-wide figures exist only for runs whose machine CPU was measured: the others
	// leave these Stats empty (a gate on them then fails as "not measured", never passes on 0)
	machine := func(f func(RunFigures) float64) Stat {
		return get(func(r RunFigures) float64 {
			if r.MachineBusyCores <= 0 {
				return math.NaN()
			}
			return f(r)
		})
	}
	// the kernel share and the total exist only where the kernel share was measured
	kernel := func(f func(RunFigures) float64) Stat {
		return machine(func(r RunFigures) float64 {
			if r.KernelUnmeasured != "" {
				return math.NaN()
			}
			return f(r)
		})
	}
	row.MachineBusyCores = machine(func(r RunFigures) float64 { return r.MachineBusyCores })
	row.KernelCores = kernel(func(r RunFigures) float64 { return r.KernelCores })
	row.ClientCoresPerGbps = get(func(r RunFigures) float64 { return perGbpsOrNaN(r.ClientCoresPerGbps, r.ClientMbps) })
	row.ServerCoresPerGbps = get(func(r RunFigures) float64 { return perGbpsOrNaN(r.ServerCoresPerGbps, r.ClientMbps) })
	if row.SidecarClientCores != nil || row.SidecarServerCores != nil {
		s := get(func(r RunFigures) float64 {
			if r.SidecarClientCores == nil && r.SidecarServerCores == nil {
				return math.NaN()
			}
			return perGbpsOrNaN(r.SidecarCoresPerGbps, r.ClientMbps)
		})
		if s.N > 0 {
			row.SidecarCoresPerGbps = &s
		}
	}
	row.KernelCoresPerGbps = kernel(func(r RunFigures) float64 { return perGbpsOrNaN(r.KernelCoresPerGbps, r.ClientMbps) })
	row.TotalCoresPerGbps = kernel(func(r RunFigures) float64 { return perGbpsOrNaN(r.TotalCoresPerGbps, r.ClientMbps) })
	row.Retransmits = get(func(r RunFigures) float64 { return r.Retransmits })
	row.SetupSeconds = get(func(r RunFigures) float64 { return r.SetupSeconds })
}

// totalPerGbps is a run's whole cost per Gbps, NaN when its machine CPU or its kernel share
// was not measured.
func totalPerGbps(r RunFigures) float64 {
	if r.MachineBusyCores <= 0 || r.KernelUnmeasured != "" {
		return math.NaN()
	}
	return perGbpsOrNaN(r.TotalCoresPerGbps, r.ClientMbps)
}

// perGbpsOrNaN hides a cores-per-Gbps value whose throughput was 0 (undefined, stored as 0).
func perGbpsOrNaN(v, mbps float64) float64 {
	if !finite(mbps) || mbps <= 0 {
		return math.NaN()
	}
	return v
}

// unusable says why a run cannot be aggregated ("" when it can).
func unusable(r Run) string {
	switch {
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

// figuresOf computes one run's figures; shared reports whether its records measured one machine.
func figuresOf(r Run) (f RunFigures, shared bool) {
	c, s := r.Client, r.Server
	f.Repeat = r.Repeat
	f.ClientMbps = clean(c.Mbps)
	f.ServerMbps = clean(s.Mbps)
	if serverSends(c, s) {
		f.ServerIfaceMbps = clean(s.Iface.TxMbps)
		f.ClientIfaceMbps = clean(c.Iface.RxMbps)
	} else {
		f.ServerIfaceMbps = clean(s.Iface.RxMbps)
		f.ClientIfaceMbps = clean(c.Iface.TxMbps)
	}
	f.ClientCores = clean(c.CPU.Cores)
	f.ServerCores = clean(s.CPU.Cores)
	var sidecars float64
	if cpu, ok := c.Watched[WatchSidecar]; ok {
		v := clean(cpu.Cores)
		f.SidecarClientCores = &v
		sidecars += v
	}
	if cpu, ok := s.Watched[WatchSidecar]; ok {
		v := clean(cpu.Cores)
		f.SidecarServerCores = &v
		sidecars += v
	}
	f.ClientNodeBusy = clean(c.Node.BusyCores)
	f.ServerNodeBusy = clean(s.Node.BusyCores)
	if r.Forwarder != nil && r.Forwarder.Error == "" {
		v := clean(r.Forwarder.Node.BusyCores)
		f.ForwarderNodeBusy = &v
	}
	shared = r.SharedNode || (c.Host != "" && c.Host == s.Host)
	if shared {
		f.MachineBusyCores = meanPositive(f.ClientNodeBusy, f.ServerNodeBusy)
	} else if f.ClientNodeBusy > 0 && f.ServerNodeBusy > 0 && (r.Forwarder == nil || f.ForwarderNodeBusy != nil && *f.ForwarderNodeBusy > 0) {
		// separate machines: the sum is only meaningful when every node was measured
		f.MachineBusyCores = f.ClientNodeBusy + f.ServerNodeBusy
		if f.ForwarderNodeBusy != nil {
			f.MachineBusyCores += *f.ForwarderNodeBusy
		}
	}
	measured := f.ClientCores + f.ServerCores + sidecars
	if f.MachineBusyCores > 0 {
		k, why := kernelShare(c, s, f.MachineBusyCores, measured)
		if why == "" {
			f.KernelCores = k
			f.TotalCores = measured + k
		}
		f.KernelUnmeasured = why
	} else {
		f.TotalCores = measured
	}
	gbps := f.ClientMbps / 1000
	pg := func(cores float64) float64 {
		if gbps <= 0 {
			return 0
		}
		return cores / gbps
	}
	f.ClientCoresPerGbps = pg(f.ClientCores)
	f.ServerCoresPerGbps = pg(f.ServerCores)
	f.SidecarCoresPerGbps = pg(sidecars)
	f.KernelCoresPerGbps = pg(f.KernelCores)
	f.TotalCoresPerGbps = pg(f.TotalCores)
	f.Retransmits = float64(c.TCP.Retransmits) + float64(s.TCP.Retransmits)
	f.SetupSeconds = math.Max(clean(c.SetupSeconds), clean(s.SetupSeconds))
	return f, shared
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

// CompareToBaseline sets row.VsBaseline from baseline. Ratios are computed per pair of runs
// with the same Repeat number (baseline run i vs scenario run i: the e2e suite alternates
// them, so each pair saw the same machine state) and the Stat summarises the pair ratios. When
// no repeat numbers match, the ratios fall back to the rows' aggregates (see Comparison.Pairs).
// Pairs with a zero or unmeasured baseline figure are left out; nothing here yields NaN.
func CompareToBaseline(row *Row, baseline Row) {
	if row == nil {
		return
	}
	cmp := &Comparison{Baseline: baseline.Scenario}
	base := make(map[int]RunFigures, len(baseline.Runs))
	for _, b := range baseline.Runs {
		base[b.Repeat] = b
	}
	var bw, cost []float64
	for _, r := range row.Runs {
		b, ok := base[r.Repeat]
		if !ok {
			continue
		}
		cmp.Pairs++
		bw = append(bw, ratio(r.ClientMbps, b.ClientMbps))
		cost = append(cost, ratio(totalPerGbps(r), totalPerGbps(b)))
	}
	if cmp.Pairs > 0 {
		cmp.BandwidthRatio = Summarize(bw)
		cmp.CostRatio = Summarize(cost)
	} else {
		cmp.BandwidthRatio = statRatio(row.ClientMbps, baseline.ClientMbps)
		cmp.CostRatio = statRatio(row.TotalCoresPerGbps, baseline.TotalCoresPerGbps)
	}
	row.VsBaseline = cmp
}

// statRatio divides two aggregates: median by median, mean by mean, and the widest range
// (a.Min/b.Max .. a.Max/b.Min). Empty when either is empty or b's figures are not positive.
func statRatio(a, b Stat) Stat {
	if a.N == 0 || b.N == 0 {
		return Stat{}
	}
	med, lo, hi, mean := ratio(a.Median, b.Median), ratio(a.Min, b.Max), ratio(a.Max, b.Min), ratio(a.Mean, b.Mean)
	if !finite(med) || !finite(lo) || !finite(hi) || !finite(mean) {
		return Stat{}
	}
	return Stat{N: min(a.N, b.N), Median: med, Min: lo, Max: hi, Mean: mean}
}

// ApplyBaseline compares every row with the row named baseline (CompareToBaseline), the
// baseline row included (its ratios are 1). It fails when no row has that name.
func ApplyBaseline(rows []Row, baseline string) error {
	idx := -1
	for i := range rows {
		if rows[i].Scenario == baseline {
			idx = i
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("apply baseline: no row named %q among %d rows", baseline, len(rows))
	}
	b := rows[idx]
	b.VsBaseline = nil
	for i := range rows {
		CompareToBaseline(&rows[i], b)
	}
	return nil
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
