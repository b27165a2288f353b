// Package report renders a result.Summary for people: a markdown table, an aligned text table
// for a terminal, a self-contained SVG chart, and WriteAll to put them (with the JSON) in a
// results directory.
package report

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pathcost/pathcost/pkg/result"
)

// File names written by WriteAll.
const (
	FileJSON     = "summary.json"
	FileMarkdown = "summary.md"
	FileText     = "summary.txt"
	FileSVG      = "chart.svg"
)

// mainHeader is the header of the main table (the seed's shape plus interface Mbps,
// retransmits and set-up time): bandwidth columns first, then the cost columns.
var mainHeader = []string{
	"scenario", "runs bw/cost", "client Mbps", "server Mbps", "iface Mbps c/s", "retrans", "setup s",
	"cost at Mbps", "client CPU", "server CPU", "sidecar CPU c/s", "node CPU",
	"cores/Gbps", "vs baseline",
}

// legend explains the main table.
const legend = "Bandwidth at saturation, cost at equal load: Mbps, retransmits and set-up come from the " +
	"unpaced (bandwidth) runs; CPU, node CPU and cores/Gbps from the paced (cost) runs, at the client " +
	"load shown under \"cost at Mbps\". Medians over the runs, (min–max) when they differ. CPU in cores " +
	"(CPU-seconds per second). c/s: client side / server side. node CPU: busy cores of the machine all " +
	"nodes share, or of the client / server nodes; fwd: the forwarding node. cores/Gbps: all of it " +
	"(processes, sidecars, kernel) per Gbps of the client's application throughput in the cost runs. " +
	"SATURATED: cost measured with a machine busier than 80% of its cores (k/n cost runs); such a cost " +
	"is \"cores available / bandwidth\", not the path's. runs bw/cost: bandwidth and cost runs used " +
	"(and dropped). vs baseline: " +
	"medians of the per-pair ratios. \"not measured\": no run measured the figure (never shown as 0)."

// costHeader is the header of the cost breakdown table.
var costHeader = []string{"scenario", "cost at Mbps", "client", "server", "sidecars", "kernel", "total", "total vs baseline"}

// runsCell renders "bandwidth runs/cost runs", with the dropped runs when there were any.
func runsCell(r result.Row) string {
	c := fmt.Sprintf("%d/%d", r.BandwidthRuns, r.CostRuns)
	if r.Dropped > 0 {
		c += fmt.Sprintf(" (%d dropped)", r.Dropped)
	}
	return c
}

// loadCell renders the load the cost was measured at, marked when saturated.
func loadCell(r result.Row) string {
	c := medianCell(r.CostLoadMbps, 0)
	if r.CostSaturated {
		c += fmt.Sprintf(" SATURATED %d/%d", r.SaturatedCostRuns, r.CostRuns)
	}
	return c
}

// mainRows builds the cells of the main table.
func mainRows(s result.Summary) [][]string {
	out := make([][]string, 0, len(s.Rows))
	for _, r := range s.Rows {
		out = append(out, []string{
			r.Scenario,
			runsCell(r),
			mbpsCell(r.ClientMbps),
			mbpsCell(r.ServerMbps),
			pairCell(mbpsMedian(r.ClientIfaceMbps), mbpsMedian(r.ServerIfaceMbps)),
			medianCell(r.Retransmits, 0),
			medianCell(r.SetupSeconds, 2),
			loadCell(r),
			coresCell(r.ClientCores),
			coresCell(r.ServerCores),
			sidecarCell(r),
			nodeCell(r),
			satMark(r, coresCell(r.TotalCoresPerGbps)),
			baselineCell(r, s.Baseline),
		})
	}
	return out
}

// satMark appends " SATURATED" to a cost cell of a row whose cost runs were saturated.
func satMark(r result.Row, cell string) string {
	if r.CostSaturated && cell != result.NotMeasured {
		return cell + " SATURATED"
	}
	return cell
}

// costRows builds the cost breakdown (medians of cores per Gbps).
func costRows(s result.Summary) [][]string {
	out := make([][]string, 0, len(s.Rows))
	for _, r := range s.Rows {
		sc := "-"
		if r.SidecarCoresPerGbps != nil {
			sc = medianCell(*r.SidecarCoresPerGbps, 2)
		}
		ratio := "-"
		if r.VsBaseline != nil && !isBaseline(r, s.Baseline) {
			ratio = ratioCell(r.VsBaseline.CostRatio)
		}
		out = append(out, []string{
			r.Scenario,
			loadCell(r),
			medianCell(r.ClientCoresPerGbps, 2),
			medianCell(r.ServerCoresPerGbps, 2),
			sc,
			medianCell(r.KernelCoresPerGbps, 2),
			satMark(r, coresCell(r.TotalCoresPerGbps)),
			ratio,
		})
	}
	return out
}

// fixed formats x with prec decimals ("-" when not finite).
func fixed(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}

