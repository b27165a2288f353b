package report

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/pathcost/pathcost/pkg/result"
)

// Chart geometry and colours.
const (
	svgWidth    = 960
	panelHeight = 260 // plot area height of each panel
	marginLeft  = 70
	marginRight = 24
	fontFamily  = "DejaVu Sans, Helvetica, Arial, sans-serif"
	colBar      = "#4e79a7"
	colBaseline = "#9aa5b1"
	colAxis     = "#333333"
	colGrid     = "#e3e3e3"
	colWhisker  = "#222222"
	colSat      = "#c0392b"
)

// costSegments are the stacked components of the cost panel, bottom to top.
var costSegments = []struct {
	key, label, color string
	get               func(result.Row) float64
}{
	{"client", "client", "#4e79a7", func(r result.Row) float64 { return med(&r.ClientCoresPerGbps) }},
	{"server", "server", "#f28e2b", func(r result.Row) float64 { return med(&r.ServerCoresPerGbps) }},
	{"sidecar", "sidecars", "#e15759", func(r result.Row) float64 { return med(r.SidecarCoresPerGbps) }},
	{"kernel", "kernel & rest of machine", "#76b7b2", func(r result.Row) float64 { return med(&r.KernelCoresPerGbps) }},
}

// med is the median of st, 0 when st is nil, empty or not finite.
func med(st *result.Stat) float64 {
	if st == nil || st.N == 0 || !finite(st.Median) {
		return 0
	}
	return math.Max(st.Median, 0)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// SVG writes a self-contained SVG chart of s with two panels: bandwidth at saturation, client
// Mbps of the bandwidth runs per scenario (bars of the median with min–max whiskers; the
// baseline in grey), and cost at equal load, cores per Gbps of the cost runs as stacked bars of
// the medians of client, server, sidecars and kernel, with a whisker for the range of the total
// and the load the cost was measured at under each bar. A cost measured on a saturated machine
// is hatched and labelled SATURATED; a figure not measured is written as such, never drawn as 0.
// Every bar carries a class ("bar-mbps", "bar-cost") and a data-scenario attribute (and
// data-saturated on saturated cost bars) so tests and scripts can find it.
func SVG(w io.Writer, s result.Summary) error {
	bw := bufio.NewWriter(w)
	c := &canvas{w: bw}
	n := len(s.Rows)

	slot := 0.0
	if n > 0 {
		slot = float64(svgWidth-marginLeft-marginRight) / float64(n)
	}
	// Rotate scenario labels when the longest does not fit its slot.
	longest := 0
	for _, r := range s.Rows {
		longest = max(longest, utf8.RuneCountInString(r.Scenario))
	}
	rotate := n > 0 && float64(longest)*7.2 > slot-8
	labelSpace := 30.0
	if rotate {
		labelSpace = math.Min(float64(longest)*7.2*0.71+24, 140)
	}

	top1 := 100.0
	top2 := top1 + panelHeight + labelSpace + 70
	height := top2 + panelHeight + labelSpace + 70

	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="%s">`+"\n",
		svgWidth, height, svgWidth, height, fontFamily)
	c.printf(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`+
		`<rect width="6" height="6" fill="none"/><line x1="0" y1="0" x2="0" y2="6" stroke="%s" stroke-width="2.2"/></pattern></defs>`+"\n", colSat)
	c.printf(`<rect x="0" y="0" width="%d" height="%.0f" fill="#ffffff"/>`+"\n", svgWidth, height)
	title := "pathcost: what the path costs"
	if s.Provider != "" {
		title += " (provider " + s.Provider + ")"
	}
	c.text(marginLeft, 28, title, `font-size="18" font-weight="bold" fill="#111"`)
	costTitle := "Cost at equal load: CPU cores per Gbps of the cost runs' client Mbps (load under each bar)"
	sub := "bandwidth: unpaced runs at saturation · cost: paced runs at equal load · medians over the runs, whiskers min–max"
	if !equalLoad(s.Rows) {
		costTitle = "Cost: CPU cores per Gbps of the cost runs' client Mbps — NOT at equal load (load under each bar)"
		sub = "bandwidth: unpaced runs at saturation · cost: at the loads under the bars · medians over the runs, whiskers min–max"
	}
	c.text(marginLeft, 46, sub, `font-size="12" fill="#555"`)
	if s.StartedAt != "" {
		c.text(marginLeft, 61, "started "+s.StartedAt, `font-size="12" fill="#555"`)
	}

	if n == 0 {
		c.text(svgWidth/2, top1+panelHeight/2, "no scenario was measured", `font-size="14" text-anchor="middle" fill="#555"`)
		c.printf("</svg>\n")
		return flushSVG(bw, c)
	}

	// Panel 1: client Mbps.
	ymax1 := 0.0
	for _, r := range s.Rows {
		ymax1 = math.Max(ymax1, math.Max(med(&r.ClientMbps), clampMax(r.ClientMbps)))
	}
	ticks1 := niceTicks(ymax1)
	c.panel(top1, "Bandwidth at saturation: client Mbps (application bytes, unpaced runs)", "Mbps", ticks1, 0)
	if s.Baseline != "" {
		// legend of the grey bar, right-aligned on the panel's title line
		right := float64(svgWidth - marginRight)
		c.text(right, top1-14, "baseline: "+s.Baseline, `font-size="12" text-anchor="end" fill="#222"`)
		w := float64(utf8.RuneCountInString("baseline: "+s.Baseline))*6.3 + 18
		c.printf(`<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", right-w, top1-24, colBaseline)
	}
	top := ticks1[len(ticks1)-1]
	for i, r := range s.Rows {
		x0 := marginLeft + slot*float64(i)
		bwid := math.Min(slot*0.6, 80)
		x := x0 + (slot-bwid)/2
		v := med(&r.ClientMbps)
		h := scale(v, top)
		fill := colBar
		if s.Baseline != "" && r.Scenario == s.Baseline {
			fill = colBaseline
		}
		c.printf(`<rect class="bar-mbps" data-scenario="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s Mbps</title></rect>`+"\n",
			esc(r.Scenario), x, top1+panelHeight-h, bwid, h, fill, esc(r.Scenario), esc(mbpsCell(r.ClientMbps)))
		yLabel := top1 + panelHeight - h
		if r.ClientMbps.N > 1 && r.ClientMbps.Max > r.ClientMbps.Min {
			yLabel = math.Min(yLabel, c.whisker(x+bwid/2, top1, r.ClientMbps.Min, r.ClientMbps.Max, top))
		}
		label := fixed(v, 0)
		if r.ClientMbps.N == 0 {
			label = result.NotMeasured
		}
		c.text(x+bwid/2, yLabel-5, label, `font-size="11" text-anchor="middle" fill="#111"`)
		c.scenarioLabel(x0+slot/2, top1+panelHeight, r.Scenario, rotate)
	}

	// Panel 2: cores per Gbps, stacked.
	ymax2 := 0.0
	for _, r := range s.Rows {
		sum := 0.0
		for _, seg := range costSegments {
			sum += seg.get(r)
		}
		ymax2 = math.Max(ymax2, math.Max(sum, clampMax(r.TotalCoresPerGbps)))
	}
	ticks2 := niceTicks(ymax2)
	c.panel(top2, costTitle, "cores/Gbps", ticks2, 2)
	top = ticks2[len(ticks2)-1]
	for i, r := range s.Rows {
		x0 := marginLeft + slot*float64(i)
		bwid := math.Min(slot*0.6, 80)
		x := x0 + (slot-bwid)/2
		y := top2 + panelHeight
		sum := 0.0
		sat := ""
		if r.CostSaturated {
			sat = ` data-saturated="true"`
		}
		c.printf(`<g class="bar-cost" data-scenario="%s"%s>`+"\n", esc(r.Scenario), sat)
		for _, seg := range costSegments {
			v := seg.get(r)
			if v <= 0 {
				continue
			}
			h := scale(v, top)
			y -= h
			sum += v
			c.printf(`<rect class="seg-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s cores/Gbps</title></rect>`+"\n",
				seg.key, x, y, bwid, h, seg.color, esc(r.Scenario), esc(seg.label), fixed(v, 2))
		}
		if r.CostSaturated && sum > 0 {
			c.printf(`<rect class="saturated" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#hatch)" stroke="%s" stroke-width="1.5"/>`+"\n",
				x, y, bwid, top2+panelHeight-y, colSat)
		}
		c.printf("</g>\n")
		yLabel := y
		tot := r.TotalCoresPerGbps
		if tot.N > 1 && tot.Max > tot.Min {
			yLabel = math.Min(yLabel, c.whisker(x+bwid/2, top2, tot.Min, tot.Max, top))
		}
		label := fixed(sum, 2)
		if sum <= 0 && tot.N == 0 {
			label = result.NotMeasured
		}
		c.text(x+bwid/2, yLabel-5, label, `font-size="11" text-anchor="middle" fill="#111"`)
		if r.CostSaturated {
			c.text(x+bwid/2, yLabel-19, fmt.Sprintf("SATURATED %d/%d", r.SaturatedCostRuns, r.CostRuns), `font-size="11" font-weight="bold" text-anchor="middle" fill="`+colSat+`"`)
		}
		if r.CostLoadMbps.N > 0 {
			c.text(x0+slot/2, top2+panelHeight+labelSpace+4, "at "+fixed(r.CostLoadMbps.Median, 0)+" Mbps", `font-size="10" text-anchor="middle" fill="#555"`)
		}
		c.scenarioLabel(x0+slot/2, top2+panelHeight, r.Scenario, rotate)
	}

	// Legend under panel 2.
	ly := top2 + panelHeight + labelSpace + 40
	lx := float64(marginLeft)
	for _, seg := range costSegments {
		c.printf(`<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", lx, ly-10, seg.color)
		c.text(lx+17, ly, seg.label, `font-size="12" fill="#222"`)
		lx += 17 + float64(utf8.RuneCountInString(seg.label))*7 + 22
	}
	c.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.2"/>`+"\n", lx+6, ly-12, lx+6, ly+2, colWhisker)
	c.text(lx+14, ly, "min–max of the total", `font-size="12" fill="#222"`)
	lx += 14 + float64(utf8.RuneCountInString("min–max of the total"))*7 + 22
	c.printf(`<rect x="%.1f" y="%.1f" width="12" height="12" fill="url(#hatch)" stroke="%s"/>`+"\n", lx, ly-10, colSat)
	c.text(lx+17, ly, "saturated: cost capped by the cores", `font-size="12" fill="#222"`)
	c.printf("</svg>\n")
	return flushSVG(bw, c)
}

// equalLoadTolerance is how far (relative) the rows' cost loads may differ from each other for
// the chart to call them equal.
const equalLoadTolerance = 0.1

// equalLoad reports whether every row's cost was measured at about the same client load (rows
// without cost runs do not count).
func equalLoad(rows []result.Row) bool {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		if r.CostLoadMbps.N == 0 || !finite(r.CostLoadMbps.Median) {
			continue
		}
		lo, hi = math.Min(lo, r.CostLoadMbps.Median), math.Max(hi, r.CostLoadMbps.Median)
	}
	return !(hi > lo*(1+equalLoadTolerance))
}

