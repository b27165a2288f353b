package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pathcost/pathcost/pkg/report"
	"github.com/pathcost/pathcost/pkg/result"
)

// readSummary reads summary.json from a results directory or a file path; the error names the
// path and says what is wrong with it (missing, a directory without summary.json, not a
// summary).
func readSummary(path string) (*result.Summary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.IsDir() {
		p := filepath.Join(path, report.FileJSON)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: a directory without %s (not a results directory, or its run did not finish)", path, report.FileJSON)
		}
		path = p
	}
	return result.ReadSummary(path)
}

func runReport(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print the markdown table instead of the text table")
	thresholds := fs.String("thresholds", "", "re-apply the gates of this thresholds file (YAML) to the scenario rows")
	out := fs.String("out", "", "also write summary.json/.md/.txt and chart.svg into this directory")
	fs.Usage = usageFunc(fs, "report RESULTS_DIR|summary.json ... [--markdown] [--thresholds FILE] [--out DIR]",
		"Prints the seed-shaped table of a run's summary. Several summaries (e.g. one per scenario,\n"+
			"as make e2e writes them) are merged into one table; their per-scenario baseline rows are\n"+
			"left out of the merged table. An unreadable argument is skipped with a warning; none\n"+
			"readable exits 2. Baseline rows are not gated. Exit status 1 when a gate failed.")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return exitCode(err)
	}
	if len(paths) < 1 {
		return exitCode(usageErr("report: want RESULTS_DIR or summary.json arguments"))
	}
	var sums []*result.Summary
	for _, p := range paths {
		s, err := readSummary(p)
		if err != nil {
			fmt.Fprintf(stderr, "tcpload: report: warning: skipping %v\n", err)
			continue
		}
		sums = append(sums, s)
	}
	if len(sums) == 0 {
		return exitCode(usageErr("report: no readable summary among %s", strings.Join(paths, ", ")))
	}
	s := sums[0]
	if len(sums) > 1 {
		s = mergeSummaries(sums)
	}
	if *thresholds != "" {
		t, err := result.LoadThresholds(*thresholds)
		if err != nil {
			return exitCode(usageErr("report: --thresholds: %v", err))
		}
		s.ApplyGates(t)
	}
	if *markdown {
		err = report.Markdown(stdout, *s)
	} else {
		err = report.Text(stdout, *s)
	}
	if err != nil {
		return exitCode(err)
	}
	if *out != "" {
		if err := report.WriteAll(*out, *s); err != nil {
			return exitCode(err)
		}
		fmt.Fprintf(stderr, "report: wrote %s\n", *out)
	}
	if s.Failed() {
		return 1
	}
	return 0
}

// mergeSummaries joins the scenario rows, gates and notes of several runs into one summary; the
// baseline rows each run measured for its own comparison ("baseline:NAME") are left out.
func mergeSummaries(sums []*result.Summary) *result.Summary {
	out := *sums[0]
	out.Rows, out.Gates, out.Notes = nil, nil, nil
	seen := map[string]bool{}
	for _, s := range sums {
		for _, r := range s.Rows {
			if !strings.HasPrefix(r.Scenario, result.BaselinePrefix) {
				out.Rows = append(out.Rows, r)
			}
		}
		out.Gates = append(out.Gates, s.Gates...)
		for _, n := range s.Notes {
			if !seen[n] {
				seen[n] = true
				out.Notes = append(out.Notes, n)
			}
		}
	}
	return &out
}
