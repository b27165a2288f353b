package result

import "fmt"

// pairKey identifies a run for pairing with the baseline: same mode, same repeat number.
type pairKey struct {
	mode   string
	repeat int
}

// CompareToBaseline sets row.VsBaseline from baseline. Ratios are computed per pair of runs
// with the same (Mode, Repeat) (baseline run i vs scenario run i of the same mode: the e2e
// suite alternates them, so each pair saw the same machine state) and each Stat summarises the
// pair ratios, keeping them as its Values for the gates' confidence intervals. Bandwidth ratios
// come from bandwidth pairs, cost ratios from cost pairs (runs without a mode pair for both).
// When no run pairs, the ratios fall back to the rows' aggregates (see Comparison.Pairs). Pairs
// with a zero or unmeasured figure on either side are left out of that figure's ratio; nothing
// here yields NaN.
func CompareToBaseline(row *Row, baseline Row) {
	if row == nil {
		return
	}
	cmp := &Comparison{Baseline: baseline.Scenario}
	base := make(map[pairKey]RunFigures, len(baseline.Runs))
	for _, b := range baseline.Runs {
		base[pairKey{b.Mode, b.Repeat}] = b
	}
	var bw, total, client, server, kernel, sidecar []float64
	hasSidecar := false
	for _, r := range row.Runs {
		b, ok := base[pairKey{r.Mode, r.Repeat}]
		if !ok {
			continue
		}
		cmp.Pairs++
		if modeMatches(r.Mode, ModeBandwidth) {
			cmp.BandwidthPairs++
			bw = append(bw, ratio(r.ClientMbps, b.ClientMbps))
		}
		if modeMatches(r.Mode, ModeCost) {
			cmp.CostPairs++
			if r.Saturated || b.Saturated {
				cmp.SaturatedCostPairs++
			}
			total = append(total, ptrRatio(r.TotalCoresPerGbps, b.TotalCoresPerGbps))
			client = append(client, ptrRatio(r.ClientCoresPerGbps, b.ClientCoresPerGbps))
			server = append(server, ptrRatio(r.ServerCoresPerGbps, b.ServerCoresPerGbps))
			kernel = append(kernel, ptrRatio(r.KernelCoresPerGbps, b.KernelCoresPerGbps))
			if r.SidecarCoresPerGbps != nil {
				hasSidecar = true
			}
			sidecar = append(sidecar, ptrRatio(r.SidecarCoresPerGbps, b.TotalCoresPerGbps))
		}
	}
	if cmp.Pairs > 0 {
		cmp.BandwidthRatio = Summarize(bw)
		cmp.CostRatio = Summarize(total)
		cmp.ClientCostRatio = Summarize(client)
		cmp.ServerCostRatio = Summarize(server)
		cmp.KernelCostRatio = Summarize(kernel)
		if hasSidecar {
			cmp.SidecarCostRatio = optStat(Summarize(sidecar))
		}
	} else {
		cmp.BandwidthRatio = statRatio(row.ClientMbps, baseline.ClientMbps)
		cmp.CostRatio = statRatio(row.TotalCoresPerGbps, baseline.TotalCoresPerGbps)
		cmp.ClientCostRatio = statRatio(row.ClientCoresPerGbps, baseline.ClientCoresPerGbps)
		cmp.ServerCostRatio = statRatio(row.ServerCoresPerGbps, baseline.ServerCoresPerGbps)
		cmp.KernelCostRatio = statRatio(row.KernelCoresPerGbps, baseline.KernelCoresPerGbps)
		if row.SidecarCoresPerGbps != nil {
			cmp.SidecarCostRatio = optStat(statRatio(*row.SidecarCoresPerGbps, baseline.TotalCoresPerGbps))
		}
	}
	row.VsBaseline = cmp
}

// ptrRatio is *a / *b, NaN when either is not measured (left out by Summarize).
func ptrRatio(a, b *float64) float64 {
	if a == nil || b == nil {
		return ratio(0, 0)
	}
	return ratio(*a, *b)
}

// statRatio divides two aggregates: median by median, mean by mean, and the widest range
// (a.Min/b.Max .. a.Max/b.Min). Empty when either is empty or b's figures are not positive.
// It has no Values: there are no pairs to take samples from.
func statRatio(a, b Stat) Stat {
	if a.N == 0 || b.N == 0 {
		return Stat{}
	}
	med, lo, hi, mean := ratio(a.Median, b.Median), ratio(a.Min, b.Max), ratio(a.Max, b.Min), ratio(a.Mean, b.Mean)
	if !finite(med) || !finite(lo) || !finite(hi) || !finite(mean) {
		return Stat{}
	}
	return Stat{N: min(a.N, b.N), Median: med, Min: lo, Max: hi, Mean: mean}
}

// ApplyBaseline compares every row with the row named baseline (CompareToBaseline), the
// baseline row included (its ratios are 1). It fails when no row has that name.
func ApplyBaseline(rows []Row, baseline string) error {
	idx := -1
	for i := range rows {
		if rows[i].Scenario == baseline {
			idx = i
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("apply baseline: no row named %q among %d rows", baseline, len(rows))
	}
	b := rows[idx]
	b.VsBaseline = nil
	for i := range rows {
		CompareToBaseline(&rows[i], b)
	}
	return nil
}
