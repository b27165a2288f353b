// Package e2e holds pathcost's scenarios as e2e-framework tests: the seed's six network paths,
// each measured against a plain baseline in the same run, repeated, gated by a thresholds file.
// Build tags pick the topology (plain, gr, vpccni, istio, nodeport; see README), -provider picks
// where it runs (local: network namespaces on this machine, the default).
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/report"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/topo"
	"github.com/pathcost/pathcost/pkg/units"
)

// Our flags, registered on the global flag set before envconf.NewFromFlags parses it. Durations,
// sizes and rates parse as tcpload's own flags do (pkg/units): -duration 2 is 2 s.
var (
	flagProvider   = flag.String("provider", "local", "where scenarios run: "+strings.Join(providerNames, ", ")+" (local: network namespaces on this machine)")
	flagDuration   = 3 * time.Second
	flagWarmup     = time.Second
	flagCostWarmup = 3 * time.Second
	flagRepeats    = flag.Int("repeats", 3, "runs per scenario and mode (and as many baseline runs, alternating)")
	flagConns      = flag.Int("conns", 100, "TCP connections per run")
	flagBuffer     = 102400
	flagRate       = 125e6 // bytes/s over all connections: 1 Gbit/s
	flagMsgs       = flag.Float64("msgs", 0, "cost runs: messages per second per connection (the seed's business mode, with -msg-size) instead of -rate")
	flagMsgSize    = 0
	flagSeparate   = flag.Bool("separate-nodes", true, "cost runs: each emulated node's processes (tcpload, sidecar) on CPUs of their own, as separate machines, where the provider's nodes share this machine's CPUs (-provider local); false: they share every CPU")
	flagCongestion = flag.String("congestion", "auto", "TCP congestion control of tcpload's sockets (with -provider local also every namespace's default where the machine allows it, so the sidecars' too); \"\" = each host's default; auto = cubic with -provider local, each host's default with the others")
	flagThresholds = flag.String("thresholds", "../testdata/thresholds/local.yaml", "thresholds file (YAML; see testdata/thresholds/local.yaml)")
	flagResults    = flag.String("results", "", "results directory (default ../results/<time>-<scenarios>)")
)

func init() {
	units.DurationVar(flag.CommandLine, &flagDuration, "duration", flagDuration, "measured window per run")
	units.DurationVar(flag.CommandLine, &flagWarmup, "warmup", flagWarmup, "warm-up after all connections are up, per bandwidth run")
	units.DurationVar(flag.CommandLine, &flagCostWarmup, "cost-warmup", flagCostWarmup, "warm-up of the cost (paced) runs: a paced pair's CPU per byte settles slower (on a veth path the server's fell by a third over its first 3 s)")
	units.SizeVar(flag.CommandLine, &flagBuffer, "buffer", flagBuffer, "application buffer per read()/write()")
	units.RateVar(flag.CommandLine, &flagRate, "rate", flagRate, "cost runs: offered load over ALL connections (e.g. 1Gbit, 500Mbit, 50MB/s); 0 = no cost runs (cost figures then not measured)")
	units.SizeVar(flag.CommandLine, &flagMsgSize, "msg-size", flagMsgSize, "cost runs: bytes per message with -msgs (the seed's business load: -msgs 20 -msg-size 25000)")
}

var (
	testenv    env.Environment
	suite      *suiteState
	skipReason string // set when this machine cannot run the chosen provider
)

// suiteState is what the whole run shares: the provider, thresholds, results and the summary.
type suiteState struct {
	provider   provider.Provider
	thresholds *result.Thresholds
	results    string

	mu      sync.Mutex
	summary result.Summary
	notes   map[string]bool
	// separation is what each path said when its nodes were separated for cost runs.
	separation map[provider.Path]string
}

func TestMain(m *testing.M) {
	// a provider that brings up a cluster leaves a reaper that re-runs this binary: be it
	if reaper, err := runReaperIfAsked(); reaper {
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: reaper: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runSuite(m))
}

