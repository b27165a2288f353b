package result

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
)

// SummarySchema is the value of Summary.Schema for summaries written by this version.
const SummarySchema = "pathcost/summary/v1"

// Summary is the outcome of one harness run: every scenario's row, the gates checked, and what
// the run was (provider, host, settings). It is what reports are drawn from and what
// `tcpload compare` reads.
type Summary struct {
	Schema    string `json:"schema"`
	Provider  string `json:"provider,omitempty"`
	StartedAt string `json:"started_at,omitempty"`
	Host      string `json:"host,omitempty"`
	// Settings are the run's parameters as text (connections, buffer size, duration ...).
	Settings map[string]string `json:"settings,omitempty"`
	// Baseline names the row the others were compared with ("" when none).
	Baseline string `json:"baseline,omitempty"`
	Rows     []Row  `json:"rows"`
	// Gates lists every threshold checked, passed or not (see Gate).
	Gates []GateResult `json:"gates,omitempty"`
	// Notes are footnotes for the whole run (e.g. what the provider can and cannot measure).
	Notes []string `json:"notes,omitempty"`
}

// Row returns the row of scenario, or false.
func (s *Summary) Row(scenario string) (Row, bool) {
	for _, r := range s.Rows {
		if r.Scenario == scenario {
			return r, true
		}
	}
	return Row{}, false
}

// Failed reports whether any gate failed.
func (s *Summary) Failed() bool {
	for _, g := range s.Gates {
		if g.Status == GateFail {
			return true
		}
	}
	return false
}

// Write writes s as indented JSON to w, setting Schema when it is empty.
func (s *Summary) Write(w io.Writer) error {
	if s.Schema == "" {
		s.Schema = SummarySchema
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// WriteFile writes s to path ("-" means standard output).
func (s *Summary) WriteFile(path string) error {
	if path == "-" {
		return s.Write(os.Stdout)
	}
	var buf bytes.Buffer
	if err := s.Write(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write summary file: %w", err)
	}
	return nil
}

// DecodeSummary reads one summary from JSON and checks its schema.
func DecodeSummary(data []byte) (*Summary, error) {
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	if s.Schema != SummarySchema {
		return nil, fmt.Errorf("decode summary: schema %q, want %q", s.Schema, SummarySchema)
	}
	s.upgradeLegacyRows()
	return &s, nil
}

// LegacyNote is the note added to a row read from a summary written before bandwidth and cost
// runs were separate.
const LegacyNote = "written before bandwidth and cost were measured in separate runs: the cost figures come from the same unpaced runs as the bandwidth"

// upgradeLegacyRows fills, for rows written before runs had a mode, what the rows of this
// version say: which runs gave which figures, the load the cost was measured at (the same
// unpaced runs), and whether those runs saturated the machine (from the summary's "cpus"
// setting, the only record of the cores such summaries kept).
func (s *Summary) upgradeLegacyRows() {
	cpus, _ := strconv.Atoi(s.Settings["cpus"])
	for i := range s.Rows {
		r := &s.Rows[i]
		if r.BandwidthRuns != 0 || r.CostRuns != 0 || r.Repeats == 0 || r.CoresPerGbpsOf != "" {
			continue
		}
		legacy := true
		for _, f := range r.Runs {
			if f.Mode != "" {
				legacy = false
			}
		}
		if !legacy {
			continue
		}
		r.BandwidthRuns, r.CostRuns = r.Repeats, r.Repeats
		r.CostLoadMbps = r.ClientMbps
		r.CoresPerGbpsOf = CoresPerGbpsOf
		for j := range r.Runs {
			f := &r.Runs[j]
			if f.MachineCores == 0 && cpus > 0 && r.SharedNode {
				f.MachineCores = cpus
			}
			if f.MachineBusyCores != nil && saturated(*f.MachineBusyCores, f.MachineCores) {
				f.Saturated = true
				r.SaturatedCostRuns++
			}
		}
		r.CostSaturated = r.SaturatedCostRuns > 0
		r.Notes = append(r.Notes, LegacyNote)
		if r.CostSaturated {
			r.Notes = append(r.Notes, fmt.Sprintf("cost measured on a saturated machine (busier than %.0f%% of its cores) in %d of %d cost runs: its cores per Gbps are capped by the cores available",
				SaturationBusyFraction*100, r.SaturatedCostRuns, r.CostRuns))
		}
		if r.VsBaseline != nil && r.VsBaseline.CostPairs == 0 && r.VsBaseline.BandwidthPairs == 0 {
			r.VsBaseline.BandwidthPairs, r.VsBaseline.CostPairs = r.VsBaseline.Pairs, r.VsBaseline.Pairs
			// at least the row's own saturated runs are in saturated pairs
			r.VsBaseline.SaturatedCostPairs = min(r.SaturatedCostRuns, r.VsBaseline.CostPairs)
		}
	}
}

// ReadSummary reads one summary from a JSON file.
func ReadSummary(path string) (*Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	s, err := DecodeSummary(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
