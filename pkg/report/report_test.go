package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/result"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// figures of one hand-made run (server push, separate nodes unless shared).
type spec struct {
	cMbps, sMbps   float64
	cCores, sCores float64
	cBusy, sBusy   float64
	scC, scS       float64 // sidecar cores; < 0: no sidecar
	fwdBusy        float64 // forwarding node busy cores; < 0: none
	retrans        uint64
	setup          float64
}

// fixtureCores is the number of cores of every hand-made node.
const fixtureCores = 4

func records(scenario, mode string, repeat int, s spec) result.Run {
	c := &result.Record{Schema: result.Schema, Role: result.RoleClient, Direction: "server-push",
		Mbps: s.cMbps, Seconds: 20, Conns: 100, SetupSeconds: s.setup,
		CPU:   result.CPU{Cores: s.cCores},
		Node:  result.Node{NumCPU: fixtureCores, BusyCores: s.cBusy},
		Iface: result.Iface{RxMbps: s.cMbps * 1.035, TxMbps: s.cMbps * 0.02}, Host: "vm-a",
		TCP: result.TCP{WindowRetransmits: new(uint64)}}
	sv := &result.Record{Schema: result.Schema, Role: result.RoleServer, Direction: "server-push", Sending: true,
		Mbps: s.sMbps, Seconds: 20, Conns: 100, SetupSeconds: s.setup / 2,
		CPU:   result.CPU{Cores: s.sCores},
		Node:  result.Node{NumCPU: fixtureCores, BusyCores: s.sBusy},
		Iface: result.Iface{TxMbps: s.sMbps * 1.035, RxMbps: s.sMbps * 0.02},
		TCP:   result.TCP{Retransmits: s.retrans + 7, WindowRetransmits: &s.retrans}, Host: "vm-b"}
	if s.scC >= 0 {
		c.Watched = map[string]result.CPU{result.WatchSidecar: {Cores: s.scC}}
	}
	if s.scS >= 0 {
		sv.Watched = map[string]result.CPU{result.WatchSidecar: {Cores: s.scS}}
	}
	run := result.Run{Scenario: scenario, Mode: mode, Repeat: repeat, Client: c, Server: sv}
	if s.fwdBusy >= 0 {
		run.Forwarder = &result.Record{Schema: result.Schema, Role: "sample", Node: result.Node{NumCPU: fixtureCores, BusyCores: s.fwdBusy}}
	}
	return run
}

