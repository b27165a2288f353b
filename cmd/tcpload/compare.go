package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"strings"

	"github.com/pathcost/pathcost/pkg/result"
)

// compareJSON is what `tcpload compare --json` prints.
type compareJSON struct {
	Old          string         `json:"old"`
	New          string         `json:"new"`
	TolerancePct float64        `json:"tolerance_pct"`
	Alpha        float64        `json:"alpha"`
	Confidence   float64        `json:"confidence"`
	Regressions  int            `json:"regressions"`
	Deltas       []result.Delta `json:"deltas"`
}

func runCompare(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	tolerance := fs.Float64("tolerance", result.DefaultTolerancePct, "percent a figure may worsen before a significant change fails")
	alpha := fs.Float64("alpha", 0.05, "significance level of the Mann-Whitney U test")
	confidence := fs.Float64("confidence", result.DefaultConfidence, "level of the medians' confidence intervals")
	asJSON := fs.Bool("json", false, "print JSON instead of the table")
	fs.Usage = usageFunc(fs, "compare OLD NEW [--tolerance PCT] [--alpha A] [--confidence C] [--json]",
		"Compares two summaries (results directories or summary.json files) figure by figure, as\n"+
			"benchstat does: old and new medians with the reach of their confidence intervals, the\n"+
			"change of the median with the p-value of a Mann-Whitney U test between the repeats, and\n"+
			"\"~\" when the change is not significant. Exit status 1 when a figure got significantly\n"+
			"worse by more than the tolerance, 2 on bad input (a missing or unreadable summary, no\n"+
			"scenario in common).")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return exitCode(err)
	}
	if len(paths) != 2 {
		return exitCode(usageErr("compare: want OLD and NEW, got %d arguments", len(paths)))
	}
	if !(*tolerance >= 0) || math.IsInf(*tolerance, 0) {
		return exitCode(usageErr("compare: --tolerance %v: want a percentage >= 0", *tolerance))
	}
	if !(*alpha > 0 && *alpha < 1) {
		return exitCode(usageErr("compare: --alpha %v: want 0 < alpha < 1", *alpha))
	}
	if !(*confidence >= 0.5 && *confidence < 1) {
		return exitCode(usageErr("compare: --confidence %v: want 0.5 <= confidence < 1", *confidence))
	}
	old, err := readSummary(paths[0])
	if err != nil {
		return exitCode(usageErr("compare: OLD: %v", err))
	}
	cur, err := readSummary(paths[1])
	if err != nil {
		return exitCode(usageErr("compare: NEW: %v", err))
	}
	if len(result.CommonScenarios(*old, *cur)) == 0 {
		return exitCode(usageErr("compare: %s (%s) and %s (%s) have no scenario in common",
			paths[0], scenarioList(old), paths[1], scenarioList(cur)))
	}
	ds := result.Compare(*old, *cur, result.CompareOptions{Alpha: *alpha, Confidence: *confidence, TolerancePct: *tolerance})
	regs := result.Regressions(ds)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(compareJSON{Old: paths[0], New: paths[1], TolerancePct: *tolerance, Alpha: *alpha,
			Confidence: *confidence, Regressions: len(regs), Deltas: ds})
		if err != nil {
			return exitCode(fmt.Errorf("compare: encode: %w", err))
		}
	} else {
		if err := result.WriteDeltas(stdout, ds); err != nil {
			return exitCode(err)
		}
		fmt.Fprintf(stdout, "\n~: not significant (Mann-Whitney U test, alpha %g); ±: reach of the median's %g%% confidence interval; tolerance %g%%.\n",
			*alpha, *confidence*100, *tolerance)
		if len(regs) > 0 {
			fmt.Fprintf(stdout, "%d figure(s) significantly worse by more than %g%%.\n", len(regs), *tolerance)
		}
	}
	if len(regs) > 0 {
		return 1
	}
	return 0
}

// scenarioList names a summary's scenarios for a message ("no rows" when it has none).
func scenarioList(s *result.Summary) string {
	if len(s.Rows) == 0 {
		return "no rows"
	}
	names := make([]string, len(s.Rows))
	for i, r := range s.Rows {
		names[i] = r.Scenario
	}
	return strings.Join(names, ", ")
}
