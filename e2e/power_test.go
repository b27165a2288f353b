//go:build gatepower

package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/topo"
)

// The measured power of the gates (make gate-power): trials of the plain scenario measured
// against its plain baseline as the suite measures every scenario (the same repeats, modes and
// thresholds), once as it is (A/A: any failed gate is a false alarm) and once with a known
// regression injected into the scenario's path, which the gate on that figure must catch. The
// CPU regression goes to the server: at the paced load its cost per Gbps scatters least between
// runs here (about ±6 % against the client's ±15 %).

var (
	flagTrials    = flag.Int("trials", 10, "gate power: trials per injected regression (and of A/A runs)")
	flagInjectPct = flag.Float64("inject-pct", 20, "gate power: size of the injected regressions, in percent")
	flagMinDetect = flag.Float64("min-detection", 0.9, "gate power: the detection rate each injection must reach")
	flagMaxFalse  = flag.Float64("max-false-alarms", 0.05, "gate power: the A/A false-alarm rate not to exceed")
	flagPowerOnly = flag.String("power-only", "", "gate power: run only the plain part (A/A, bandwidth, server CPU) or only the sidecar part: plain or sidecar (default both)")
)

// injection is a known regression put into the scenario's path for one trial.
type injection struct {
	name   string
	figure string // the gate that must fail (null: that must not fail); "" for A/A: any gate
	null   bool   // no regression injected: a failed gate is a false alarm
	modes  []string
	// apply changes the path (or returns extra tcpload arguments) and returns how to undo it;
	// nil: nothing to change (the regression, if any, is in the path the trials run on).
	apply func() (extra map[string][]string, undo func())
}

// calibration is what the unmodified scenario carried and cost, measured once before the trials.
type calibration struct {
	clientMbps         float64 // bandwidth runs
	serverCoresPerGbps float64 // cost runs
}

// powerResult is one injection's outcome over its trials.
type powerResult struct {
	Injection string `json:"injection"`
	Figure    string `json:"figure,omitempty"`
	// Null marks trials without a regression: Rate is then a false-alarm rate (A/A, and the
	// sidecar gate on an unmodified path).
	Null     bool     `json:"null,omitempty"`
	Trials   int      `json:"trials"`
	Failed   int      `json:"failed"` // trials in which the gate (A/A: any gate) failed
	Rate     float64  `json:"rate"`   // detection rate, or false-alarm rate for null trials
	Measured []string `json:"measured"`
	// Medians are the gated figure's medians the trials were judged on (not for A/A).
	Medians []float64 `json:"medians,omitempty"`
	// Skipped says why the injection was not run.
	Skipped string `json:"skipped,omitempty"`
}

// injections are the regressions injected into the plain scenario's path p, sized from cal.
func injections(t *testing.T, pct float64, p provider.Path, cal calibration) []injection {
	f := 1 - pct/100
	return []injection{
		{name: "A/A (scenario = baseline)", modes: modes(), null: true},
		{name: fmt.Sprintf("bandwidth -%g%% (tc tbf on the server's link)", pct), figure: result.FigBandwidthRatio, modes: []string{result.ModeBandwidth},
			apply: func() (map[string][]string, func()) {
				rate := cal.clientMbps * f
				burst := max(int(rate*1e6/8/250), 256<<10) // 4 ms of data, at least 256 KiB
				run(t, p.Server(), "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
					"rate", fmt.Sprintf("%.0fmbit", rate), "burst", fmt.Sprint(burst), "latency", "50ms")
				return nil, func() { run(t, p.Server(), "tc", "qdisc", "del", "dev", "eth0", "root") }
			}},
		{name: fmt.Sprintf("server CPU +%g%% (tcpload --selftest-burn-per-kb)", pct), figure: result.FigServerCostRatio, modes: []string{result.ModeCost},
			apply: func() (map[string][]string, func()) {
				// c cores per Gbps = c s of CPU per 1e9/8 bytes = c*8192 ns per KiB
				ns := cal.serverCoresPerGbps * pct / 100 * 8192
				return map[string][]string{"server": {"--selftest-burn-per-kb", fmt.Sprintf("%.0fns", ns)}}, func() {}
			}},
	}
}