// runSuite runs the suite and returns the exit status: 2 for bad input, 1 for a broken set-up or
// a failed test, 0 otherwise.
func runSuite(m *testing.M) int {
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	if err := checkFlags(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	th, err := result.LoadThresholds(*flagThresholds)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: -thresholds: %v\n", err)
		return 2
	}
	if unknown := th.UnknownScenarios(topo.Names()); len(unknown) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: -thresholds %s names unknown scenarios %v (known: %v)\n", *flagThresholds, unknown, topo.Names())
		return 2
	}
	ctx := context.Background()
	work, err := os.MkdirTemp("", "pathcost-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(work)
	p, skip, err := openProvider(ctx, *flagProvider, scenarios(), work)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: -provider %s: %v\n", *flagProvider, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	suite = &suiteState{provider: p, thresholds: th, notes: map[string]bool{}, separation: map[provider.Path]string{}}
	skipReason = skip
	if skip != "" {
		fmt.Fprintf(os.Stderr, "e2e: skipping every scenario: %s\n", skip)
	}
	if sw, ok := p.(provider.Sweeper); ok {
		if err := sw.Sweep(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: sweeping what earlier runs left: %v\n", err)
		}
	}
	testenv = env.NewWithConfig(cfg)
	testenv.Setup(setupSuite)
	testenv.Finish(finishSuite)
	code := testenv.Run(m)
	if sw, ok := p.(provider.Sweeper); ok {
		if left, err := sw.Leftovers(ctx); err != nil || len(left) > 0 {
			fmt.Fprintf(os.Stderr, "e2e: the run left things behind (%v): %s\n", err, strings.Join(left, ", "))
			code = max(code, 1)
		}
	}
	if c, ok := p.(provider.Closer); ok {
		if err := c.Close(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: -provider %s: close: %v\n", p.Name(), err)
			code = max(code, 1)
		}
	}
	return code
}

func checkFlags() error {
	switch {
	case flagDuration <= 0:
		return fmt.Errorf("-duration %s: must be positive", flagDuration)
	case flagWarmup < 0:
		return fmt.Errorf("-warmup %s: must not be negative", flagWarmup)
	case flagCostWarmup < 0:
		return fmt.Errorf("-cost-warmup %s: must not be negative", flagCostWarmup)
	case *flagRepeats < 1 || *flagRepeats > 100:
		return fmt.Errorf("-repeats %d: want 1..100", *flagRepeats)
	case *flagConns < 1 || *flagConns > 10000:
		return fmt.Errorf("-conns %d: want 1..10000", *flagConns)
	case flagBuffer < 1:
		return fmt.Errorf("-buffer %d: must be positive", flagBuffer)
	case *flagMsgs < 0 || (*flagMsgs > 0) != (flagMsgSize > 0):
		return fmt.Errorf("-msgs %g -msg-size %d: give both (positive) or neither", *flagMsgs, flagMsgSize)
	}
	return nil
}

// setupSuite builds the tcpload binary once and prepares the results directory.
func setupSuite(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	if skipReason != "" {
		return ctx, nil
	}
	dir := *flagResults
	if dir == "" {
		var names []string
		for _, s := range scenarios() {
			names = append(names, strings.ReplaceAll(s.Name, "+", "-"))
		}
		dir = filepath.Join("..", "results", time.Now().Format("20060102-150405")+"-"+strings.Join(names, "_"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ctx, fmt.Errorf("results directory: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ctx, fmt.Errorf("results directory: %w", err)
	}
	suite.results = abs
	host, _ := os.Hostname()
	suite.summary = result.Summary{
		Schema:    result.SummarySchema,
		Provider:  suite.provider.Name(),
		StartedAt: time.Now().UTC().Format(time.RFC3339),
		Host:      host,
		Settings: map[string]string{
			"duration": flagDuration.String(), "warmup": flagWarmup.String(), "cost_warmup": flagCostWarmup.String(), "repeats": fmt.Sprint(*flagRepeats),
			"conns": fmt.Sprint(*flagConns), "buffer": fmt.Sprint(flagBuffer), "thresholds": *flagThresholds,
			"direction": "server-push", "cpus": fmt.Sprint(runtime.NumCPU()), "cost_load": costLoad(),
		},
		Notes: []string{
			"per-process and per-proxy CPU come from /proc of the machine each process runs on; bandwidth is application bytes (client/server) and interface bytes of each side's namespace (/proc/net/dev, like sar -n DEV).",
		},
	}
	fmt.Fprintf(os.Stderr, "e2e: results in %s\n", abs)
	return ctx, nil
}

// finishSuite writes the summary, the table and the chart, and prints the table.
func finishSuite(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
	if skipReason != "" || suite.results == "" {
		return ctx, nil
	}
	suite.mu.Lock()
	defer suite.mu.Unlock()
	if len(suite.summary.Rows) == 0 {
		return ctx, nil
	}
	if err := report.WriteAll(suite.results, suite.summary); err != nil {
		return ctx, fmt.Errorf("write results: %w", err)
	}
	fmt.Println()
	if err := report.Text(os.Stdout, suite.summary); err != nil {
		return ctx, err
	}
	fmt.Printf("\nresults: %s (summary.json, summary.md, summary.txt, chart.svg, one directory of records per run)\n", suite.results)
	return ctx, nil
}

// addRows records rows and gate results in the summary; notes are kept once.
func (s *suiteState) addRows(gates []result.GateResult, notes []string, rows ...result.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.summary.Rows = append(s.summary.Rows, rows...)
	s.summary.Gates = append(s.summary.Gates, gates...)
	for _, n := range notes {
		if !s.notes[n] {
			s.notes[n] = true
			s.summary.Notes = append(s.summary.Notes, n)
		}
	}
}
