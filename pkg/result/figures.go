package result

// Modes of a run (Run.Mode): what the run is for.
const (
	// ModeBandwidth is an unpaced run at saturation: it gives the bandwidth figures (Mbps,
	// interface Mbps, retransmits, set-up time).
	ModeBandwidth = "bandwidth"
	// ModeCost is a paced run at a fixed offered load that leaves the CPUs idle: it gives the
	// cost figures (cores, cores per Gbps, sidecar, kernel, total, machine busy).
	ModeCost = "cost"
	// modeRatio marks the figures computed against the baseline (Row.VsBaseline).
	modeRatio = "ratio"
)

// CoresPerGbpsOf says what every cores-per-Gbps figure of a row divides by (Row.CoresPerGbpsOf).
const CoresPerGbpsOf = "client application Mbps of the cost runs"

// SaturationBusyFraction is the share of a machine's cores above which a cost figure is marked
// saturated: busier than this, the CPU a component used is capped by the cores available and
// "cores per Gbps" turns into "cores available / bandwidth".
const SaturationBusyFraction = 0.8

// Figure keys: GateResult.Figure, Delta.Figure, and the JSON names of the Row's Stats.
const (
	FigClientMbps             = "client_mbps"
	FigServerMbps             = "server_mbps"
	FigClientIfaceMbps        = "client_iface_mbps"
	FigServerIfaceMbps        = "server_iface_mbps"
	FigRetransmits            = "retransmits"
	FigSetupSeconds           = "setup_seconds"
	FigCostLoadMbps           = "cost_load_mbps"
	FigClientCores            = "client_cores"
	FigServerCores            = "server_cores"
	FigSidecarClientCores     = "sidecar_client_cores"
	FigSidecarServerCores     = "sidecar_server_cores"
	FigClientNodeBusyCores    = "client_node_busy_cores"
	FigServerNodeBusyCores    = "server_node_busy_cores"
	FigForwarderNodeBusyCores = "forwarder_node_busy_cores"
	FigMachineBusyCores       = "machine_busy_cores"
	FigKernelCores            = "kernel_cores"
	FigClientCoresPerGbps     = "client_cores_per_gbps"
	FigServerCoresPerGbps     = "server_cores_per_gbps"
	FigSidecarCoresPerGbps    = "sidecar_cores_per_gbps"
	FigKernelCoresPerGbps     = "kernel_cores_per_gbps"
	FigTotalCoresPerGbps      = "total_cores_per_gbps"
	FigSidecarPerApp          = "sidecar_per_app"
	FigBandwidthRatio         = "bandwidth_ratio"
	// FigCostRatio is the total cost ratio (total cores/Gbps over the baseline's).
	FigCostRatio        = "cost_ratio"
	FigClientCostRatio  = "client_cost_ratio"
	FigServerCostRatio  = "server_cost_ratio"
	FigKernelCostRatio  = "kernel_cost_ratio"
	FigSidecarCostRatio = "sidecar_cost_ratio"
	// FigFailedRuns counts repeats that produced no usable records (gated at 0, always).
	FigFailedRuns = "failed_runs"
)

// Which way a figure improves.
const (
	higherIsBetter = 1
	lowerIsBetter  = -1
	neutral        = 0
)

// figure describes one figure of a Row: where it comes from and how it reads. It is the one
// place that knows the figures; aggregation, gates, comparison and labels all use it.
type figure struct {
	key, label string
	// mode is ModeBandwidth or ModeCost (taken from the runs of that mode) or modeRatio.
	mode   string
	better int
	// run returns the figure of one run (nil: not measured); nil for ratio figures.
	run func(*RunFigures) *float64
	// get returns the row's Stat (nil: the row has none, e.g. no sidecar or no baseline).
	get func(*Row) *Stat
	// set stores an aggregate into the row (figures of runs only).
	set func(*Row, Stat)
}

// optStat returns a pointer to s, or nil when s holds nothing.
func optStat(s Stat) *Stat {
	if s.N == 0 {
		return nil
	}
	return &s
}