// fixture is a seed-shaped summary: five scenarios on separate 4-core nodes, each with five
// alternating repeats of an unpaced bandwidth run and a cost run paced at 1 Gbit/s, compared
// with plain; one bandwidth run of vpccni failed, gr+istio's cost runs saturate the client's
// node, and thresholds are checked.
func fixture(t *testing.T) result.Summary {
	t.Helper()
	type scen struct {
		name, title string
		bw, cost    spec
	}
	scens := []scen{
		{"plain", "plain VMs",
			spec{cMbps: 9078, sMbps: 9355, cCores: 0.80, sCores: 1.00, cBusy: 1.10, sBusy: 1.40, scC: -1, scS: -1, fwdBusy: -1, retrans: 120, setup: 0.21},
			spec{cMbps: 1000, sMbps: 1001, cCores: 0.09, sCores: 0.12, cBusy: 0.14, sBusy: 0.19, scC: -1, scS: -1, fwdBusy: -1, retrans: 2, setup: 0.21}},
		{"gr", "K8s, Global Router CNI, pods on different nodes",
			spec{cMbps: 8072, sMbps: 8122, cCores: 0.85, sCores: 1.00, cBusy: 1.30, sBusy: 1.60, scC: -1, scS: -1, fwdBusy: -1, retrans: 150, setup: 0.25},
			spec{cMbps: 1000, sMbps: 1001, cCores: 0.11, sCores: 0.14, cBusy: 0.18, sBusy: 0.25, scC: -1, scS: -1, fwdBusy: -1, retrans: 3, setup: 0.25}},
		{"gr+istio", "as gr, through Istio sidecars",
			spec{cMbps: 2026, sMbps: 2205, cCores: 0.30, sCores: 0.25, cBusy: 3.10, sBusy: 1.40, scC: 1.00, scS: 0.70, fwdBusy: -1, retrans: 90, setup: 1.4},
			spec{cMbps: 990, sMbps: 995, cCores: 0.15, sCores: 0.12, cBusy: 3.40, sBusy: 0.80, scC: 0.60, scS: 0.45, fwdBusy: -1, retrans: 1, setup: 1.4}},
		{"vpccni", "K8s, VPC-CNI (shared ENI, multiple IPs)",
			spec{cMbps: 8141, sMbps: 8378, cCores: 0.85, sCores: 1.01, cBusy: 1.36, sBusy: 1.52, scC: -1, scS: -1, fwdBusy: -1, retrans: 100, setup: 0.22},
			spec{cMbps: 1000, sMbps: 1000, cCores: 0.10, sCores: 0.13, cBusy: 0.17, sBusy: 0.22, scC: -1, scS: -1, fwdBusy: -1, retrans: 1, setup: 0.22}},
		{"nodeport", "GR, NodePort 32000 on node B forwarding to node C",
			spec{cMbps: 7075, sMbps: 7281, cCores: 0.75, sCores: 0.94, cBusy: 1.16, sBusy: 1.28, scC: -1, scS: -1, fwdBusy: 0.84, retrans: 130, setup: 0.3},
			spec{cMbps: 1000, sMbps: 1000, cCores: 0.10, sCores: 0.12, cBusy: 0.16, sBusy: 0.18, scC: -1, scS: -1, fwdBusy: 0.12, retrans: 1, setup: 0.3}},
	}
	// Per-repeat multipliers: the machine drifts, and both the baseline and the scenario of a
	// pair see the same drift.
	drift := []float64{1.0, 0.97, 1.02, 0.99, 1.01}
	// and each run has its own noise.
	jitter := []float64{0, 0.012, -0.018, 0.025, -0.006, 0.009, -0.011}
	noisy := func(s spec, d, j float64, paced bool) spec {
		if !paced {
			s.cMbps *= d * (1 + j)
			s.sMbps *= d * (1 + j/2)
		}
		s.cCores *= 1 + (d-1)/2 - j
		s.sCores *= 1 + j
		s.cBusy *= 1 + j
		s.sBusy *= 1 - j
		return s
	}
	var rows []result.Row
	for k, sc := range scens {
		var runs []result.Run
		for i, d := range drift {
			j := jitter[(2*k+i)%len(jitter)]
			runs = append(runs,
				records(sc.name, result.ModeBandwidth, i, noisy(sc.bw, d, j, false)),
				records(sc.name, result.ModeCost, i, noisy(sc.cost, d, -j, true)))
		}
		if sc.name == "vpccni" {
			runs[2] = result.Run{Scenario: sc.name, Mode: result.ModeBandwidth, Repeat: 1, Error: "tcpload client: connect 10.0.0.2:50012: connection timed out"}
		}
		rows = append(rows, result.Aggregate(sc.name, sc.title, runs))
	}
	require.NoError(t, result.ApplyBaseline(rows, "plain"))
	s := result.Summary{
		Schema:    result.SummarySchema,
		Provider:  "fixture",
		StartedAt: "2026-11-27T10:00:00Z",
		Host:      "ci-runner",
		Settings:  map[string]string{"conns": "100", "buffer": "102400", "duration": "20s", "repeats": "5", "cost load": "1 Gbit/s"},
		Baseline:  "plain",
		Rows:      rows,
		Notes:     []string{"hand-made records shaped like the seed's table; 4-core nodes"},
	}
	th, err := result.ParseThresholds([]byte(`
defaults:
  min_client_mbps: 200
  min_bandwidth_ratio: 0.5
  max_cores_per_gbps: {client: 1.0, server: 1.0, sidecar: 3.0, total: 4.0}
  max_cost_ratio: {total: 1.5, client: 1.3, server: 1.3}
scenarios:
  gr+istio:
    min_bandwidth_ratio: 0.2
    min_sidecar_cores_per_gbps: 0.05
    max_cost_ratio: {total: 12, client: 2, sidecar: 5}
  nodeport:
    max_cores_per_gbps: {total: 0.55}
    max_cost_ratio: {client: 1.12}
`))
	require.NoError(t, err)
	s.ApplyGates(th)
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, got, 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "missing golden file: run go test ./pkg/report -update")
	assert.Equal(t, string(want), string(got), "%s differs: run go test ./pkg/report -update and review the diff", p)
}

