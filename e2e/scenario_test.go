package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/pathcost/pathcost/pkg/localnet"
	"github.com/pathcost/pathcost/pkg/result"
)

// scenario is one of the seed's paths, as data.
type scenario struct {
	name  string // as in the thresholds file: plain, gr, gr+istio, vpccni, vpccni+istio, nodeport
	title string // the seed's description
	spec  localnet.Spec
}

var registered []scenario

// allScenarioNames are the names a thresholds file may use (every build's scenarios).
var allScenarioNames = []string{"plain", "gr", "gr+istio", "vpccni", "vpccni+istio", "nodeport"}

// register adds a scenario compiled in by the build tags (called from package-level vars).
func register(s scenario) bool {
	registered = append(registered, s)
	return true
}

// scenarios lists the scenarios this build runs.
func scenarios() []scenario { return registered }

// requireLocal skips the whole test (not only its steps) when the local provider cannot run here.
func requireLocal(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

type ctxKey string

// envs is what a scenario's Setup realised: the scenario's topology and its plain baseline.
type envs struct {
	scenario, baseline *localnet.Env
}

// up realises a topology and registers its teardown at once (a Fatal in Setup skips Teardown).
func up(t *testing.T, spec localnet.Spec) *localnet.Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := localnet.Up(ctx, spec)
	require.NoError(t, err, "realise %s topology", spec.Kind)
	t.Cleanup(func() { assert.NoError(t, e.Down(), "tear down %s", e.Prefix) })
	return e
}