// vsGet reads a ratio Stat of the row's comparison with its baseline (nil without one).
func vsGet(f func(*Comparison) *Stat) func(*Row) *Stat {
	return func(r *Row) *Stat {
		if r.VsBaseline == nil {
			return nil
		}
		return f(r.VsBaseline)
	}
}

var figures = []figure{
	{FigClientMbps, "client Mbps", ModeBandwidth, higherIsBetter,
		func(f *RunFigures) *float64 { return &f.ClientMbps },
		func(r *Row) *Stat { return &r.ClientMbps }, func(r *Row, s Stat) { r.ClientMbps = s }},
	{FigServerMbps, "server Mbps", ModeBandwidth, higherIsBetter,
		func(f *RunFigures) *float64 { return &f.ServerMbps },
		func(r *Row) *Stat { return &r.ServerMbps }, func(r *Row, s Stat) { r.ServerMbps = s }},
	{FigClientIfaceMbps, "client iface Mbps", ModeBandwidth, higherIsBetter,
		func(f *RunFigures) *float64 { return f.ClientIfaceMbps },
		func(r *Row) *Stat { return &r.ClientIfaceMbps }, func(r *Row, s Stat) { r.ClientIfaceMbps = s }},
	{FigServerIfaceMbps, "server iface Mbps", ModeBandwidth, higherIsBetter,
		func(f *RunFigures) *float64 { return f.ServerIfaceMbps },
		func(r *Row) *Stat { return &r.ServerIfaceMbps }, func(r *Row, s Stat) { r.ServerIfaceMbps = s }},
	{FigRetransmits, "retransmits", ModeBandwidth, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.Retransmits },
		func(r *Row) *Stat { return &r.Retransmits }, func(r *Row, s Stat) { r.Retransmits = s }},
	{FigSetupSeconds, "set-up seconds", ModeBandwidth, lowerIsBetter,
		func(f *RunFigures) *float64 { return &f.SetupSeconds },
		func(r *Row) *Stat { return &r.SetupSeconds }, func(r *Row, s Stat) { r.SetupSeconds = s }},

	{FigCostLoadMbps, "client Mbps of the cost runs", ModeCost, neutral,
		func(f *RunFigures) *float64 { return &f.ClientMbps },
		func(r *Row) *Stat { return &r.CostLoadMbps }, func(r *Row, s Stat) { r.CostLoadMbps = s }},
	{FigClientCores, "client cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ClientCores },
		func(r *Row) *Stat { return &r.ClientCores }, func(r *Row, s Stat) { r.ClientCores = s }},
	{FigServerCores, "server cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ServerCores },
		func(r *Row) *Stat { return &r.ServerCores }, func(r *Row, s Stat) { r.ServerCores = s }},
	{FigSidecarClientCores, "client-side sidecar cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.SidecarClientCores },
		func(r *Row) *Stat { return r.SidecarClientCores }, func(r *Row, s Stat) { r.SidecarClientCores = optStat(s) }},
	{FigSidecarServerCores, "server-side sidecar cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.SidecarServerCores },
		func(r *Row) *Stat { return r.SidecarServerCores }, func(r *Row, s Stat) { r.SidecarServerCores = optStat(s) }},
	{FigClientNodeBusyCores, "client node busy cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ClientNodeBusy },
		func(r *Row) *Stat { return &r.ClientNodeBusyCores }, func(r *Row, s Stat) { r.ClientNodeBusyCores = s }},
	{FigServerNodeBusyCores, "server node busy cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ServerNodeBusy },
		func(r *Row) *Stat { return &r.ServerNodeBusyCores }, func(r *Row, s Stat) { r.ServerNodeBusyCores = s }},
	{FigForwarderNodeBusyCores, "forwarding node busy cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ForwarderNodeBusy },
		func(r *Row) *Stat { return r.ForwarderNodeBusyCores }, func(r *Row, s Stat) { r.ForwarderNodeBusyCores = optStat(s) }},
	{FigMachineBusyCores, "machine busy cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.MachineBusyCores },
		func(r *Row) *Stat { return &r.MachineBusyCores }, func(r *Row, s Stat) { r.MachineBusyCores = s }},
	{FigKernelCores, "kernel cores", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.KernelCores },
		func(r *Row) *Stat { return &r.KernelCores }, func(r *Row, s Stat) { r.KernelCores = s }},
	{FigClientCoresPerGbps, "client cores/Gbps", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ClientCoresPerGbps },
		func(r *Row) *Stat { return &r.ClientCoresPerGbps }, func(r *Row, s Stat) { r.ClientCoresPerGbps = s }},
	{FigServerCoresPerGbps, "server cores/Gbps", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.ServerCoresPerGbps },
		func(r *Row) *Stat { return &r.ServerCoresPerGbps }, func(r *Row, s Stat) { r.ServerCoresPerGbps = s }},
	{FigSidecarCoresPerGbps, "sidecar cores/Gbps", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.SidecarCoresPerGbps },
		func(r *Row) *Stat { return r.SidecarCoresPerGbps }, func(r *Row, s Stat) { r.SidecarCoresPerGbps = optStat(s) }},
	{FigSidecarPerApp, "sidecar CPU over the client's and server's CPU", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.SidecarPerApp },
		func(r *Row) *Stat { return r.SidecarPerApp }, func(r *Row, s Stat) { r.SidecarPerApp = optStat(s) }},
	{FigKernelCoresPerGbps, "kernel cores/Gbps", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.KernelCoresPerGbps },
		func(r *Row) *Stat { return &r.KernelCoresPerGbps }, func(r *Row, s Stat) { r.KernelCoresPerGbps = s }},
	{FigTotalCoresPerGbps, "total cores/Gbps", ModeCost, lowerIsBetter,
		func(f *RunFigures) *float64 { return f.TotalCoresPerGbps },
		func(r *Row) *Stat { return &r.TotalCoresPerGbps }, func(r *Row, s Stat) { r.TotalCoresPerGbps = s }},

	{FigBandwidthRatio, "client Mbps ratio to baseline", modeRatio, higherIsBetter, nil,
		vsGet(func(c *Comparison) *Stat { return &c.BandwidthRatio }), nil},
	{FigCostRatio, "total cores/Gbps ratio to baseline", modeRatio, lowerIsBetter, nil,
		vsGet(func(c *Comparison) *Stat { return &c.CostRatio }), nil},
	{FigClientCostRatio, "client cores/Gbps ratio to baseline", modeRatio, lowerIsBetter, nil,
		vsGet(func(c *Comparison) *Stat { return &c.ClientCostRatio }), nil},
	{FigServerCostRatio, "server cores/Gbps ratio to baseline", modeRatio, lowerIsBetter, nil,
		vsGet(func(c *Comparison) *Stat { return &c.ServerCostRatio }), nil},
	{FigKernelCostRatio, "kernel cores/Gbps ratio to baseline", modeRatio, lowerIsBetter, nil,
		vsGet(func(c *Comparison) *Stat { return &c.KernelCostRatio }), nil},
	{FigSidecarCostRatio, "sidecar cores/Gbps over the baseline's total cores/Gbps", modeRatio, lowerIsBetter, nil,
		vsGet(func(c *Comparison) *Stat { return c.SidecarCostRatio }), nil},
}

// figureByKey finds a figure by key.
func figureByKey(key string) (figure, bool) {
	for _, f := range figures {
		if f.key == key {
			return f, true
		}
	}
	return figure{}, false
}

// FigureLabel returns the human name of a figure key (the key itself when unknown).
func FigureLabel(key string) string {
	if key == FigFailedRuns {
		return "failed repeats"
	}
	if f, ok := figureByKey(key); ok {
		return f.label
	}
	return key
}

// modeMatches reports whether a run of mode runMode gives the figures of mode want. A run
// without a mode (records written before modes existed: one run gave both) matches both.
func modeMatches(runMode, want string) bool {
	return runMode == "" || runMode == want
}

// isCostFigure reports whether key is a cost figure (a cost run's figure or a cost ratio):
// the ones a saturated machine makes meaningless.
func isCostFigure(key string) bool {
	f, ok := figureByKey(key)
	if !ok {
		return false
	}
	return f.mode == ModeCost || (f.mode == modeRatio && key != FigBandwidthRatio)
}