func TestGolden(t *testing.T) {
	s := fixture(t)
	tests := []struct {
		file   string
		render func(io.Writer, result.Summary) error
	}{
		{"fixture.md", Markdown},
		{"fixture.txt", Text},
		{"fixture.json", func(w io.Writer, s result.Summary) error { return s.Write(w) }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, tt.render(&buf, s))
			golden(t, tt.file, buf.Bytes())
		})
	}
}

func TestFixtureFacts(t *testing.T) {
	s := fixture(t)
	var buf bytes.Buffer
	require.NoError(t, Text(&buf, s))
	out := buf.String()
	assert.Contains(t, out, "9093 (8911–9212)")
	assert.Contains(t, out, "SATURATED 5/5", "gr+istio's cost runs saturated the client node")
	assert.Contains(t, out, "fwd 0.12", "the forwarding node's busy cores")
	assert.Contains(t, out, "cores/Gbps divides by the client application Mbps of the cost runs")
	assert.Contains(t, out, "baseline")
	assert.Contains(t, out, "WARN nodeport: client cores/Gbps ratio to baseline median 1.12 (min 1.08, max 1.16, n=5), 93.7% CI [1.08, 1.16] <= ceiling 1.12: the confidence interval straddles the bound")
	assert.Contains(t, out, "FAIL gr+istio: total cores/Gbps ratio to baseline")
	assert.Contains(t, out, "FAIL gr+istio: client cores/Gbps ratio to baseline median 1.68 (min 1.64, max 1.71, n=5), 93.7% CI [1.64, 1.71] cannot be judged against the ceiling 2.00: measured on a saturated machine in 5 of 5 cost pairs")
	assert.Contains(t, out, "vpccni: bandwidth run 1 dropped: tcpload client: connect")
	assert.NotContains(t, out, "NaN")
	tally := strings.Index(out, "gates: 25 pass")
	require.GreaterOrEqual(t, tally, 0)
	assert.Contains(t, out[tally:], "FAIL vpccni: failed repeats", "the tally is followed by the gates that failed")
	assert.Contains(t, out[tally:], "WARN nodeport: client cores/Gbps ratio", "and the ones that warned")
	assert.NotContains(t, out[tally:], "PASS ", "but not the ones that passed")
	for _, l := range strings.Split(out, "\n") {
		assert.NotRegexp(t, `^\S*:?\s*\d+ passed, \d+ failed`, l, "never look like a test runner's closing line")
	}
}

func TestEmptyAndDegenerateSummaries(t *testing.T) {
	zero := result.Aggregate("broken", "", []result.Run{{Repeat: 0}})
	nanRow := result.Row{Scenario: "nan", Repeats: 1,
		ClientMbps:        result.Stat{N: 1, Median: math.NaN(), Min: math.Inf(-1), Max: math.Inf(1)},
		TotalCoresPerGbps: result.Stat{N: 1, Median: math.NaN()}}
	for name, s := range map[string]result.Summary{
		"empty":      {},
		"zero":       {Rows: []result.Row{zero}},
		"nan":        {Rows: []result.Row{nanRow}},
		"no-compare": {Baseline: "missing", Rows: []result.Row{zero, nanRow}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, render := range []func(io.Writer, result.Summary) error{Markdown, Text, SVG} {
				var buf bytes.Buffer
				require.NoError(t, render(&buf, s))
				assert.NotContains(t, buf.String(), "NaN")
				assert.NotContains(t, buf.String(), "Inf")
			}
			var buf bytes.Buffer
			require.NoError(t, SVG(&buf, s))
			assertWellFormed(t, buf.Bytes())
		})
	}
}

