package result

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// Delta is the change of one figure of one scenario between two summaries.
type Delta struct {
	Scenario string `json:"scenario"`
	Figure   string `json:"figure"`
	Old      Stat   `json:"old"`
	New      Stat   `json:"new"`
	// ChangePct is (new median - old median) / old median in percent; nil when the old median
	// is 0 or either side was not measured.
	ChangePct *float64 `json:"change_pct,omitempty"`
	// Overlap reports whether the old and new [min, max] ranges intersect: a change whose ranges
	// overlap is within the noise.
	Overlap bool `json:"overlap"`
	// Only is "old" or "new" when the scenario (or figure) is in one summary only.
	Only string `json:"only,omitempty"`
}

// Significant reports whether the change is larger than the noise: both sides measured and
// their ranges disjoint.
// With fewer than MinRepeatsForRange repeats on either side there is no range to judge by.
func (d Delta) Significant() bool {
	return d.Only == "" && d.Old.N >= MinRepeatsForRange && d.New.N >= MinRepeatsForRange && !d.Overlap
}

// compareFigures are the figures Compare reports, in order.
var compareFigures = []struct {
	key string
	get func(Row) *Stat
}{
	{FigClientMbps, func(r Row) *Stat { return &r.ClientMbps }},
	{"server_mbps", func(r Row) *Stat { return &r.ServerMbps }},
	{"client_iface_mbps", func(r Row) *Stat { return &r.ClientIfaceMbps }},
	{"server_iface_mbps", func(r Row) *Stat { return &r.ServerIfaceMbps }},
	{"client_cores", func(r Row) *Stat { return &r.ClientCores }},
	{"server_cores", func(r Row) *Stat { return &r.ServerCores }},
	{"sidecar_client_cores", func(r Row) *Stat { return r.SidecarClientCores }},
	{"sidecar_server_cores", func(r Row) *Stat { return r.SidecarServerCores }},
	{"machine_busy_cores", func(r Row) *Stat { return &r.MachineBusyCores }},
	{FigClientCoresPerGbps, func(r Row) *Stat { return &r.ClientCoresPerGbps }},
	{FigServerCoresPerGbps, func(r Row) *Stat { return &r.ServerCoresPerGbps }},
	{FigSidecarCoresPerGbps, func(r Row) *Stat { return r.SidecarCoresPerGbps }},
	{FigKernelCoresPerGbps, func(r Row) *Stat { return &r.KernelCoresPerGbps }},
	{FigTotalCoresPerGbps, func(r Row) *Stat { return &r.TotalCoresPerGbps }},
	{FigBandwidthRatio, func(r Row) *Stat {
		if r.VsBaseline == nil {
			return nil
		}
		return &r.VsBaseline.BandwidthRatio
	}},
	{FigCostRatio, func(r Row) *Stat {
		if r.VsBaseline == nil {
			return nil
		}
		return &r.VsBaseline.CostRatio
	}},
	{FigRetransmits, func(r Row) *Stat { return &r.Retransmits }},
	{FigSetupSeconds, func(r Row) *Stat { return &r.SetupSeconds }},
}

func init() {
	for k, v := range map[string]string{
		"server_mbps":          "server Mbps",
		"client_iface_mbps":    "client iface Mbps",
		"server_iface_mbps":    "server iface Mbps",
		"client_cores":         "client cores",
		"server_cores":         "server cores",
		"sidecar_client_cores": "client-side sidecar cores",
		"sidecar_server_cores": "server-side sidecar cores",
		"machine_busy_cores":   "machine busy cores",
	} {
		figureLabels[k] = v
	}
}

// Compare lists, for every scenario of old and new (in old's order, then new-only scenarios)
// and every figure measured on either side, the old and new Stats, the change of the median in
// percent and whether the ranges overlap (what `tcpload compare OLD NEW` prints).
func Compare(old, new Summary) []Delta {
	var out []Delta
	newRows := make(map[string]Row, len(new.Rows))
	for _, r := range new.Rows {
		newRows[r.Scenario] = r
	}
	seen := map[string]bool{}
	for _, o := range old.Rows {
		seen[o.Scenario] = true
		n, ok := newRows[o.Scenario]
		if !ok {
			out = append(out, rowDeltas(o, nil)...)
			continue
		}
		out = append(out, rowDeltas(o, &n)...)
	}
	for _, n := range new.Rows {
		if !seen[n.Scenario] {
			seen[n.Scenario] = true
			out = append(out, rowDeltasNewOnly(n)...)
		}
	}
	return out
}

func rowDeltas(o Row, n *Row) []Delta {
	var out []Delta
	for _, f := range compareFigures {
		oldStat := f.get(o)
		var newStat *Stat
		if n != nil {
			newStat = f.get(*n)
		}
		d, ok := delta(o.Scenario, f.key, oldStat, newStat)
		if ok {
			out = append(out, d)
		}
	}
	return out
}

func rowDeltasNewOnly(n Row) []Delta {
	var out []Delta
	for _, f := range compareFigures {
		if d, ok := delta(n.Scenario, f.key, nil, f.get(n)); ok {
			out = append(out, d)
		}
	}
	return out
}

func delta(scenario, fig string, o, n *Stat) (Delta, bool) {
	d := Delta{Scenario: scenario, Figure: fig}
	has := func(s *Stat) bool { return s != nil && s.N > 0 }
	switch {
	case !has(o) && !has(n):
		return d, false
	case !has(n):
		d.Old, d.Only = *o, "old"
		return d, true
	case !has(o):
		d.New, d.Only = *n, "new"
		return d, true
	}
	d.Old, d.New = *o, *n
	d.Overlap = d.Old.Overlaps(d.New)
	if d.Old.Median != 0 {
		if v := (d.New.Median - d.Old.Median) / math.Abs(d.Old.Median) * 100; finite(v) {
			d.ChangePct = &v
		}
	}
	return d, true
}

// WriteDeltas renders deltas as an aligned text table: scenario, figure, old and new
// (median with min-max), change of the median, and "noise" when the ranges overlap or
// "CHANGED" when they do not.
func WriteDeltas(w io.Writer, deltas []Delta) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\told\tnew\tchange\tverdict")
	for _, d := range deltas {
		change, verdict := "n/a", ""
		if d.ChangePct != nil {
			change = fmt.Sprintf("%+.1f%%", *d.ChangePct)
		}
		switch {
		case d.Only != "":
			verdict = "only in " + d.Only
		case d.Old.N < MinRepeatsForRange || d.New.N < MinRepeatsForRange:
			verdict = fmt.Sprintf("? (n=%d/%d: too few repeats to tell from noise)", d.Old.N, d.New.N)
		case d.Overlap:
			verdict = "noise"
		default:
			verdict = "CHANGED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Scenario, FigureLabel(d.Figure), StatCell(d.Old), StatCell(d.New), change, verdict)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write deltas: %w", err)
	}
	return nil
}

// StatCell renders a Stat compactly as "median (min–max)", just "median" when all repeats
// agree or there is one, and "-" when not measured.
func StatCell(s Stat) string {
	if s.N == 0 {
		return "-"
	}
	m := Num(s.Median)
	lo, hi := Num(s.Min), Num(s.Max)
	if s.N == 1 || (lo == m && hi == m) {
		return m
	}
	return m + " (" + lo + "–" + hi + ")"
}
