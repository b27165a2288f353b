package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

var registered []topo.Spec

// register adds a scenario compiled in by the build tags (called from package-level vars).
func register(s topo.Spec) bool {
	registered = append(registered, s)
	return true
}

// scenarios lists the scenarios this build runs.
func scenarios() []topo.Spec { return registered }

// requireProvider skips the whole test (not only its steps) when the provider cannot run here.
func requireProvider(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

type ctxKey string

// paths is what a scenario's Setup realised: the scenario's path and its plain baseline.
type paths struct {
	scenario, baseline provider.Path
}

// up realises a scenario on the suite's provider and registers its teardown at once (a Fatal in
// Setup skips Teardown). A provider that cannot realise it here skips the test with its reason.
func up(t *testing.T, s topo.Spec) provider.Path {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := suite.provider.Check(ctx, s); err != nil {
		if provider.IsSkip(err) {
			t.Skipf("%s on -provider %s: %v", s.Name, suite.provider.Name(), err)
		}
		require.NoError(t, err, "%s on -provider %s", s.Name, suite.provider.Name())
	}
	p, err := suite.provider.Up(ctx, s)
	require.NoError(t, err, "realise %s on -provider %s", s.Name, suite.provider.Name())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		assert.NoError(t, p.Down(ctx), "tear down %s", s.Name)
	})
	return p
}

// scenarioFeature measures s against the plain baseline, alternating runs, and gates the result.
func scenarioFeature(s topo.Spec) features.Feature {
	return features.New(s.Name).
		WithLabel("scenario", s.Name).
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			requireProvider(t)
			base := up(t, topo.Plain)
			sc := up(t, s)
			t.Logf("%s: %s", s.Name, strings.Join(sc.Notes(), "; "))
			return context.WithValue(ctx, ctxKey("paths"), &paths{scenario: sc, baseline: base})
		}).
		Assess("bandwidth and CPU against the plain baseline measured alternately", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			requireProvider(t)
			p := ctx.Value(ctxKey("paths")).(*paths)
			row, base := measureScenario(t, s, p)
			gates := result.Gate(row, suite.thresholds.For(s.Name))
			suite.addRows(gates, p.scenario.Notes(), row, base)
			assertSane(t, s, row)
			for _, g := range gates {
				if g.Status == result.GateFail {
					assert.Fail(t, "threshold gate failed", "%s (thresholds %s)", g.String(), *flagThresholds)
				} else {
					t.Log(g.String())
				}
			}
			return ctx
		}).
		Feature()
}

// measureScenario runs baseline and scenario alternately and aggregates both.
func measureScenario(t *testing.T, s topo.Spec, p *paths) (row, base result.Row) {
	t.Helper()
	baseName := "baseline:" + s.Name
	var runs, baseRuns []result.Run
	for i := 0; i < *flagRepeats; i++ {
		baseRuns = append(baseRuns, runOnce(t, p.baseline, baseName, i))
		runs = append(runs, runOnce(t, p.scenario, s.Name, i))
	}
	base = result.Aggregate(baseName, "plain hosts, measured alternately with "+s.Name, baseRuns)
	row = result.Aggregate(s.Name, s.Title, runs)
	result.CompareToBaseline(&row, base)
	return row, base
}

// assertSane checks what must hold whatever the thresholds say.
func assertSane(t *testing.T, s topo.Spec, row result.Row) {
	t.Helper()
	require.Equal(t, *flagRepeats, row.Repeats, "%s: every repeat produced both records without error", s.Name)
	assert.Positive(t, row.ClientMbps.Median, "%s: client Mbps", s.Name)
	assert.Positive(t, row.ServerMbps.Median, "%s: server Mbps", s.Name)
	assert.Positive(t, row.ClientCores.Median, "%s: client CPU", s.Name)
	assert.Positive(t, row.ServerCores.Median, "%s: server CPU", s.Name)
	assert.Positive(t, row.ServerIfaceMbps.Median, "%s: the server's interface counters saw the traffic", s.Name)
	if s.Istio {
		require.NotNil(t, row.SidecarClientCores, "%s: client-side sidecar CPU measured", s.Name)
		require.NotNil(t, row.SidecarServerCores, "%s: server-side sidecar CPU measured", s.Name)
		// an idle proxy uses well under 0.01 cores (0.0000 when bypassed, TestGateCatchesBypassedSidecar)
		assert.Greater(t, row.SidecarClientCores.Median, 0.01, "%s: the client-side sidecar carried the traffic", s.Name)
		assert.Greater(t, row.SidecarServerCores.Median, 0.01, "%s: the server-side sidecar carried the traffic", s.Name)
	}
	require.NotNil(t, row.VsBaseline, "%s: compared with its baseline", s.Name)
}

