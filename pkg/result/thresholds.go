package result

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Thresholds are the CI gates of a harness run, loaded from a YAML file.
//
// # File format
//
// The file is one YAML document with two optional top-level keys, `defaults` and `scenarios`.
// `defaults` holds bounds that apply to every scenario; `scenarios` maps a scenario name to
// bounds that override the defaults for that scenario, key by key (a key not given keeps the
// default). Every bound is a non-negative number, or the word `off` to switch a default off for
// one scenario. Unknown keys, negative, NaN or infinite values are errors.
//
//	defaults:
//	  min_client_mbps: 200          # floor on client application Mbps
//	  min_bandwidth_ratio: 0.5      # floor on client Mbps / baseline client Mbps (paired runs)
//	  max_cores_per_gbps:           # ceilings on cores per Gbps of client throughput
//	    client: 1.0
//	    server: 1.0
//	    sidecar: 3.0                # both sidecars summed; skipped when there is no sidecar
//	    kernel: 2.0                 # machine busy minus the measured processes
//	    total: 4.0
//	  max_cost_ratio: 3.0           # ceiling on total cores/Gbps / baseline's (paired runs)
//	  max_setup_seconds: 30         # ceiling on connection set-up + warm-up time
//	  max_retransmits: 100000       # ceiling on client + server TCP retransmits per run
//	scenarios:
//	  gr+istio:
//	    min_sidecar_cores_per_gbps: 0.05   # floor: proves the sidecar is in the path
//	    max_cores_per_gbps: {total: 6.0}
//	  nodeport:
//	    max_setup_seconds: off
//
// A floor (min_*) or ceiling (max_*) is judged against the Stat of the figure over the repeats
// by the noise rule documented on Gate.
type Thresholds struct {
	Defaults  Bounds            `yaml:"defaults"`
	Scenarios map[string]Bounds `yaml:"scenarios"`
}

// Bounds are the limits that apply to one scenario. A Limit left unset is not checked.
type Bounds struct {
	MinClientMbps          Limit      `yaml:"min_client_mbps"`
	MinBandwidthRatio      Limit      `yaml:"min_bandwidth_ratio"`
	MaxCoresPerGbps        CoreLimits `yaml:"max_cores_per_gbps"`
	MaxCostRatio           Limit      `yaml:"max_cost_ratio"`
	MinSidecarCoresPerGbps Limit      `yaml:"min_sidecar_cores_per_gbps"`
	MaxSetupSeconds        Limit      `yaml:"max_setup_seconds"`
	MaxRetransmits         Limit      `yaml:"max_retransmits"`
}

// CoreLimits are ceilings on cores per Gbps, per component.
type CoreLimits struct {
	Client  Limit `yaml:"client"`
	Server  Limit `yaml:"server"`
	Sidecar Limit `yaml:"sidecar"`
	Kernel  Limit `yaml:"kernel"`
	Total   Limit `yaml:"total"`
}

// Limit is one optional bound: unset, a value, or explicitly off (`off` in YAML), which cancels
// a default for one scenario.
type Limit struct {
	Value float64
	// Set is true when the file gave a value or `off`.
	Set bool
	// Off is true when the file said `off`.
	Off bool
}

// Val returns a Limit set to v (for building Bounds in code).
func Val(v float64) Limit { return Limit{Value: v, Set: true} }

// Active reports whether the limit is to be checked.
func (l Limit) Active() bool { return l.Set && !l.Off }

// UnmarshalYAML accepts a non-negative finite number or `off`.
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a number or off", n.Line)
	}
	if strings.EqualFold(n.Value, "off") {
		*l = Limit{Set: true, Off: true}
		return nil
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		return fmt.Errorf("line %d: %q is not a number or off", n.Line, n.Value)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("line %d: %q is not a finite number", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative bound %s", n.Line, n.Value)
	}
	*l = Limit{Value: v, Set: true}
	return nil
}

// over returns o's limit when o sets one, else l.
func (l Limit) over(o Limit) Limit {
	if o.Set {
		return o
	}
	return l
}

// LoadThresholds reads a thresholds file (format on Thresholds).
func LoadThresholds(path string) (*Thresholds, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load thresholds: %w", err)
	}
	t, err := ParseThresholds(data)
	if err != nil {
		return nil, fmt.Errorf("load thresholds %s: %w", path, err)
	}
	return t, nil
}