// scenarioFeature measures s against the plain baseline, alternating runs, and gates the result.
func scenarioFeature(s scenario) features.Feature {
	return features.New(s.name).
		WithLabel("scenario", s.name).
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if skipReason != "" {
				t.Skip(skipReason)
			}
			base := up(t, localnet.Spec{Kind: localnet.KindPlain})
			sc := up(t, s.spec)
			t.Logf("%s: %s", s.name, strings.Join(sc.Notes, "; "))
			return context.WithValue(ctx, ctxKey("envs"), &envs{scenario: sc, baseline: base})
		}).
		Assess("bandwidth and CPU against the plain baseline measured alternately", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if skipReason != "" {
				t.Skip(skipReason)
			}
			e := ctx.Value(ctxKey("envs")).(*envs)
			row, base := measureScenario(t, s, e)
			gates := result.Gate(row, suite.thresholds.For(s.name))
			suite.addRows(gates, e.scenario.Notes, row, base)
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
func measureScenario(t *testing.T, s scenario, e *envs) (row, base result.Row) {
	t.Helper()
	baseName := "baseline:" + s.name
	var runs, baseRuns []result.Run
	for i := 0; i < *flagRepeats; i++ {
		baseRuns = append(baseRuns, runOnce(t, e.baseline, baseName, i))
		runs = append(runs, runOnce(t, e.scenario, s.name, i))
	}
	base = result.Aggregate(baseName, "plain hosts, measured alternately with "+s.name, baseRuns)
	row = result.Aggregate(s.name, s.title, runs)
	result.CompareToBaseline(&row, base)
	return row, base
}

// assertSane checks what must hold whatever the thresholds say.
func assertSane(t *testing.T, s scenario, row result.Row) {
	t.Helper()
	require.Equal(t, *flagRepeats, row.Repeats, "%s: every repeat produced both records without error", s.name)
	assert.Positive(t, row.ClientMbps.Median, "%s: client Mbps", s.name)
	assert.Positive(t, row.ServerMbps.Median, "%s: server Mbps", s.name)
	assert.Positive(t, row.ClientCores.Median, "%s: client CPU", s.name)
	assert.Positive(t, row.ServerCores.Median, "%s: server CPU", s.name)
	assert.Positive(t, row.ServerIfaceMbps.Median, "%s: the server's interface counters saw the traffic", s.name)
	if s.spec.Istio {
		require.NotNil(t, row.SidecarClientCores, "%s: client-side sidecar CPU measured", s.name)
		require.NotNil(t, row.SidecarServerCores, "%s: server-side sidecar CPU measured", s.name)
		// an idle proxy uses well under 0.01 cores (0.0000 when bypassed, TestGateCatchesBypassedSidecar)
		assert.Greater(t, row.SidecarClientCores.Median, 0.01, "%s: the client-side sidecar carried the traffic", s.name)
		assert.Greater(t, row.SidecarServerCores.Median, 0.01, "%s: the server-side sidecar carried the traffic", s.name)
	}
	require.NotNil(t, row.VsBaseline, "%s: compared with its baseline", s.name)
}

// runOnce runs one server/client pair (plus a sampler on a forwarding node) in env and returns
// the records. Records and logs go to results/<name>/runNN/.
func runOnce(t *testing.T, env *localnet.Env, name string, repeat int) result.Run {
	t.Helper()
	dir := filepath.Join(suite.results, strings.ReplaceAll(name, ":", "-"), fmt.Sprintf("run%02d", repeat))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	limit := *flagWarmup + *flagDuration + 60*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	sidecar := map[string]int{}
	for _, sc := range env.Sidecars {
		sidecar[sc.Name] = sc.PID
	}
	srvArgs := []string{"server", "--listen", env.Listen, "--json", filepath.Join(dir, "server.json"), "--quiet",
		"--accept-timeout", "30s", "--setup-timeout", "60s", "--buffer", strconv.Itoa(*flagBuffer), "--label", name}
	if pid, ok := sidecar["server-side"]; ok {
		srvArgs = append(srvArgs, "--watch", result.WatchSidecar+"="+strconv.Itoa(pid))
	}
	cliArgs := []string{"client", "--connect", env.Target, "--json", filepath.Join(dir, "client.json"), "--quiet",
		"--conns", strconv.Itoa(*flagConns), "--buffer", strconv.Itoa(*flagBuffer), "--setup-timeout", "60s",
		"--duration", flagDuration.String(), "--warmup", flagWarmup.String(), "--label", name}
	if pid, ok := sidecar["client-side"]; ok {
		cliArgs = append(cliArgs, "--watch", result.WatchSidecar+"="+strconv.Itoa(pid))
	}
	srv, srvLog := start(t, env.Command(ctx, env.Server, suite.bin, srvArgs...))
	cli, cliLog := start(t, env.Command(ctx, env.Client, suite.bin, cliArgs...))
	var smp *exec.Cmd
	var smpLog *bytes.Buffer
	if env.Forwarder != nil {
		// inside the client's window: it opens after set-up plus warm-up
		smp, smpLog = start(t, env.Command(ctx, *env.Forwarder, suite.bin, "sample",
			"--warmup", (*flagWarmup+300*time.Millisecond).String(),
			"--duration", max(*flagDuration-500*time.Millisecond, *flagDuration/2).String(),
			"--json", filepath.Join(dir, "forwarder.json"), "--label", name+" forwarding node"))
	}
	cliErr := cli.Wait()
	srvErr := waitWithin(srv, 15*time.Second)
	var smpErr error
	if smp != nil {
		smpErr = waitWithin(smp, 15*time.Second)
	}
	logs := map[string]*bytes.Buffer{"client": cliLog, "server": srvLog}
	if smp != nil {
		logs["sampler"] = smpLog
	}
	for who, l := range logs {
		_ = os.WriteFile(filepath.Join(dir, who+".log"), l.Bytes(), 0o644)
	}
	if cliErr != nil || srvErr != nil {
		require.Fail(t, "a tcpload process failed", "%s run %d:\nclient (%v):\n%s\nserver (%v):\n%s", name, repeat, cliErr, cliLog, srvErr, srvLog)
	}
	r := result.Run{Scenario: name, Repeat: repeat, SharedNode: true}
	var err error
	r.Server, err = result.ReadFile(filepath.Join(dir, "server.json"))
	require.NoError(t, err)
	r.Client, err = result.ReadFile(filepath.Join(dir, "client.json"))
	require.NoError(t, err)
	assert.Equal(t, r.Server.TotalBytes, r.Client.TotalBytes, "%s run %d: bytes written by the server = bytes read by the client", name, repeat)
	if smp != nil {
		require.NoError(t, smpErr, "%s run %d: sampler: %s", name, repeat, smpLog)
		r.Forwarder, err = result.ReadFile(filepath.Join(dir, "forwarder.json"))
		require.NoError(t, err)
	}
	return r
}

// start starts cmd with its output captured.
func start(t *testing.T, cmd *exec.Cmd) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(t, cmd.Start(), "start %s", strings.Join(cmd.Args, " "))
	return cmd, &buf
}

// waitWithin waits for cmd, killing it after d.
func waitWithin(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return errors.New("did not exit in time; killed")
	}
}