func TestGatePower(t *testing.T) {
	requireProvider(t)
	only := *flagPowerOnly
	if only != "" && only != "plain" && only != "sidecar" {
		t.Fatalf("-power-only %q: want plain or sidecar (or empty for both)", only)
	}
	f := features.New("gate power").
		Assess("injected regressions are caught and A/A runs pass", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			requireProvider(t)
			base := up(t, topo.Plain)
			var out []powerResult
			if only != "sidecar" {
				s := topo.Plain
				sc := up(t, s)
				bounds := suite.thresholds.For(s.Name)
				cal := calibrate(t, sc)
				t.Logf("calibration: %s carried %.0f Mbps unpaced and cost %.4f server cores/Gbps at the paced load", s.Name, cal.clientMbps, cal.serverCoresPerGbps)
				for _, inj := range injections(t, *flagInjectPct, sc, cal) {
					out = append(out, trials(t, inj, base, sc, bounds))
				}
				writePower(t, out) // kept should the sidecar's part stop the test
			}
			if only != "plain" {
				sc := sidecarPower(t, base)
				if only == "sidecar" && len(sc) > 0 && sc[0].Skipped != "" {
					t.Fatalf("-power-only sidecar: the sidecar part could not run: %s", sc[0].Skipped)
				}
				out = append(out, sc...)
			}
			writePower(t, out)
			for _, pr := range out {
				switch {
				case pr.Skipped != "":
					assert.Fail(t, "an injection could not run", "%s: %s (-power-only plain runs without it)", pr.Injection, pr.Skipped)
				case pr.Null:
					assert.LessOrEqual(t, pr.Rate, *flagMaxFalse, "%s: false-alarm rate", pr.Injection)
				default:
					assert.GreaterOrEqual(t, pr.Rate, *flagMinDetect, "%s: detection rate of the %s gate", pr.Injection, pr.Figure)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// trials runs an injection's trials: sc against base, alternating, in the injection's modes,
// each trial judged by the gates of bounds.
func trials(t *testing.T, inj injection, base, sc provider.Path, bounds result.Bounds) powerResult {
	t.Helper()
	pr := powerResult{Injection: inj.name, Figure: inj.figure, Null: inj.null, Trials: *flagTrials}
	for trial := 0; trial < *flagTrials; trial++ {
		var extra map[string][]string
		undo := func() {}
		if inj.apply != nil {
			extra, undo = inj.apply()
		}
		name := fmt.Sprintf("power-%s-%02d", slug(inj.name), trial)
		var runs, baseRuns []result.Run
		for i := 0; i < *flagRepeats; i++ {
			for _, mode := range inj.modes {
				baseRuns = append(baseRuns, runOnce(t, base, "baseline:"+name, mode, i, nil))
				runs = append(runs, runOnce(t, sc, name, mode, i, extra))
			}
		}
		undo()
		baseRow := result.Aggregate("baseline:"+name, "", baseRuns)
		row := result.Aggregate(name, "", runs)
		// a trial with a failed run measured nothing: it is neither caught nor missed
		require.Zero(t, row.Dropped+baseRow.Dropped, "%s trial %d: runs failed (%v %v): the gate's power cannot be judged", inj.name, trial, row.DroppedRuns, baseRow.DroppedRuns)
		result.CompareToBaseline(&row, baseRow)
		gates := result.Gate(row, bounds)
		caught, what := judgeTrial(gates, inj.figure)
		for _, g := range gates {
			if inj.figure != "" && g.Figure == inj.figure && g.Measured.N > 0 {
				pr.Medians = append(pr.Medians, g.Measured.Median)
			}
		}
		if caught {
			pr.Failed++
		}
		pr.Measured = append(pr.Measured, what)
		t.Logf("%s trial %d: %v: %s", inj.name, trial, caught, what)
	}
	pr.Rate = float64(pr.Failed) / float64(pr.Trials)
	return pr
}

// sidecarPower measures the sidecar gate of gr+istio (max_sidecar_per_app: both sidecars' CPU
// over the client's and server's in the same cost run): trials of the scenario as it is (a
// failed sidecar gate is a false alarm) and with both emulated sidecars made -inject-pct dearer
// per byte (the gate must fail), cost runs alternating with the plain baseline as the suite
// runs them. The regression is e2e/testdata/sidecarburn.c preloaded into the proxies: CPU spun
// per byte each proxy sends, sized from the sidecars' cost measured first; its size is then
// measured, pair by pair against the unmodified sidecars, and resized once when it is off by
// more than a quarter (the spin moves more than itself: work the kernel does on the proxy's
// CPU while it spins is charged to it).
func sidecarPower(t *testing.T, base provider.Path) []powerResult {
	t.Helper()
	const fig = result.FigSidecarPerApp
	pct := *flagInjectPct
	name := fmt.Sprintf("sidecars' CPU per byte +%g%%", pct)
	s := topo.GRIstio
	so, why := buildSidecarBurner(t)
	if why == "" && !sidecarRegressionPossible() {
		why = "-provider " + suite.provider.Name() + " cannot preload into its sidecars (only -provider local can)"
	}
	if why != "" {
		t.Logf("%s: not run: %s", name, why)
		return []powerResult{{Injection: name, Figure: fig, Skipped: why}}
	}
	normal := up(t, s)
	var calRuns []result.Run
	for i := 0; i < *flagRepeats; i++ {
		calRuns = append(calRuns, runOnce(t, normal, "power-sidecar-calibration", result.ModeCost, i, nil))
	}
	asIs := result.Aggregate("as is", "", calRuns).SidecarCoresPerGbps
	require.NotNil(t, asIs, "calibration: the sidecars' cost measured")
	require.Positive(t, asIs.Median, "calibration: the sidecars carried the traffic")
	// c cores per Gbps of payload = c*8192 ns of CPU per KiB; each of the two proxies sends
	// every payload byte once (the TLS leg adds about 0.2 %), so each burns half the extra
	perKB := asIs.Median * pct / 100 * 8192 / 2
	var slow provider.Path
	var size float64
	for attempt := 0; ; attempt++ {
		slow = upOn(t, sidecarRegression(t, sidecarBurnEnv(so, perKB)), s)
		size = sidecarBurnSize(t, normal, slow, attempt)
		t.Logf("calibration: %s: sidecars %.3f cores/Gbps as they are; each proxy burning %.0f ns per KiB sent raised it by %+.0f %% (median of %d pairs)",
			s.Name, asIs.Median, perKB, size, 2**flagRepeats)
		// the proxies' own work per byte shrinks as the spin delays them (fuller reads), so
		// the spin's effect is not proportional to it: resize up to twice, by at most 2x
		if attempt == 2 || math.Abs(size-pct) <= pct/4 {
			break
		}
		f := 2.0
		if size > 0 {
			f = min(max(pct/size, 0.5), 2)
		}
		perKB *= f
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		assert.NoError(t, slow.Down(ctx), "tear down the burning path of attempt %d", attempt)
		cancel()
	}
	require.Greater(t, size, pct/2, "the burner preloaded into the sidecars did not raise their cost by half the %g %% asked: is it loaded?", pct)
	bounds := suite.thresholds.For(s.Name)
	cost := []string{result.ModeCost}
	null := trials(t, injection{name: s.Name + " sidecars as they are", figure: fig, null: true, modes: cost}, base, normal, bounds)
	burned := trials(t, injection{name: fmt.Sprintf("%s %s (sidecars' cores/Gbps measured %+.0f%%)", s.Name, name, size), figure: fig, modes: cost}, base, slow, bounds)
	if len(null.Medians) > 0 && len(burned.Medians) > 0 {
		// what the regression did to the gated figure itself: trial medians against trial medians
		shift := result.Summarize(burned.Medians).Median/result.Summarize(null.Medians).Median*100 - 100
		burned.Injection += fmt.Sprintf(", %s %+.0f%%", fig, shift)
	}
	return []powerResult{null, burned}
}

// sidecarBurnSize measures how much dearer the burning sidecars of slow are than those of
// normal, in percent: the median of the per-pair ratios of their cores per Gbps over twice
// -repeats pairs, cost runs alternating.
func sidecarBurnSize(t *testing.T, normal, slow provider.Path, attempt int) float64 {
	t.Helper()
	var ratios []float64
	for i := 0; i < 2**flagRepeats; i++ {
		a := runOnce(t, normal, fmt.Sprintf("power-sidecar-size%d", attempt), result.ModeCost, i, nil)
		b := runOnce(t, slow, fmt.Sprintf("power-sidecar-size%d-burn", attempt), result.ModeCost, i, nil)
		fa := result.Aggregate("as is", "", []result.Run{a}).SidecarCoresPerGbps
		fb := result.Aggregate("burn", "", []result.Run{b}).SidecarCoresPerGbps
		if fa != nil && fb != nil && fa.Median > 0 {
			ratios = append(ratios, fb.Median/fa.Median)
		}
	}
	require.NotEmpty(t, ratios, "size of the sidecar regression: no pair measured both sidecars' cost")
	return result.Summarize(ratios).Median*100 - 100
}

// buildSidecarBurner builds e2e/testdata/sidecarburn.c into a shared object the proxies (uid
// 1337) can read, or says why it cannot (no C compiler).
func buildSidecarBurner(t *testing.T) (string, string) {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "no gcc to build the sidecars' burner (apt-get install gcc)"
	}
	dir, err := os.MkdirTemp("", "pathcost-sidecarburn-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755), "the proxies run as uid 1337 and must read the burner")
	so := filepath.Join(dir, "sidecarburn.so")
	out, err := exec.Command(cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", so, filepath.Join("testdata", "sidecarburn.c"), "-ldl").CombinedOutput()
	require.NoError(t, err, "build the sidecars' burner: %s", out)
	return so, ""
}

// sidecarBurnEnv is the environment that preloads the burner so, burning perKB ns of CPU per
// KiB each proxy sends.
func sidecarBurnEnv(so string, perKB float64) []string {
	return []string{"LD_PRELOAD=" + so, fmt.Sprintf("PATHCOST_SELFTEST_BURN_NS_PER_KB=%.0f", perKB)}
}

// calibrate measures the unmodified scenario once in each mode.
func calibrate(t *testing.T, p provider.Path) calibration {
	t.Helper()
	var runs []result.Run
	for _, mode := range modes() {
		runs = append(runs, runOnce(t, p, "power-calibration", mode, 0, nil))
	}
	row := result.Aggregate("power-calibration", "", runs)
	require.Positive(t, row.ClientMbps.N, "calibration: bandwidth measured")
	require.Positive(t, row.ServerCoresPerGbps.N, "calibration: server cost measured (needs the cost runs: -rate > 0)")
	return calibration{clientMbps: row.ClientMbps.Median, serverCoresPerGbps: row.ServerCoresPerGbps.Median}
}

// judgeTrial says whether the trial's gate failed (A/A: whether any gate failed) and what it saw.
func judgeTrial(gates []result.GateResult, figure string) (bool, string) {
	var seen []string
	failed := false
	for _, g := range gates {
		if figure != "" && g.Figure != figure {
			continue
		}
		if g.Status == result.GateFail {
			failed = true
		}
		// A/A: the failed gates, and the ratio gates' medians (how close the noise came)
		if figure != "" || g.Status == result.GateFail || strings.HasSuffix(g.Figure, "_ratio") {
			seen = append(seen, g.Status+" "+g.String())
		}
	}
	if figure != "" && len(seen) == 0 {
		return false, "no gate on " + figure + " in the thresholds: nothing can catch it"
	}
	if figure == "" && !failed {
		seen = append([]string{"no gate failed"}, seen...)
	}
	return failed, strings.Join(seen, "; ")
}

// writePower writes power.json and power.md into the results directory and prints the table.
func writePower(t *testing.T, out []powerResult) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "Gate power: %d trials each, %d repeats per trial (as CI runs), %s windows, thresholds %s, %s\n\n",
		*flagTrials, *flagRepeats, flagDuration, *flagThresholds, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "| injection | gate | trials | gate failed | rate |\n|---|---|---|---|---|\n")
	for _, pr := range out {
		kind, fig := "detection", pr.Figure
		if pr.Null {
			kind = "false alarms"
		}
		if fig == "" {
			fig = "any"
		}
		if pr.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | - | - | not run: %s |\n", pr.Injection, fig, pr.Skipped)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s %.0f %% |\n", pr.Injection, fig, pr.Trials, pr.Failed, kind, pr.Rate*100)
	}
	fmt.Print("\n" + b.String())
	require.NoError(t, os.WriteFile(filepath.Join(suite.results, "power.md"), []byte(b.String()), 0o644))
	js, err := json.MarshalIndent(out, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(suite.results, "power.json"), js, 0o644))
}

// slug turns an injection's name into a directory name.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 24 {
			break
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