// ParseThresholds decodes thresholds from YAML (format on Thresholds). Unknown keys are errors
// naming the key and line; an empty document is an error.
func ParseThresholds(data []byte) (*Thresholds, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Thresholds
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("parse thresholds: empty document (write `defaults: {}` to gate nothing)")
		}
		return nil, fmt.Errorf("parse thresholds: %w", err)
	}
	for name := range t.Scenarios {
		if strings.TrimSpace(name) == "" {
			return nil, errors.New("parse thresholds: empty scenario name")
		}
	}
	// yaml.v3 does not call UnmarshalYAML for an empty value: `min_client_mbps:` would switch
	// the gate off silently, so reject it here
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		if err := noEmptyValues(&root); err != nil {
			return nil, fmt.Errorf("parse thresholds: %w", err)
		}
	}
	return &t, nil
}

// noEmptyValues reports the first mapping key whose value is empty (null).
func noEmptyValues(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return fmt.Errorf("line %d: %s has no value (a number, or off)", k.Line, k.Value)
			}
		}
	}
	for _, c := range n.Content {
		if err := noEmptyValues(c); err != nil {
			return err
		}
	}
	return nil
}

// For returns the bounds of scenario: the defaults with that scenario's overrides applied.
// A nil *Thresholds gives empty Bounds.
func (t *Thresholds) For(scenario string) Bounds {
	if t == nil {
		return Bounds{}
	}
	d := t.Defaults
	o, ok := t.Scenarios[scenario]
	if !ok {
		return d
	}
	return Bounds{
		MinClientMbps:     d.MinClientMbps.over(o.MinClientMbps),
		MinBandwidthRatio: d.MinBandwidthRatio.over(o.MinBandwidthRatio),
		MaxCoresPerGbps: CoreLimits{
			Client:  d.MaxCoresPerGbps.Client.over(o.MaxCoresPerGbps.Client),
			Server:  d.MaxCoresPerGbps.Server.over(o.MaxCoresPerGbps.Server),
			Sidecar: d.MaxCoresPerGbps.Sidecar.over(o.MaxCoresPerGbps.Sidecar),
			Kernel:  d.MaxCoresPerGbps.Kernel.over(o.MaxCoresPerGbps.Kernel),
			Total:   d.MaxCoresPerGbps.Total.over(o.MaxCoresPerGbps.Total),
		},
		MaxCostRatio:           d.MaxCostRatio.over(o.MaxCostRatio),
		MinSidecarCoresPerGbps: d.MinSidecarCoresPerGbps.over(o.MinSidecarCoresPerGbps),
		MaxSetupSeconds:        d.MaxSetupSeconds.over(o.MaxSetupSeconds),
		MaxRetransmits:         d.MaxRetransmits.over(o.MaxRetransmits),
	}
}