// runOnce runs one server/client pair (plus a sampler on a forwarding node) on path and returns
// the records, which every provider hands back on the processes' stdout (--json -). Records and
// logs go to results/<name>/runNN/.
func runOnce(t *testing.T, path provider.Path, name string, repeat int) result.Run {
	t.Helper()
	dir := filepath.Join(suite.results, strings.ReplaceAll(name, ":", "-"), fmt.Sprintf("run%02d", repeat))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	limit := *flagWarmup + *flagDuration + 3*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	watch := map[string]string{}
	for _, sc := range path.Sidecars() {
		watch[sc.Side] = sc.Watch
	}
	srvArgs := []string{"server", "--listen", path.Listen(), "--json", "-", "--quiet",
		"--accept-timeout", "120s", "--setup-timeout", "120s", "--buffer", strconv.Itoa(*flagBuffer), "--label", name}
	if w, ok := watch[provider.ServerSide]; ok {
		srvArgs = append(srvArgs, "--watch", result.WatchSidecar+"="+w)
	}
	cliArgs := []string{"client", "--connect", path.Target(), "--json", "-", "--quiet",
		"--conns", strconv.Itoa(*flagConns), "--buffer", strconv.Itoa(*flagBuffer), "--setup-timeout", "120s",
		"--duration", flagDuration.String(), "--warmup", flagWarmup.String(), "--label", name}
	if w, ok := watch[provider.ClientSide]; ok {
		cliArgs = append(cliArgs, "--watch", result.WatchSidecar+"="+w)
	}
	srv := start(ctx, t, path.Server(), "server", srvArgs)
	cli := start(ctx, t, path.Client(), "client", cliArgs)
	var smp *started
	if fwd := path.Forwarder(); fwd != nil {
		// inside the client's window: it opens after set-up plus warm-up
		smp = start(ctx, t, fwd, "sampler", []string{"sample",
			"--warmup", (*flagWarmup + 300*time.Millisecond).String(),
			"--duration", max(*flagDuration-500*time.Millisecond, *flagDuration/2).String(),
			"--json", "-", "--label", name + " forwarding node"})
	}
	cliErr := cli.proc.Wait()
	srvErr := waitWithin(srv, 15*time.Second, cancel)
	var smpErr error
	if smp != nil {
		smpErr = waitWithin(smp, 15*time.Second, cancel)
	}
	for _, p := range []*started{cli, srv, smp} {
		if p != nil {
			_ = os.WriteFile(filepath.Join(dir, p.role+".log"), p.stderr.Bytes(), 0o644)
			_ = os.WriteFile(filepath.Join(dir, p.role+".json"), p.stdout.Bytes(), 0o644)
		}
	}
	if cliErr != nil || srvErr != nil {
		require.Fail(t, "a tcpload process failed", "%s run %d:\nclient (%v):\n%s\nserver (%v):\n%s", name, repeat, cliErr, &cli.stderr, srvErr, &srv.stderr)
	}
	r := result.Run{Scenario: name, Repeat: repeat, SharedNode: path.SharedKernel()}
	var err error
	r.Server, err = result.Decode(srv.stdout.Bytes())
	require.NoError(t, err, "%s run %d: server record", name, repeat)
	r.Client, err = result.Decode(cli.stdout.Bytes())
	require.NoError(t, err, "%s run %d: client record", name, repeat)
	assert.Equal(t, r.Server.TotalBytes, r.Client.TotalBytes, "%s run %d: bytes written by the server = bytes read by the client", name, repeat)
	if smp != nil {
		require.NoError(t, smpErr, "%s run %d: sampler: %s", name, repeat, &smp.stderr)
		r.Forwarder, err = result.Decode(smp.stdout.Bytes())
		require.NoError(t, err, "%s run %d: sampler record", name, repeat)
	}
	return r
}

// started is a tcpload process with its output captured.
type started struct {
	role           string
	proc           provider.Proc
	stdout, stderr bytes.Buffer
}

// start starts tcpload on h.
func start(ctx context.Context, t *testing.T, h provider.Host, role string, args []string) *started {
	t.Helper()
	s := &started{role: role}
	p, err := h.Start(ctx, args, &s.stdout, &s.stderr)
	require.NoError(t, err, "start tcpload %s on %s", role, h.Name())
	s.proc = p
	return s
}

// waitWithin waits for p, cancelling ctx (which kills it) after d.
func waitWithin(p *started, d time.Duration, cancel context.CancelFunc) error {
	done := make(chan error, 1)
	go func() { done <- p.proc.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cancel()
		<-done
		return errors.New("did not exit in time; killed")
	}
}