// svgDoc decodes just enough of the chart to count bars.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []svgNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) walk(f func(svgNode)) {
	f(n)
	for _, c := range n.Nodes {
		c.walk(f)
	}
}

func assertWellFormed(t *testing.T, data []byte) svgNode {
	t.Helper()
	var root svgNode
	require.NoError(t, xml.Unmarshal(data, &root), "SVG is not well-formed XML")
	assert.Equal(t, "svg", root.XMLName.Local)
	assert.Equal(t, "http://www.w3.org/2000/svg", root.XMLName.Space)
	// A strict token pass too (xml.Unmarshal skips some checks on unused content).
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
	}
	return root
}

func TestSVG(t *testing.T) {
	s := fixture(t)
	s.Rows[1].Scenario = `gr <"&'>` // names are escaped
	var buf bytes.Buffer
	require.NoError(t, SVG(&buf, s))
	root := assertWellFormed(t, buf.Bytes())

	mbps, cost := map[string]int{}, map[string]int{}
	segs := map[string]int{}
	root.walk(func(n svgNode) {
		switch {
		case n.attr("class") == "bar-mbps":
			mbps[n.attr("data-scenario")]++
		case n.attr("class") == "bar-cost":
			cost[n.attr("data-scenario")]++
		case strings.HasPrefix(n.attr("class"), "seg-"):
			segs[n.attr("class")]++
		}
	})
	require.Len(t, mbps, len(s.Rows))
	require.Len(t, cost, len(s.Rows))
	for _, r := range s.Rows {
		assert.Equal(t, 1, mbps[r.Scenario], "one Mbps bar for %s", r.Scenario)
		assert.Equal(t, 1, cost[r.Scenario], "one cost bar for %s", r.Scenario)
	}
	assert.Equal(t, 1, segs["seg-sidecar"], "only gr+istio has a sidecar segment")
	assert.Equal(t, len(s.Rows), segs["seg-client"])
	assert.Contains(t, buf.String(), "min–max of the total")
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		max  float64
		want []float64
	}{
		{3140, []float64{0, 1000, 2000, 3000, 4000}},
		{1.7, []float64{0, 0.5, 1, 1.5, 2}},
		{0, []float64{0, 0.25, 0.5, 0.75, 1}},
		{math.NaN(), []float64{0, 0.25, 0.5, 0.75, 1}},
		{100, []float64{0, 25, 50, 75, 100, 125}},
		{0.92, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
	}
	for _, tt := range tests {
		got := niceTicks(tt.max)
		if !assert.Len(t, got, len(tt.want), "niceTicks(%v) = %v", tt.max, got) {
			continue
		}
		assert.InDeltaSlice(t, tt.want, got, 1e-9, "niceTicks(%v)", tt.max)
	}
}

func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results", "run1")
	s := fixture(t)
	require.NoError(t, WriteAll(dir, s))
	for _, f := range []string{FileJSON, FileMarkdown, FileText, FileSVG} {
		info, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Positive(t, info.Size(), f)
	}
	back, err := result.ReadSummary(filepath.Join(dir, FileJSON))
	require.NoError(t, err)
	assert.Len(t, back.Rows, len(s.Rows))

	// A file where the directory should be.
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	err = WriteAll(filepath.Join(blocker, "sub"), s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "write reports")
}

func TestSVGSaysWhenLoadsDiffer(t *testing.T) {
	s := fixture(t)
	var buf bytes.Buffer
	require.NoError(t, SVG(&buf, s))
	assert.Contains(t, buf.String(), "Cost at equal load")
	s.Rows[1].CostLoadMbps = result.Summarize([]float64{5000})
	buf.Reset()
	require.NoError(t, SVG(&buf, s))
	assert.Contains(t, buf.String(), "NOT at equal load")
}