// UnknownScenarios returns the scenario names in the file that are not in known, sorted, so a
// caller can reject a misspelt override that would otherwise silently never apply.
func (t *Thresholds) UnknownScenarios(known []string) []string {
	if t == nil {
		return nil
	}
	k := make(map[string]bool, len(known))
	for _, s := range known {
		k[s] = true
	}
	var out []string
	for s := range t.Scenarios {
		if !k[s] {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// Figures a gate can check (GateResult.Figure, Violation.Figure).
const (
	FigClientMbps          = "client_mbps"
	FigBandwidthRatio      = "bandwidth_ratio"
	FigClientCoresPerGbps  = "client_cores_per_gbps"
	FigServerCoresPerGbps  = "server_cores_per_gbps"
	FigSidecarCoresPerGbps = "sidecar_cores_per_gbps"
	FigKernelCoresPerGbps  = "kernel_cores_per_gbps"
	FigTotalCoresPerGbps   = "total_cores_per_gbps"
	FigCostRatio           = "cost_ratio"
	FigSetupSeconds        = "setup_seconds"
	FigRetransmits         = "retransmits"
	// FigFailedRuns counts repeats that produced no usable records (gated at 0, always).
	FigFailedRuns = "failed_runs"
)

var figureLabels = map[string]string{
	FigClientMbps:          "client Mbps",
	FigBandwidthRatio:      "client Mbps ratio to baseline",
	FigClientCoresPerGbps:  "client cores/Gbps",
	FigServerCoresPerGbps:  "server cores/Gbps",
	FigSidecarCoresPerGbps: "sidecar cores/Gbps",
	FigKernelCoresPerGbps:  "kernel cores/Gbps",
	FigTotalCoresPerGbps:   "total cores/Gbps",
	FigCostRatio:           "total cores/Gbps ratio to baseline",
	FigSetupSeconds:        "set-up seconds",
	FigRetransmits:         "retransmits",
	FigFailedRuns:          "failed repeats",
}

// FigureLabel returns the human name of a figure key (the key itself when unknown).
func FigureLabel(fig string) string {
	if l, ok := figureLabels[fig]; ok {
		return l
	}
	return fig
}

// Bound kinds.
const (
	BoundMin = "min"
	BoundMax = "max"
)

// Gate statuses.
const (
	GatePass = "pass"
	// GateWarn: the median is beyond the bound but some repeats are not, so the difference is
	// within the noise; the gate does not fail.
	GateWarn = "warn"
	GateFail = "fail"
	// GateSkip: the bound does not apply (e.g. a sidecar ceiling in a scenario without sidecar).
	GateSkip = "skip"
)

// GateResult is one bound checked against one row.
type GateResult struct {
	Scenario  string  `json:"scenario"`
	Figure    string  `json:"figure"`
	Bound     string  `json:"bound"` // "min" or "max"
	Threshold float64 `json:"threshold"`
	Measured  Stat    `json:"measured"`
	Status    string  `json:"status"`
	Reason    string  `json:"reason,omitempty"`
}

// Violation is a failed gate.
type Violation struct {
	Scenario  string
	Figure    string
	Bound     string // "min" or "max"
	Threshold float64
	Measured  Stat
	// Reason is set when the figure could not be judged (e.g. not measured).
	Reason string
}

// String describes the violation, e.g. "gr+istio: client Mbps ratio to baseline median 0.41
// (min 0.39, max 0.44, n=3) is below the floor 0.50".
func (v Violation) String() string {
	lbl := FigureLabel(v.Figure)
	if v.Measured.N == 0 {
		r := v.Reason
		if r == "" {
			r = "not measured"
		}
		return fmt.Sprintf("%s: %s %s (%s %s)", v.Scenario, lbl, r, boundNoun(v.Bound), numExact(v.Threshold))
	}
	dir := "below"
	if v.Bound == BoundMax {
		dir = "above"
	}
	return fmt.Sprintf("%s: %s %s is %s the %s %s", v.Scenario, lbl, describe(v.Measured), dir, boundNoun(v.Bound), numExact(v.Threshold))
}

// String describes the gate result on one line, prefixed with PASS, WARN, FAIL or SKIP.
func (g GateResult) String() string {
	tag := strings.ToUpper(g.Status)
	lbl := FigureLabel(g.Figure)
	switch g.Status {
	case GateFail:
		return "FAIL " + g.Violation().String()
	case GateSkip:
		return fmt.Sprintf("SKIP %s: %s %s %s: %s", g.Scenario, lbl, boundNoun(g.Bound), numExact(g.Threshold), g.Reason)
	case GateWarn:
		return fmt.Sprintf("WARN %s: %s %s is %s the %s %s, but %s: within the noise", g.Scenario, lbl, describe(g.Measured),
			map[string]string{BoundMin: "below", BoundMax: "above"}[g.Bound], boundNoun(g.Bound), numExact(g.Threshold), g.Reason)
	}
	op := ">="
	if g.Bound == BoundMax {
		op = "<="
	}
	return fmt.Sprintf("%s %s: %s %s %s %s %s", tag, g.Scenario, lbl, describe(g.Measured), op, boundNoun(g.Bound), numExact(g.Threshold))
}

// Violation converts the result to a Violation (meaningful when Status is GateFail).
func (g GateResult) Violation() Violation {
	v := Violation{Scenario: g.Scenario, Figure: g.Figure, Bound: g.Bound, Threshold: g.Threshold, Measured: g.Measured}
	if g.Measured.N == 0 {
		v.Reason = g.Reason
	}
	return v
}

func boundNoun(b string) string {
	if b == BoundMax {
		return "ceiling"
	}
	return "floor"
}

// describe renders a Stat as "median X (min A, max B, n=N)", or "X (n=1)".
func describe(s Stat) string {
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

// MinRepeatsForRange is the number of repeats from which the range of the repeats, not the
// median alone, decides a gate (see Gate).
const MinRepeatsForRange = 3

// Gate checks every active bound of b against row and returns one GateResult per bound, in a
// fixed order.
//
// Noise rule ("a gate fails only on a difference larger than the noise"): with n >= 3 repeats
// the noise is the narrower half of the repeats' spread, min(median-min, max-median) — what
// the repeats scatter over on their quieter side, so one outlier cannot widen it. A bound fails
// when the median is beyond it by more than that noise; a median beyond the bound by less is
// "warn". Every repeat beyond the bound always fails (the distance then exceeds the noise), and
// so does a majority beyond it with the others close together: [0.1, 0.1, 0.6] against a floor
// of 0.5 fails, [0.45, 0.48, 0.52] warns. With n < 3 there is no usable spread and the median
// decides alone (n = 1: the value; n = 2: the mean of the two). A figure that was not measured
// (n = 0) fails, except a sidecar ceiling in a row without sidecar, which is skipped; a ratio
// bound fails when the row was not compared with a baseline; a row whose repeats failed (Row.
// Dropped > 0) fails a "runs" gate of its own, whatever the thresholds say.
//
// Why this rule: a scenario whose true value sits at the bound has its median on the wrong side
// half the time, but then by about as much as the repeats scatter, which warns; a real
// regression larger than the scatter moves the median across by more, and fails every time.
// Ratios to the baseline are computed per alternating pair, so machine-wide drift is cancelled
// before the rule is applied.
func Gate(row Row, b Bounds) []GateResult {
	var out []GateResult
	add := func(fig, bound string, l Limit, st *Stat, missing string) {
		if !l.Active() {
			return
		}
		g := GateResult{Scenario: row.Scenario, Figure: fig, Bound: bound, Threshold: l.Value}
		if !finite(l.Value) || l.Value < 0 { // only possible for Bounds built in code
			g.Threshold, g.Status, g.Reason = 0, GateFail, fmt.Sprintf("invalid threshold %v", l.Value)
			out = append(out, g)
			return
		}
		if st == nil {
			g.Status, g.Reason = GateFail, missing
			if fig == FigSidecarCoresPerGbps && bound == BoundMax {
				g.Status = GateSkip
			}
			out = append(out, g)
			return
		}
		g.Measured = *st
		g.Status, g.Reason = judge(*st, bound, l.Value)
		out = append(out, g)
	}
	var bw, cost *Stat
	if row.VsBaseline != nil {
		bw, cost = &row.VsBaseline.BandwidthRatio, &row.VsBaseline.CostRatio
	}
	const noBase = "not compared with a baseline"
	const noSidecar = "no sidecar measured"
	add(FigClientMbps, BoundMin, b.MinClientMbps, &row.ClientMbps, "")
	add(FigBandwidthRatio, BoundMin, b.MinBandwidthRatio, bw, noBase)
	add(FigSidecarCoresPerGbps, BoundMin, b.MinSidecarCoresPerGbps, row.SidecarCoresPerGbps, noSidecar)
	add(FigClientCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Client, &row.ClientCoresPerGbps, "")
	add(FigServerCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Server, &row.ServerCoresPerGbps, "")
	add(FigSidecarCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Sidecar, row.SidecarCoresPerGbps, noSidecar)
	add(FigKernelCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Kernel, &row.KernelCoresPerGbps, "")
	add(FigTotalCoresPerGbps, BoundMax, b.MaxCoresPerGbps.Total, &row.TotalCoresPerGbps, "")
	add(FigCostRatio, BoundMax, b.MaxCostRatio, cost, noBase)
	add(FigSetupSeconds, BoundMax, b.MaxSetupSeconds, &row.SetupSeconds, "")
	add(FigRetransmits, BoundMax, b.MaxRetransmits, &row.Retransmits, "")
	if row.Dropped > 0 { // a repeat that failed is a failed measurement, whatever the bounds
		d := float64(row.Dropped)
		out = append(out, GateResult{Scenario: row.Scenario, Figure: FigFailedRuns, Bound: BoundMax,
			Measured: Stat{N: 1, Median: d, Min: d, Max: d, Mean: d}, Status: GateFail})
	}
	return out
}

// judge applies the noise rule documented on Gate.
func judge(st Stat, bound string, t float64) (status, reason string) {
	if st.N == 0 {
		return GateFail, "not measured"
	}
	beyond := func(x float64) bool {
		if bound == BoundMax {
			return x > t
		}
		return x < t
	}
	if !beyond(st.Median) { // for n = 2 the median is the mean of the two
		return GatePass, ""
	}
	if st.N < MinRepeatsForRange {
		return GateFail, ""
	}
	dist := math.Abs(st.Median - t)
	noise := math.Min(st.Median-st.Min, st.Max-st.Median)
	if dist > noise {
		return GateFail, ""
	}
	return GateWarn, fmt.Sprintf("only by %s, less than the repeats' spread on their quieter side (%s)", Num(dist), Num(noise))
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

// ApplyGates checks every row against t.For(row.Scenario), stores all results in s.Gates and
// returns the violations. A nil t checks nothing.
func (s *Summary) ApplyGates(t *Thresholds) []Violation {
	s.Gates = nil
	var out []Violation
	for _, row := range s.Rows {
		for _, g := range Gate(row, t.For(row.Scenario)) {
			s.Gates = append(s.Gates, g)
			if g.Status == GateFail {
				out = append(out, g.Violation())
			}
		}
	}
	return out
}
