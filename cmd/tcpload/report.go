package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pathcost/pathcost/pkg/report"
	"github.com/pathcost/pathcost/pkg/result"
)

// readSummary reads summary.json from a results directory or a file path.
func readSummary(path string) (*result.Summary, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "summary.json")
	}
	return result.ReadSummary(path)
}

func runReport(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print the markdown table instead of the text table")
	thresholds := fs.String("thresholds", "", "re-apply the gates of this thresholds file (YAML)")
	out := fs.String("out", "", "also write summary.json/.md/.txt and chart.svg into this directory")
	fs.Usage = usageFunc(fs, "report RESULTS_DIR|summary.json ... [--markdown] [--thresholds FILE] [--out DIR]", "Prints the seed-shaped table of a run's summary. Several summaries (e.g. one per scenario,\nas make e2e writes them) are merged into one table; their per-scenario baseline rows are\nleft out of the merged table. Exit status 1 when a gate failed.")
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
			return exitCode(err)
		}
		sums = append(sums, s)
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

func runCompare(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, "compare OLD NEW", "Compares two summaries (results directories or summary.json files) figure by figure:\nold and new medians, the change in percent, and whether the min-max ranges overlap.")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return exitCode(err)
	}
	if len(paths) != 2 {
		return exitCode(usageErr("compare: want OLD and NEW, got %d arguments", len(paths)))
	}
	old, err := readSummary(paths[0])
	if err != nil {
		return exitCode(err)
	}
	cur, err := readSummary(paths[1])
	if err != nil {
		return exitCode(err)
	}
	if err := result.WriteDeltas(stdout, result.Compare(*old, *cur)); err != nil {
		return exitCode(err)
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
			if !strings.HasPrefix(r.Scenario, "baseline:") {
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
