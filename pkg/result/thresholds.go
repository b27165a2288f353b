package result

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
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
// one scenario. Unknown keys, empty, negative, NaN or infinite values are errors.
//
//	defaults:
//	  confidence: 0.90              # of the gates' confidence intervals (0.5 <= c < 1; default 0.90)
//	  min_client_mbps: 200          # floor on client application Mbps (bandwidth runs)
//	  min_bandwidth_ratio: 0.8      # floor on client Mbps / baseline's (per bandwidth pair)
//	  max_cost_ratio:               # ceilings on cores/Gbps / baseline's (per cost pair)
//	    client: 1.2
//	    server: 1.2
//	    sidecar: 10                 # sidecars' cores/Gbps over the baseline's TOTAL cores/Gbps
//	    kernel: 1.5
//	    total: 1.25
//	  max_cores_per_gbps:           # absolute ceilings on cores per Gbps (cost runs)
//	    client: 1.0
//	    server: 1.0
//	    sidecar: 3.0                # both sidecars summed; skipped when there is no sidecar
//	    kernel: 2.0                 # machine busy minus the measured processes
//	    total: 4.0
//	  max_setup_seconds: 30         # ceiling on connection set-up + warm-up time
//	  max_retransmits: 100000       # ceiling on client + server TCP retransmits per run
//	scenarios:
//	  gr+istio:
//	    min_sidecar_cores_per_gbps: 0.05   # floor: proves the sidecar is in the path
//	    max_sidecar_per_app: 5.0           # sidecars' CPU over client + server CPU, per cost run
//	    max_cores_per_gbps: {total: 6.0}
//	  nodeport:
//	    max_setup_seconds: off
//
// A ratio bound is the tolerance of that figure: `max_cost_ratio: {total: 1.25}` lets the path
// cost up to 25 % more per Gbps than the baseline measured alternately with it. How a bound is
// judged against the samples (confidence interval, or the median with too few) is documented
// on Gate.
type Thresholds struct {
	Defaults  Bounds            `yaml:"defaults"`
	Scenarios map[string]Bounds `yaml:"scenarios"`
}

// Bounds are the limits that apply to one scenario. A Limit left unset is not checked.
type Bounds struct {
	// Confidence is the level of the confidence intervals gates are judged by (DefaultConfidence
	// when unset).
	Confidence             Limit      `yaml:"confidence"`
	MinClientMbps          Limit      `yaml:"min_client_mbps"`
	MinBandwidthRatio      Limit      `yaml:"min_bandwidth_ratio"`
	MaxCostRatio           CoreLimits `yaml:"max_cost_ratio"`
	MaxCoresPerGbps        CoreLimits `yaml:"max_cores_per_gbps"`
	MinSidecarCoresPerGbps Limit      `yaml:"min_sidecar_cores_per_gbps"`
	// MaxSidecarPerApp bounds both sidecars' CPU over the client's and server's in the same
	// cost run (RunFigures.SidecarPerApp); skipped without a sidecar.
	MaxSidecarPerApp Limit `yaml:"max_sidecar_per_app"`
	MaxSetupSeconds  Limit `yaml:"max_setup_seconds"`
	MaxRetransmits   Limit `yaml:"max_retransmits"`
}

// DefaultConfidence is the confidence level of the gates' intervals when the thresholds do not
// set one. At 0.90 five pairs give an interval (the median's from the 1st to the 5th order
// statistic, 93.75 % coverage); at 0.95 it takes six.
const DefaultConfidence = 0.90

// CoreLimits are bounds per cost component.
type CoreLimits struct {
	Client  Limit `yaml:"client"`
	Server  Limit `yaml:"server"`
	Sidecar Limit `yaml:"sidecar"`
	Kernel  Limit `yaml:"kernel"`
	Total   Limit `yaml:"total"`
}

// coreKeys are the keys a CoreLimits mapping accepts.
var coreKeys = []string{"client", "server", "sidecar", "kernel", "total"}

// UnmarshalYAML accepts a mapping of the component keys, or `off` for all of them; a single
// number is an error that says which component to write it under.
func (c *CoreLimits) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.EqualFold(n.Value, "off") {
		off := Limit{Set: true, Off: true}
		*c = CoreLimits{Client: off, Server: off, Sidecar: off, Kernel: off, Total: off}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of components {client, server, sidecar, kernel, total}, e.g. {total: %s}", n.Line, n.Value)
	}
	var out CoreLimits
	dst := map[string]*Limit{"client": &out.Client, "server": &out.Server, "sidecar": &out.Sidecar, "kernel": &out.Kernel, "total": &out.Total}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		l, ok := dst[k.Value]
		if !ok {
			return fmt.Errorf("line %d: field %s not found (components: %s)", k.Line, k.Value, strings.Join(coreKeys, ", "))
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: mapping key %q already defined", k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return fmt.Errorf("line %d: %s has no value (a number, or off)", k.Line, k.Value)
		}
		if err := l.UnmarshalYAML(v); err != nil {
			return err
		}
	}
	*c = out
	return nil
}

// over applies o's set limits over c's.
func (c CoreLimits) over(o CoreLimits) CoreLimits {
	return CoreLimits{
		Client:  c.Client.over(o.Client),
		Server:  c.Server.over(o.Server),
		Sidecar: c.Sidecar.over(o.Sidecar),
		Kernel:  c.Kernel.over(o.Kernel),
		Total:   c.Total.over(o.Total),
	}
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
	if err := t.Defaults.Confidence.checkConfidence("defaults"); err != nil {
		return nil, err
	}
	for name, b := range t.Scenarios {
		if strings.TrimSpace(name) == "" {
			return nil, errors.New("parse thresholds: empty scenario name")
		}
		if err := b.Confidence.checkConfidence("scenario " + name); err != nil {
			return nil, err
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

// checkConfidence rejects a confidence level outside [0.5, 1) or `off`.
func (l Limit) checkConfidence(where string) error {
	if !l.Set {
		return nil
	}
	if l.Off || l.Value < 0.5 || l.Value >= 1 {
		return fmt.Errorf("parse thresholds: %s: confidence must be a number from 0.5 to below 1 (e.g. 0.90)", where)
	}
	return nil
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
		Confidence:             d.Confidence.over(o.Confidence),
		MinClientMbps:          d.MinClientMbps.over(o.MinClientMbps),
		MinBandwidthRatio:      d.MinBandwidthRatio.over(o.MinBandwidthRatio),
		MaxCostRatio:           d.MaxCostRatio.over(o.MaxCostRatio),
		MaxCoresPerGbps:        d.MaxCoresPerGbps.over(o.MaxCoresPerGbps),
		MinSidecarCoresPerGbps: d.MinSidecarCoresPerGbps.over(o.MinSidecarCoresPerGbps),
		MaxSidecarPerApp:       d.MaxSidecarPerApp.over(o.MaxSidecarPerApp),
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