// spreadCell renders "median (min–max)" with prec decimals, collapsing an empty spread.
func spreadCell(st result.Stat, prec int) string {
	if st.N == 0 {
		return result.NotMeasured
	}
	m, lo, hi := fixed(st.Median, prec), fixed(st.Min, prec), fixed(st.Max, prec)
	if st.N == 1 || (lo == m && hi == m) {
		return m
	}
	return m + " (" + lo + "–" + hi + ")"
}

func mbpsCell(st result.Stat) string  { return spreadCell(st, 0) }
func coresCell(st result.Stat) string { return spreadCell(st, 2) }

func medianCell(st result.Stat, prec int) string {
	if st.N == 0 {
		return result.NotMeasured
	}
	return fixed(st.Median, prec)
}

func mbpsMedian(st result.Stat) string { return medianCell(st, 0) }

func pairCell(a, b string) string {
	if a == b && (a == "-" || a == result.NotMeasured) {
		return a
	}
	return a + " / " + b
}

func optMedian(st *result.Stat, prec int) string {
	if st == nil {
		return "-"
	}
	return medianCell(*st, prec)
}

func sidecarCell(r result.Row) string {
	return pairCell(optMedian(r.SidecarClientCores, 2), optMedian(r.SidecarServerCores, 2))
}

// nodeCell shows the machine busy cores: one figure (with spread) when all records measured one
// machine, else client node / server node medians; and the forwarding node's busy cores when
// there is one.
func nodeCell(r result.Row) string {
	if r.Repeats == 0 {
		return result.NotMeasured
	}
	var c string
	if r.SharedNode {
		c = coresCell(r.MachineBusyCores)
	} else {
		c = pairCell(medianCell(r.ClientNodeBusyCores, 2), medianCell(r.ServerNodeBusyCores, 2))
	}
	if r.ForwarderNodeBusyCores != nil {
		c += " / fwd " + medianCell(*r.ForwarderNodeBusyCores, 2)
	}
	return c
}

// isBaseline reports whether r is the baseline row (of this summary or of its own comparison).
func isBaseline(r result.Row, baseline string) bool {
	return (r.VsBaseline != nil && r.Scenario == r.VsBaseline.Baseline) || (baseline != "" && r.Scenario == baseline) ||
		strings.HasPrefix(r.Scenario, result.BaselinePrefix)
}

// ratioCell renders the median of a ratio as "1.23×" ("n/a" when it has none).
func ratioCell(st result.Stat) string {
	if st.N == 0 {
		return "n/a"
	}
	return fixed(st.Median, 2) + "×"
}

func baselineCell(r result.Row, baseline string) string {
	if isBaseline(r, baseline) {
		return "baseline"
	}
	if r.VsBaseline == nil {
		return "-"
	}
	return "bw " + ratioCell(r.VsBaseline.BandwidthRatio) + ", cost " + ratioCell(r.VsBaseline.CostRatio)
}

// footnotes lists the summary's notes, then each row's notes prefixed by its scenario.
func footnotes(s result.Summary) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range s.Notes {
		add(n)
	}
	for _, r := range s.Rows {
		if r.CoresPerGbpsOf != "" {
			add("cores/Gbps divides by the " + r.CoresPerGbpsOf + " (column \"cost at Mbps\")")
		}
	}
	for _, r := range s.Rows {
		for _, n := range r.Notes {
			add(r.Scenario + ": " + n)
		}
	}
	return out
}

// titles lists "scenario: title" for rows with a title.
func titles(s result.Summary) []string {
	var out []string
	for _, r := range s.Rows {
		if r.Title != "" {
			out = append(out, r.Scenario+": "+r.Title)
		}
	}
	return out
}

// gateTally counts gate statuses as "gates: 3 pass, 1 warn, 0 fail, 1 skip". (Worded so that
// it is never mistaken for a test runner's "N passed, N failed" closing line.)
func gateTally(gs []result.GateResult) string {
	n := map[string]int{}
	for _, g := range gs {
		n[g.Status]++
	}
	return fmt.Sprintf("gates: %d pass, %d warn, %d fail, %d skip",
		n[result.GatePass], n[result.GateWarn], n[result.GateFail], n[result.GateSkip])
}

// gateVerdicts repeats the failing gates, then the warning ones, after the tally, so that the
// last lines of a long log (all a CI page may show) say which bounds were crossed.
func gateVerdicts(gs []result.GateResult) []string {
	var out []string
	for _, status := range []string{result.GateFail, result.GateWarn} {
		for _, g := range gs {
			if g.Status == status {
				out = append(out, g.String())
			}
		}
	}
	return out
}

// runInfo lists the run's identity and settings as "key: value" pairs, settings sorted.
func runInfo(s result.Summary) [][2]string {
	var out [][2]string
	for _, kv := range [][2]string{{"provider", s.Provider}, {"started", s.StartedAt}, {"host", s.Host}, {"baseline", s.Baseline}} {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(s.Settings))
	for k := range s.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, [2]string{k, s.Settings[k]})
	}
	return out
}

