package result

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	return &s, nil
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