func flushSVG(bw *bufio.Writer, c *canvas) error {
	if c.err != nil {
		return fmt.Errorf("write svg: %w", c.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

// clampMax is the Max of st when it is measured and finite, else 0.
func clampMax(st result.Stat) float64 {
	if st.N == 0 || !finite(st.Max) {
		return 0
	}
	return st.Max
}

// scale converts a value to a bar height in pixels on an axis topping at top.
func scale(v, top float64) float64 {
	if top <= 0 || !finite(v) || v <= 0 {
		return 0
	}
	return math.Min(v/top, 1) * panelHeight
}

// niceTicks returns 0 and evenly spaced round values (steps of 1, 2, 2.5 or 5 × 10^k) up to at
// least 8% above maxV, which leaves room for value labels (about 5 intervals); 0 to 1 when
// maxV is not positive.
func niceTicks(maxV float64) []float64 {
	if !finite(maxV) || maxV <= 0 {
		return []float64{0, 0.25, 0.5, 0.75, 1}
	}
	maxV *= 1.08
	raw := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for i := 0; ; i++ {
		v := float64(i) * step
		ticks = append(ticks, v)
		if v >= maxV || i > 20 {
			break
		}
	}
	if len(ticks) < 2 {
		ticks = append(ticks, step)
	}
	return ticks
}

// canvas writes SVG elements and remembers the first write error.
type canvas struct {
	w   io.Writer
	err error
}

func (c *canvas) printf(format string, args ...any) {
	if c.err != nil {
		return
	}
	_, c.err = fmt.Fprintf(c.w, format, args...)
}

func (c *canvas) text(x, y float64, s, attrs string) {
	c.printf(`<text x="%.1f" y="%.1f" %s>%s</text>`+"\n", x, y, attrs, esc(s))
}

// panel draws a panel's title, grid lines, y ticks and axes.
func (c *canvas) panel(top float64, title, unit string, ticks []float64, prec int) {
	right := float64(svgWidth - marginRight)
	bottom := top + panelHeight
	c.text(marginLeft, top-14, title, `font-size="14" font-weight="bold" fill="#222"`)
	maxT := ticks[len(ticks)-1]
	// enough decimals to tell ticks apart
	if step := ticks[1] - ticks[0]; prec > 0 || step < 1 {
		prec = max(prec, decimalsFor(step))
	}
	for _, t := range ticks {
		y := bottom - scale(t, maxT)
		if t == 0 {
			y = bottom
		}
		c.printf(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", marginLeft, y, right, y, colGrid)
		c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", marginLeft-5, y, marginLeft, y, colAxis)
		c.text(marginLeft-8, y+4, fixed(t, prec), `font-size="11" text-anchor="end" fill="#333"`)
	}
	c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", marginLeft, top, marginLeft, bottom, colAxis)
	c.printf(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", marginLeft, bottom, right, bottom, colAxis)
	c.printf(`<text x="%.1f" y="%.1f" font-size="11" fill="#333" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		18.0, top+panelHeight/2, 18.0, top+panelHeight/2, esc(unit))
}

// decimalsFor returns how many decimals show a tick step exactly (up to 3).
func decimalsFor(step float64) int {
	for d := 0; d < 3; d++ {
		p := math.Pow(10, float64(d))
		if math.Abs(step*p-math.Round(step*p)) < 1e-9 {
			return d
		}
	}
	return 3
}

// whisker draws a min–max whisker centred at x and returns the y of its top.
func (c *canvas) whisker(x, top, lo, hi, axisTop float64) float64 {
	bottom := top + panelHeight
	y1, y2 := bottom-scale(lo, axisTop), bottom-scale(hi, axisTop)
	c.printf(`<g class="whisker" stroke="%s" stroke-width="1.2"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>`+"\n",
		colWhisker, x, y1, x, y2, x-6, y1, x+6, y1, x-6, y2, x+6, y2)
	return y2
}

// scenarioLabel writes a scenario name under the x axis, rotated when slots are narrow.
func (c *canvas) scenarioLabel(x, axisY float64, name string, rotate bool) {
	if rotate {
		y := axisY + 14
		c.printf(`<text x="%.1f" y="%.1f" font-size="12" fill="#222" text-anchor="end" transform="rotate(-40 %.1f %.1f)">%s</text>`+"\n",
			x, y, x, y, esc(name))
		return
	}
	c.text(x, axisY+18, name, `font-size="12" text-anchor="middle" fill="#222"`)
}

// esc escapes text for XML content and attribute values.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			if r < 0x20 && r != '\t' && r != '\n' || r == utf8.RuneError {
				b.WriteRune('\uFFFD')
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