// Markdown writes s as markdown: run information, the main table (medians with min–max
// spread), the cost breakdown, scenario titles, notes and gate results.
func Markdown(w io.Writer, s result.Summary) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# pathcost results")
	fmt.Fprintln(bw)
	if info := runInfo(s); len(info) > 0 {
		parts := make([]string, len(info))
		for i, kv := range info {
			parts[i] = kv[0] + ": `" + kv[1] + "`"
		}
		fmt.Fprintln(bw, strings.Join(parts, " · "))
		fmt.Fprintln(bw)
	}
	if len(s.Rows) == 0 {
		fmt.Fprintln(bw, "No scenario was measured.")
	} else {
		fmt.Fprintln(bw, legend)
		fmt.Fprintln(bw)
		mdTable(bw, mainHeader, mainRows(s))
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "## Cost per Gbps at equal load (cores, medians)")
		fmt.Fprintln(bw)
		mdTable(bw, costHeader, costRows(s))
	}
	if t := titles(s); len(t) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "## Scenarios")
		fmt.Fprintln(bw)
		for _, l := range t {
			fmt.Fprintln(bw, "- "+mdEscape(l))
		}
	}
	if notes := footnotes(s); len(notes) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "## Notes")
		fmt.Fprintln(bw)
		for i, n := range notes {
			fmt.Fprintf(bw, "%d. %s\n", i+1, mdEscape(n))
		}
	}
	if len(s.Gates) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "## Gates")
		fmt.Fprintln(bw)
		for _, g := range s.Gates {
			fmt.Fprintln(bw, "- "+mdEscape(g.String()))
		}
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, gateTally(s.Gates))
		if v := gateVerdicts(s.Gates); len(v) > 0 {
			fmt.Fprintln(bw)
			fmt.Fprintln(bw, "Not passed (repeated from the list above):")
			fmt.Fprintln(bw)
			for _, g := range v {
				fmt.Fprintln(bw, "- "+mdEscape(g))
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write markdown report: %w", err)
	}
	return nil
}

func mdTable(w io.Writer, header []string, rows [][]string) {
	line := func(cells []string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintln(w, "| "+strings.Join(esc, " | ")+" |")
	}
	line(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
	for _, r := range rows {
		line(r)
	}
}

// mdEscape keeps text from turning into markup in a list item.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

// Text writes s as aligned plain text for a terminal: the same tables as Markdown, with
// columns padded to width.
func Text(w io.Writer, s result.Summary) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "pathcost results")
	for _, kv := range runInfo(s) {
		fmt.Fprintf(bw, "  %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintln(bw)
	if len(s.Rows) == 0 {
		fmt.Fprintln(bw, "No scenario was measured.")
	} else {
		for _, l := range wrap(legend, 100) {
			fmt.Fprintln(bw, l)
		}
		fmt.Fprintln(bw)
		textTable(bw, mainHeader, mainRows(s))
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "Cost per Gbps at equal load (cores, medians)")
		textTable(bw, costHeader, costRows(s))
	}
	if t := titles(s); len(t) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "Scenarios:")
		for _, l := range t {
			fmt.Fprintln(bw, "  "+l)
		}
	}
	if notes := footnotes(s); len(notes) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "Notes:")
		for i, n := range notes {
			fmt.Fprintf(bw, "  [%d] %s\n", i+1, n)
		}
	}
	if len(s.Gates) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "Gates:")
		for _, g := range s.Gates {
			fmt.Fprintln(bw, "  "+g.String())
		}
		fmt.Fprintln(bw, gateTally(s.Gates))
		if v := gateVerdicts(s.Gates); len(v) > 0 {
			fmt.Fprintln(bw, "not passed (repeated from the list above):")
			for _, g := range v {
				fmt.Fprintln(bw, "  "+g)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

// textTable pads every column to its widest cell (in runes) and underlines the header.
func textTable(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i >= len(width) {
				break
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	dashes := make([]string, len(header))
	for i := range dashes {
		dashes[i] = strings.Repeat("-", width[i])
	}
	line(dashes)
	for _, r := range rows {
		line(r)
	}
}

// WriteAll writes s into dir (created if needed) as summary.json, summary.md, summary.txt and
// chart.svg. Each file is rendered in memory first, so a rendering error leaves no partial file.
func WriteAll(dir string, s result.Summary) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	renders := []struct {
		name   string
		render func(io.Writer, result.Summary) error
	}{
		{FileJSON, func(w io.Writer, s result.Summary) error { return s.Write(w) }},
		{FileMarkdown, Markdown},
		{FileText, Text},
		{FileSVG, SVG},
	}
	for _, r := range renders {
		var buf bytes.Buffer
		if err := r.render(&buf, s); err != nil {
			return fmt.Errorf("write reports: %s: %w", r.name, err)
		}
		p := filepath.Join(dir, r.name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write reports: %w", err)
		}
	}
	return nil
}

// wrap breaks text into lines of at most width runes at spaces (a longer word stays whole).
func wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		wl := utf8.RuneCountInString(word)
		if n > 0 && n+1+wl > width {
			lines = append(lines, cur.String())
			cur.Reset()
			n = 0
		}
		if n > 0 {
			cur.WriteByte(' ')
			n++
		}
		cur.WriteString(word)
		n += wl
	}
	if n > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
