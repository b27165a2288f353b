package result

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchmath"
)

// Bound kinds.
const (
	BoundMin = "min"
	BoundMax = "max"
)

// Gate statuses.
const (
	GatePass = "pass"
	// GateWarn: the confidence interval straddles the bound (the difference is within the
	// noise), or a cost figure was measured on a saturated machine in some (not most) runs; the
	// gate does not fail.
	GateWarn = "warn"
	GateFail = "fail"
	// GateSkip: the bound does not apply (e.g. a sidecar ceiling in a scenario without sidecar).
	GateSkip = "skip"
)

// How a gate was decided (GateResult.DecidedBy).
const (
	DecidedByCI     = "confidence interval"
	DecidedByMedian = "median"
)

// ConfInterval is a confidence interval of a median.
type ConfInterval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Confidence is the interval's actual coverage (order statistics give at least the level
	// asked for).
	Confidence float64 `json:"confidence"`
}

// GateResult is one bound checked against one row.
type GateResult struct {
	Scenario  string  `json:"scenario"`
	Figure    string  `json:"figure"`
	Bound     string  `json:"bound"` // "min" or "max"
	Threshold float64 `json:"threshold"`
	Measured  Stat    `json:"measured"`
	// CI is the confidence interval of the median the gate was judged by; nil when there were
	// too few samples and the median decided (DecidedBy says which).
	CI        *ConfInterval `json:"ci,omitempty"`
	DecidedBy string        `json:"decided_by,omitempty"`
	// Saturated is true when the status was set by the saturation rule (see Gate), not by the
	// figure's distance to the bound.
	Saturated bool   `json:"saturated,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

// Violation is a failed gate.
type Violation struct {
	Scenario  string
	Figure    string
	Bound     string // "min" or "max"
	Threshold float64
	Measured  Stat
	CI        *ConfInterval
	// Saturated: the figure failed because it was measured on a saturated machine.
	Saturated bool
	// Reason says why it failed beyond the numbers (not measured, saturated, too few samples).
	Reason string
}

// String describes the violation, e.g. "gr+istio: client Mbps ratio to baseline median 0.41
// (min 0.39, max 0.44, n=5), 90% CI [0.39, 0.44] is below the floor 0.50".
func (v Violation) String() string {
	lbl := FigureLabel(v.Figure)
	if v.Measured.N == 0 {
		r := v.Reason
		if r == "" {
			r = NotMeasured
		}
		return fmt.Sprintf("%s: %s %s (%s %s)", v.Scenario, lbl, r, boundNoun(v.Bound), numExact(v.Threshold))
	}
	if v.Saturated {
		return fmt.Sprintf("%s: %s %s%s cannot be judged against the %s %s: %s", v.Scenario, lbl, describe(v.Measured), ciText(v.CI),
			boundNoun(v.Bound), numExact(v.Threshold), v.Reason)
	}
	out := fmt.Sprintf("%s: %s %s%s is %s the %s %s", v.Scenario, lbl, describe(v.Measured), ciText(v.CI), beyondWord(v.Bound), boundNoun(v.Bound), numExact(v.Threshold))
	if v.Reason != "" {
		out += " (" + v.Reason + ")"
	}
	return out
}

// String describes the gate result on one line, prefixed with PASS, WARN, FAIL or SKIP.
func (g GateResult) String() string {
	lbl := FigureLabel(g.Figure)
	switch g.Status {
	case GateFail:
		return "FAIL " + g.Violation().String()
	case GateSkip:
		return fmt.Sprintf("SKIP %s: %s %s %s: %s", g.Scenario, lbl, boundNoun(g.Bound), numExact(g.Threshold), g.Reason)
	}
	op := ">="
	if g.Bound == BoundMax {
		op = "<="
	}
	out := fmt.Sprintf("%s %s: %s %s%s %s %s %s", strings.ToUpper(g.Status), g.Scenario, lbl, describe(g.Measured), ciText(g.CI), op, boundNoun(g.Bound), numExact(g.Threshold))
	if g.Reason != "" {
		out += ": " + g.Reason
	}
	return out
}

// Violation converts the result to a Violation (meaningful when Status is GateFail).
func (g GateResult) Violation() Violation {
	return Violation{Scenario: g.Scenario, Figure: g.Figure, Bound: g.Bound, Threshold: g.Threshold,
		Measured: g.Measured, CI: g.CI, Saturated: g.Saturated, Reason: g.Reason}
}

func boundNoun(b string) string {
	if b == BoundMax {
		return "ceiling"
	}
	return "floor"
}

func beyondWord(b string) string {
	if b == BoundMax {
		return "above"
	}
	return "below"
}

// ciText renders ", 90% CI [lo, hi]" (empty for nil).
func ciText(ci *ConfInterval) string {
	if ci == nil {
		return ""
	}
	return fmt.Sprintf(", %s%% CI [%s, %s]", strconv.FormatFloat(math.Floor(ci.Confidence*1000)/10, 'f', -1, 64), Num(ci.Lo), Num(ci.Hi))
}

// describe renders a Stat as "median X (min A, max B, n=N)", or "X (n=1)".
func describe(s Stat) string {
	if s.N == 0 {
		return NotMeasured
	}
	if s.N == 1 {
		return fmt.Sprintf("%s (n=1)", Num(s.Median))
	}
	return fmt.Sprintf("median %s (min %s, max %s, n=%d)", Num(s.Median), Num(s.Min), Num(s.Max), s.N)
}

// Num formats a figure compactly: no decimals from 100 up, one from 10, two below, and three
// significant digits under 0.1 (so 0.05 stays 0.05). Non-finite values print as "n/a".
func Num(x float64) string {
	if !finite(x) {
		return "n/a"
	}
	a := math.Abs(x)
	switch {
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 0.1 || a == 0:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// numExact formats a threshold: like Num, but with all its digits when Num would round it
// (0.405 stays 0.405, so it is never shown equal to a measured 0.41).
func numExact(x float64) string {
	n := Num(x)
	if v, err := strconv.ParseFloat(n, 64); err == nil && v == x {
		return n
	}
	if e := strconv.FormatFloat(x, 'f', -1, 64); len(e) <= 12 {
		return e
	}
	return n
}

// MedianCI returns the confidence interval of the median of xs at level confidence, from
// order statistics as benchstat computes it (golang.org/x/perf/benchmath, AssumeNothing: no
// assumption about the distribution). ok is false when there are too few values for a
// two-sided interval at that level (then need says how many it takes).
func MedianCI(xs []float64, confidence float64) (ci ConfInterval, ok bool, need string) {
	vals := make([]float64, 0, len(xs))
	for _, x := range xs {
		if finite(x) {
			vals = append(vals, x)
		}
	}
	if len(vals) == 0 {
		return ConfInterval{}, false, "at least 1 value"
	}
	s := benchmath.AssumeNothing.Summary(benchmath.NewSample(vals, &benchmath.DefaultThresholds), confidence)
	if math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) || math.IsNaN(s.Lo) || math.IsNaN(s.Hi) {
		for _, w := range s.Warnings {
			need, _, _ = strings.Cut(strings.TrimPrefix(w.Error(), "need "), " for ")
		}
		return ConfInterval{}, false, need
	}
	return ConfInterval{Lo: s.Lo, Hi: s.Hi, Confidence: s.Confidence}, true, ""
}

// Gate checks every active bound of b against row and returns one GateResult per bound, in a
// fixed order.
//
// The rule ("a gate fails only on a difference larger than the noise"): a figure's samples are
// the per-run values (for ratios to the baseline: the per-pair ratios of the alternating runs,
// so drift of the machine cancels within each pair). Their median gets a confidence interval
// at level b.Confidence (DefaultConfidence, 0.90, when unset) from order statistics, as
// benchstat does (benchmath.AssumeNothing). The gate
//
//   - FAILS when the interval lies entirely beyond the bound (the difference is larger than
//     the noise),
//   - WARNS when the interval straddles the bound (within the noise: not a failure),
//   - PASSES when the interval lies entirely within the bound (touching it counts as within).
//
// With too few samples for a two-sided interval (fewer than 5 at 0.90, 6 at 0.95) the median
// decides alone, beyond the bound fails and within passes, and the result says so
// (DecidedBy == "median" and a Reason naming how many samples an interval needs).
//
// What cannot be judged does not pass: a figure that was not measured (n = 0) fails, except
// a sidecar ceiling in a row without sidecar, which is skipped; a ratio bound fails when the
// row was not compared with a baseline; a cost figure (cores, cores per Gbps, cost ratios)
// measured on a saturated machine (busier than 80 % of its cores) fails when most of its runs
// (pairs, for ratios) were saturated and turns a pass into a warning when some were: such a
// figure is "cores available / bandwidth", not the path's cost. A row whose repeats failed
// (Row.Dropped > 0) fails a "failed_runs" gate of its own, whatever the thresholds say.
func Gate(row Row, b Bounds) []GateResult {
	conf := DefaultConfidence
	if b.Confidence.Active() && b.Confidence.Value >= 0.5 && b.Confidence.Value < 1 {
		conf = b.Confidence.Value
	}
	var out []GateResult
	add := func(fig, bound string, l Limit) {
		if !l.Active() {
			return
		}
		g := GateResult{Scenario: row.Scenario, Figure: fig, Bound: bound, Threshold: l.Value}
		if !finite(l.Value) || l.Value < 0 { // only possible for Bounds built in code
			g.Threshold, g.Status, g.Reason = 0, GateFail, fmt.Sprintf("invalid threshold %v", l.Value)
			out = append(out, g)
			return
		}
		def, _ := figureByKey(fig)
		st := def.get(&row)
		isSidecar := fig == FigSidecarCoresPerGbps || fig == FigSidecarCostRatio || fig == FigSidecarPerApp
		switch {
		case def.mode == modeRatio && row.VsBaseline == nil:
			g.Status, g.Reason = GateFail, "not compared with a baseline"
		case st == nil && isSidecar && bound == BoundMax:
			g.Status, g.Reason = GateSkip, "no sidecar measured"
		case st == nil && isSidecar:
			g.Status, g.Reason = GateFail, "no sidecar measured"
		case st == nil || st.N == 0:
			g.Status, g.Reason = GateFail, NotMeasured
		default:
			g.Measured = *st
			_, xs := figureSamples(&row, def)
			g.Status, g.Reason, g.CI, g.DecidedBy = judge(*st, xs, bound, l.Value, conf)
			if isCostFigure(fig) {
				before := g.Status
				g.Status, g.Reason = saturationRule(row, def.mode, g.Status, g.Reason)
				g.Saturated = g.Status != before
			}
		}
		out = append(out, g)
	}
	add(FigClientMbps, BoundMin, b.MinClientMbps)
	add(FigBandwidthRatio, BoundMin, b.MinBandwidthRatio)
	add(FigSidecarCoresPerGbps, BoundMin, b.MinSidecarCoresPerGbps)
	add(FigClientCostRatio, BoundMax, b.MaxCostRatio.Client)
	add(FigServerCostRatio, BoundMax, b.MaxCostRatio.Server)
	add(FigSidecarCostRatio, BoundMax, b.MaxCostRatio.Sidecar)
	add(FigSidecarPerApp, BoundMax, b.MaxSidecarPerApp)
	add(FigKernelCostRatio, BoundMax, b.MaxCostRatio.Kernel)
	add(FigCostRatio, BoundMax, b.MaxCostRatio.Total)
	add(FigClientCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Client)
	add(FigServerCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Server)
	add(FigSidecarCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Sidecar)
	add(FigKernelCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Kernel)
	add(FigTotalCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Total)
	add(FigSetupSeconds, BoundMax, b.MaxSetupSeconds)
	add(FigRetransmits, BoundMax, b.MaxRetransmits)
	if row.Dropped > 0 { // a repeat that failed is a failed measurement, whatever the bounds
		d := float64(row.Dropped)
		g := GateResult{Scenario: row.Scenario, Figure: FigFailedRuns, Bound: BoundMax,
			Measured: Stat{N: 1, Median: d, Min: d, Max: d, Mean: d}, Status: GateFail}
		var errs []string
		for _, dr := range row.DroppedRuns {
			errs = append(errs, runName(dr.Mode, dr.Repeat)+": "+dr.Error)
		}
		g.Reason = strings.Join(errs, "; ")
		out = append(out, g)
	}
	return out
}

// saturationRule applies the saturation rule of Gate to a cost figure's status.
func saturationRule(row Row, mode, status, reason string) (string, string) {
	sat, total, unit := row.SaturatedCostRuns, row.CostRuns, "cost runs"
	if mode == modeRatio && row.VsBaseline != nil {
		sat, total, unit = row.VsBaseline.SaturatedCostPairs, row.VsBaseline.CostPairs, "cost pairs"
	}
	if sat == 0 || total == 0 {
		return status, reason
	}
	note := fmt.Sprintf("measured on a saturated machine in %d of %d %s", sat, total, unit)
	if reason != "" {
		note = reason + "; " + note
	}
	switch {
	case 2*sat > total:
		return GateFail, note
	case status == GatePass:
		return GateWarn, note
	}
	return status, note
}

// judge applies the rule documented on Gate to one figure: st is its Stat, xs its samples (nil
// when the summary kept none).
func judge(st Stat, xs []float64, bound string, t, confidence float64) (status, reason string, ci *ConfInterval, decidedBy string) {
	if st.N == 0 {
		return GateFail, NotMeasured, nil, ""
	}
	beyond := func(x float64) bool {
		if bound == BoundMax {
			return x > t
		}
		return x < t
	}
	iv, ok, need := MedianCI(xs, confidence)
	if !ok {
		reason = fmt.Sprintf("n=%d: too few for a %s%% confidence interval", st.N, strconv.FormatFloat(confidence*100, 'f', -1, 64))
		if need != "" {
			reason += " (need " + need + ")"
		}
		if len(xs) == 0 {
			reason = fmt.Sprintf("n=%d: no per-run samples kept", st.N)
		}
		reason += "; the median decides"
		if beyond(st.Median) { // for n = 2 the median is the mean of the two
			return GateFail, reason, nil, DecidedByMedian
		}
		return GatePass, reason, nil, DecidedByMedian
	}
	ci = &iv
	lo, hi := iv.Lo, iv.Hi
	switch {
	case bound == BoundMax && lo > t, bound == BoundMin && hi < t:
		return GateFail, "", ci, DecidedByCI
	case bound == BoundMax && hi <= t, bound == BoundMin && lo >= t:
		return GatePass, "", ci, DecidedByCI
	}
	return GateWarn, "the confidence interval straddles the bound: within the noise", ci, DecidedByCI
}

// Check returns the violations of b by row (the failed gates of Gate).
func Check(row Row, b Bounds) []Violation {
	var out []Violation
	for _, g := range Gate(row, b) {
		if g.Status == GateFail {
			out = append(out, g.Violation())
		}
	}
	return out
}

// BaselinePrefix starts the name of the baseline rows the e2e suite measures alongside each
// scenario ("baseline:gr").
const BaselinePrefix = "baseline:"

// IsBaseline reports whether row is a baseline of s: named by s.Baseline, or named with
// BaselinePrefix.
func (s *Summary) IsBaseline(row Row) bool {
	return (s.Baseline != "" && row.Scenario == s.Baseline) || strings.HasPrefix(row.Scenario, BaselinePrefix)
}

// ApplyGates checks every scenario row against t.For(row.Scenario), stores all results in
// s.Gates and returns the violations. Baseline rows (IsBaseline) are not gated against the
// thresholds, which are written for scenarios compared with a baseline; a baseline row whose
// repeats failed still fails its failed_runs gate. A nil t checks nothing.
func (s *Summary) ApplyGates(t *Thresholds) []Violation {
	s.Gates = nil
	var out []Violation
	for _, row := range s.Rows {
		b := t.For(row.Scenario)
		if s.IsBaseline(row) {
			b = Bounds{}
		}
		if t == nil {
			continue
		}
		for _, g := range Gate(row, b) {
			s.Gates = append(s.Gates, g)
			if g.Status == GateFail {
				out = append(out, g.Violation())
			}
		}
	}
	return out
}
