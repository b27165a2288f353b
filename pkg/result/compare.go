package result

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchmath"
)

// CompareOptions tune Compare.
type CompareOptions struct {
	// Alpha is the significance level of the Mann-Whitney U test (0.05 when 0).
	Alpha float64
	// Confidence is the level of the medians' confidence intervals (DefaultConfidence, 0.90,
	// when 0: benchstat's 0.95 needs six repeats for an interval, 0.90 five).
	Confidence float64
	// TolerancePct is how much worse (in percent of the old median) a figure may get before a
	// significant change counts as a regression.
	TolerancePct float64
}

// DefaultTolerancePct is the tolerance of `tcpload compare` when none is given.
const DefaultTolerancePct = 5

// Delta is the change of one figure of one scenario between two summaries.
type Delta struct {
	Scenario string `json:"scenario"`
	Figure   string `json:"figure"`
	Label    string `json:"label"`
	Old      Stat   `json:"old"`
	New      Stat   `json:"new"`
	// OldCI and NewCI are the confidence intervals of the medians (nil with too few samples).
	OldCI *ConfInterval `json:"old_ci,omitempty"`
	NewCI *ConfInterval `json:"new_ci,omitempty"`
	// OldRange and NewRange are benchstat's "±x%": how far the interval reaches from the
	// median, in percent ("±∞" with too few samples).
	OldRange string `json:"old_range,omitempty"`
	NewRange string `json:"new_range,omitempty"`
	// ChangePct is (new median - old median) / |old median| in percent; nil when the old median
	// is 0 or either side was not measured.
	ChangePct *float64 `json:"change_pct,omitempty"`
	// P is the p-value of the Mann-Whitney U test between the old and new samples (nil when
	// either side has no samples).
	P     *float64 `json:"p,omitempty"`
	Alpha float64  `json:"alpha,omitempty"`
	// Significant is P < Alpha: the change is larger than the noise.
	Significant bool `json:"significant"`
	// Worse is true for a significant change in the direction that makes the path worse (less
	// bandwidth, more cost); Regression when it is also beyond the tolerance.
	Worse      bool `json:"worse,omitempty"`
	Regression bool `json:"regression,omitempty"`
	// Only is "old" or "new" when the scenario (or figure) is in one summary only.
	Only string `json:"only,omitempty"`
	// Hint explains a "~" that more repeats could turn into a verdict.
	Hint string `json:"hint,omitempty"`
	// Saturated is true for a cost figure whose old or new row measured its cost on a saturated
	// machine: the change may be one of the cores available, not of the path.
	Saturated bool `json:"saturated,omitempty"`
}

// Compare lists, for every scenario of old and new (in old's order, then new-only scenarios)
// and every figure measured on either side, the old and new samples with their medians'
// confidence intervals, the change of the median and a Mann-Whitney U test between the
// samples, as benchstat does (golang.org/x/perf/benchmath, AssumeNothing). A figure's samples
// are its per-run values (per-pair ratios for ratios to the baseline), taken from the Stat's
// Values or, for summaries written before Stats kept them, from the row's runs.
func Compare(old, new Summary, opt CompareOptions) []Delta {
	if opt.Alpha <= 0 {
		opt.Alpha = benchmath.DefaultThresholds.CompareAlpha
	}
	if opt.Confidence <= 0 || opt.Confidence >= 1 {
		opt.Confidence = DefaultConfidence
	}
	var out []Delta
	newRows := make(map[string]Row, len(new.Rows))
	for _, r := range new.Rows {
		newRows[r.Scenario] = r
	}
	seen := map[string]bool{}
	for _, o := range old.Rows {
		seen[o.Scenario] = true
		if n, ok := newRows[o.Scenario]; ok {
			out = append(out, rowDeltas(&o, &n, opt)...)
		} else {
			out = append(out, rowDeltas(&o, nil, opt)...)
		}
	}
	for _, n := range new.Rows {
		if !seen[n.Scenario] {
			seen[n.Scenario] = true
			out = append(out, rowDeltas(nil, &n, opt)...)
		}
	}
	return out
}

// CommonScenarios lists the scenarios present in both summaries, in old's order.
func CommonScenarios(old, new Summary) []string {
	in := map[string]bool{}
	for _, r := range new.Rows {
		in[r.Scenario] = true
	}
	var out []string
	for _, r := range old.Rows {
		if in[r.Scenario] {
			out = append(out, r.Scenario)
		}
	}
	return out
}

// Regressions returns the deltas that worsened significantly past the tolerance.
func Regressions(ds []Delta) []Delta {
	var out []Delta
	for _, d := range ds {
		if d.Regression {
			out = append(out, d)
		}
	}
	return out
}

// figureSamples returns the Stat and samples of figure fg in row (nil row: none).
func figureSamples(row *Row, fg figure) (Stat, []float64) {
	if row == nil {
		return Stat{}, nil
	}
	st := fg.get(row)
	if st == nil || st.N == 0 {
		return Stat{}, nil
	}
	if xs := st.samples(); xs != nil {
		return *st, xs
	}
	if fg.run == nil {
		return *st, nil
	}
	var xs []float64
	for i := range row.Runs {
		if !modeMatches(row.Runs[i].Mode, fg.mode) {
			continue
		}
		if p := fg.run(&row.Runs[i]); p != nil && finite(*p) {
			xs = append(xs, *p)
		}
	}
	if len(xs) != st.N {
		return *st, nil
	}
	return *st, xs
}

func rowDeltas(o, n *Row, opt CompareOptions) []Delta {
	var out []Delta
	scenario := ""
	if o != nil {
		scenario = o.Scenario
	} else {
		scenario = n.Scenario
	}
	for _, fg := range figures {
		os, oxs := figureSamples(o, fg)
		ns, nxs := figureSamples(n, fg)
		d := Delta{Scenario: scenario, Figure: fg.key, Label: fg.label, Old: os, New: ns}
		d.Saturated = isCostFigure(fg.key) && (o != nil && o.CostSaturated || n != nil && n.CostSaturated)
		switch {
		case os.N == 0 && ns.N == 0:
			continue
		case ns.N == 0:
			d.Only = "old"
			out = append(out, d)
			continue
		case os.N == 0:
			d.Only = "new"
			out = append(out, d)
			continue
		}
		if os.Median != 0 {
			if v := (ns.Median - os.Median) / math.Abs(os.Median) * 100; finite(v) {
				d.ChangePct = &v
			}
		}
		if oxs == nil || nxs == nil {
			d.Hint = "no per-run samples kept in the summary: no test"
			out = append(out, d)
			continue
		}
		th := &benchmath.Thresholds{CompareAlpha: opt.Alpha}
		s1, s2 := benchmath.NewSample(oxs, th), benchmath.NewSample(nxs, th)
		sum1 := benchmath.AssumeNothing.Summary(s1, opt.Confidence)
		sum2 := benchmath.AssumeNothing.Summary(s2, opt.Confidence)
		d.OldRange, d.NewRange = "±"+sum1.PctRangeString(), "±"+sum2.PctRangeString()
		d.OldCI, d.NewCI = summaryCI(sum1), summaryCI(sum2)
		c := benchmath.AssumeNothing.Compare(s1, s2)
		p := c.P
		d.P, d.Alpha = &p, c.Alpha
		d.Significant = c.P < c.Alpha
		if d.Significant && d.ChangePct != nil {
			d.Worse = float64(fg.better)**d.ChangePct < 0
			d.Regression = d.Worse && math.Abs(*d.ChangePct) > opt.TolerancePct
		}
		if !d.Significant {
			for _, w := range c.Warnings {
				if strings.HasPrefix(w.Error(), "need ") {
					d.Hint = fmt.Sprintf("n=%d+%d: %s; run more repeats", len(oxs), len(nxs), w.Error())
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// summaryCI returns the finite interval of a benchmath summary, or nil.
func summaryCI(s benchmath.Summary) *ConfInterval {
	if math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0) || math.IsNaN(s.Lo) || math.IsNaN(s.Hi) {
		return nil
	}
	return &ConfInterval{Lo: s.Lo, Hi: s.Hi, Confidence: s.Confidence}
}

// WriteDeltas renders deltas as an aligned text table in benchstat's manner: scenario, figure,
// old and new medians with the reach of their confidence intervals (±%), and the change of the
// median with the test's p-value and sample sizes, or "~" when the change is not significant.
// A significant change says "better" or "worse", and "REGRESSION" when it is worse past the
// tolerance; a hint says when more repeats could tell.
func WriteDeltas(w io.Writer, deltas []Delta) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\told\tnew\tdelta\tverdict")
	for _, d := range deltas {
		old, cur := cell(d.Old, d.OldRange), cell(d.New, d.NewRange)
		var delta, verdict string
		switch {
		case d.Only != "":
			delta, verdict = "", "only in "+d.Only
		case d.P == nil:
			delta = "?"
			if d.ChangePct != nil {
				delta = fmt.Sprintf("%+.2f%% ?", *d.ChangePct)
			}
			verdict = d.Hint
		case !d.Significant:
			delta = fmt.Sprintf("~ (p=%.3f n=%d+%d)", *d.P, d.Old.N, d.New.N)
			verdict = d.Hint
		default:
			pct := "n/a"
			if d.ChangePct != nil {
				pct = fmt.Sprintf("%+.2f%%", *d.ChangePct)
			}
			delta = fmt.Sprintf("%s (p=%.3f n=%d+%d)", pct, *d.P, d.Old.N, d.New.N)
			switch {
			case d.Regression:
				verdict = "REGRESSION"
			case d.Worse:
				verdict = "worse (within tolerance)"
			case d.ChangePct != nil && figureBetter(d.Figure) != neutral:
				verdict = "better"
			}
		}
		if d.Saturated {
			verdict = strings.TrimPrefix(verdict+"; cost saturated", "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Scenario, FigureLabel(d.Figure), old, cur, delta, verdict)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write deltas: %w", err)
	}
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if _, err := io.WriteString(w, strings.TrimRight(l, " \n")+strings.Repeat("\n", strings.Count(l, "\n"))); err != nil {
			return fmt.Errorf("write deltas: %w", err)
		}
	}
	return nil
}

func figureBetter(key string) int {
	f, _ := figureByKey(key)
	return f.better
}

// cell renders a median with its interval's reach: "3000 ±2%".
func cell(s Stat, rng string) string {
	if s.N == 0 {
		return NotMeasured
	}
	if rng == "" {
		return Num(s.Median)
	}
	return Num(s.Median) + " " + rng
}
