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
func up(t *testing.T, s topo.Spec) provider.Path { return upOn(t, suite.provider, s) }

// upOn is up on a given provider.
func upOn(t *testing.T, pr provider.Provider, s topo.Spec) provider.Path {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pr.Check(ctx, s); err != nil {
		if provider.IsSkip(err) {
			t.Skipf("%s on -provider %s: %v", s.Name, pr.Name(), err)
		}
		require.NoError(t, err, "%s on -provider %s", s.Name, pr.Name())
	}
	p, err := pr.Up(ctx, s)
	require.NoError(t, err, "realise %s on -provider %s", s.Name, pr.Name())
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
			notes := append(p.scenario.Notes(), congestionNote())
			if n := separationNote(p.scenario); n != "" {
				notes = append(notes, n)
			}
			suite.addRows(gates, notes, row, base)
			assertSane(t, s, row, base)
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

// modes are the kinds of runs each repeat makes: bandwidth at saturation (unpaced), and cost at
// a fixed offered load that leaves the CPUs idle (paced; skipped with -rate 0).
func modes() []string {
	if flagRate == 0 && *flagMsgs == 0 {
		return []string{result.ModeBandwidth}
	}
	return []string{result.ModeBandwidth, result.ModeCost}
}

// costLoad describes the cost runs' offered load.
func costLoad() string {
	switch {
	case *flagMsgs > 0:
		return fmt.Sprintf("%g msgs/s of %d B per connection, %d connections", *flagMsgs, flagMsgSize, *flagConns)
	case flagRate > 0:
		return fmt.Sprintf("%.0f Mbit/s over %d connections", flagRate*8/1e6, *flagConns)
	}
	return "none (-rate 0): cost not measured"
}

// loadArgs are the client's pacing flags for a run of mode.
func loadArgs(mode string) []string {
	if mode != result.ModeCost {
		return nil
	}
	if *flagMsgs > 0 {
		return []string{"--msgs", strconv.FormatFloat(*flagMsgs, 'g', -1, 64), "--msg-size", strconv.Itoa(flagMsgSize)}
	}
	return []string{"--rate", strconv.FormatFloat(flagRate/float64(*flagConns), 'f', 0, 64) + "B/s"}
}

// congestionArgs give tcpload's sockets the -congestion algorithm. The machine's default may be
// bbr, whose pacing puts an unpaced pair at about 20 or about 50 Gbps from one run to the next on
// a 2-core machine (cubic: 66-74 Gbps); a bandwidth gate cannot see a 20 % loss through that.
func congestionArgs() []string {
	if congestion == "" {
		return nil
	}
	return []string{"--congestion", congestion}
}

// receiverDelay is how long the reading side of every run waits before its first read, at most
// a quarter of the warm-up.
const receiverDelay = 100 * time.Millisecond

// receiverDelayArgs make every run start alike: the reader waits (--receiver-delay) while the
// sender fills every queue, so a saturated run starts in the full-queue state. tcpload's own
// default is a level start, which leaves the state to the kernel as for the seed's C pair (README,
// "Two steady states"). With a level start here, the baseline's paced client cost fell from
// 0.052-0.072 to 0.026-0.041 cores/Gbps and gr+istio's total cost ratio rose from 3.8-4.1 to
// 4.3-5.3, past its ceiling (three e2e runs of each, 2026-12-06): the gates and the reference
// were calibrated on runs that start this way.
func receiverDelayArgs(warmup time.Duration) []string {
	d := min(receiverDelay, warmup/4)
	if d <= 0 {
		return nil
	}
	return []string{"--receiver-delay", d.String()}
}

// seedLikeArgs make both sides of every run behave as the seed's programs do where tcpload's
// defaults are cheaper: TCP_NOTSENT_LOWAT stays unset (tcpload's own default bounds the unsent
// bytes per socket, see --notsent-lowat), and the receiver is woken by every readable socket
// (tcpload's own default naps and reads in batches, see --read-batch). The head start of
// receiverDelayArgs fills the send queues only when they are unbounded, and the gates and the
// reference were calibrated on runs that start so and whose reader was woken per socket: a
// path's cost is what it costs an event-driven program like the seed's.
var seedLikeArgs = []string{"--notsent-lowat", "kernel", "--read-batch", "off"}

// congestion is the -congestion the provider resolved (openProvider): "" = each host's default.
var congestion string

// congestionNote says which congestion control the runs used.
func congestionNote() string {
	if congestion == "" {
		return "TCP congestion control: each host's default (-congestion; the records' sockets.congestion says which)"
	}
	return "TCP congestion control: " + congestion + " on tcpload's sockets (-congestion)"
}

// separationNote says where the cost runs' processes ran on a path that can separate its nodes
// ("" on the others).
func separationNote(path provider.Path) string {
	if _, ok := path.(provider.Separator); !ok {
		return ""
	}
	suite.mu.Lock()
	defer suite.mu.Unlock()
	switch {
	case suite.separation[path] != "":
		return "cost runs: " + suite.separation[path] + " (-separate-nodes)"
	case !*flagSeparate:
		return "cost runs: the nodes' processes shared every CPU (-separate-nodes=false)"
	}
	return "cost runs: the nodes' processes shared every CPU (one CPU: nothing to separate)"
}

// separate gives path's nodes CPUs of their own for a cost run (-separate-nodes) where the
// provider can; the returned func undoes it.
func separate(t *testing.T, path provider.Path, mode string) (func(), error) {
	sep, ok := path.(provider.Separator)
	if mode != result.ModeCost || !*flagSeparate || !ok {
		return func() {}, nil
	}
	note, err := sep.Separate(true)
	if err != nil {
		_, undoErr := sep.Separate(false)
		return func() {}, errors.Join(err, undoErr)
	}
	if note != "" {
		suite.mu.Lock()
		suite.separation[path] = note
		suite.mu.Unlock()
	}
	return func() {
		if _, err := sep.Separate(false); err != nil {
			t.Errorf("%s: let the nodes share every CPU again: %v", path.Spec().Name, err)
		}
	}, nil
}

// measureScenario runs baseline and scenario alternately, in each mode, and aggregates both.
func measureScenario(t *testing.T, s topo.Spec, p *paths) (row, base result.Row) {
	t.Helper()
	baseName := "baseline:" + s.Name
	var runs, baseRuns []result.Run
	for i := 0; i < *flagRepeats; i++ {
		for _, mode := range modes() {
			baseRuns = append(baseRuns, runOnce(t, p.baseline, baseName, mode, i, nil))
			runs = append(runs, runOnce(t, p.scenario, s.Name, mode, i, nil))
		}
	}
	base = result.Aggregate(baseName, "plain hosts, measured alternately with "+s.Name, baseRuns)
	row = result.Aggregate(s.Name, s.Title, runs)
	result.CompareToBaseline(&row, base)
	return row, base
}

// assertSane checks what must hold whatever the thresholds say.
func assertSane(t *testing.T, s topo.Spec, row, base result.Row) {
	t.Helper()
	for _, r := range []result.Row{row, base} {
		for _, d := range r.DroppedRuns {
			assert.Fail(t, "a repeat failed", "%s: %s run %d: %s", r.Scenario, d.Mode, d.Repeat, d.Error)
		}
	}
	require.Positive(t, row.BandwidthRuns, "%s: no bandwidth run produced both records", s.Name)
	assert.Positive(t, row.ClientMbps.Median, "%s: client Mbps", s.Name)
	assert.Positive(t, row.ServerMbps.Median, "%s: server Mbps", s.Name)
	assert.Positive(t, row.ServerIfaceMbps.Median, "%s: the server's interface counters saw the traffic", s.Name)
	if len(modes()) > 1 {
		require.Positive(t, row.CostRuns, "%s: no cost run produced both records", s.Name)
		assert.Positive(t, row.ClientCores.Median, "%s: client CPU", s.Name)
		assert.Positive(t, row.ServerCores.Median, "%s: server CPU", s.Name)
	}
	if s.Istio {
		require.NotNil(t, row.SidecarClientCores, "%s: client-side sidecar CPU measured", s.Name)
		require.NotNil(t, row.SidecarServerCores, "%s: server-side sidecar CPU measured", s.Name)
		// an idle proxy uses well under 0.01 cores (0.0000 when bypassed, TestGateCatchesBypassedSidecar)
		assert.Greater(t, row.SidecarClientCores.Median, 0.01, "%s: the client-side sidecar carried the traffic", s.Name)
		assert.Greater(t, row.SidecarServerCores.Median, 0.01, "%s: the server-side sidecar carried the traffic", s.Name)
	}
	require.NotNil(t, row.VsBaseline, "%s: compared with its baseline", s.Name)
}

// runOnce runs one server/client pair (plus a sampler on a forwarding node) on path in mode and
// returns the records, which every provider hands back on the processes' stdout (--json -).
// Records and logs go to results/<name>/<mode>NN/. A failed repeat comes back with Error set
// (and fails the test later, after its row is recorded), so the other repeats still count.
// extra adds arguments per role ("server", "client"): the gate self-tests inject regressions so.
func runOnce(t *testing.T, path provider.Path, name, mode string, repeat int, extra map[string][]string) result.Run {
	t.Helper()
	r := result.Run{Scenario: name, Mode: mode, Repeat: repeat, SharedNode: path.SharedKernel()}
	dir := filepath.Join(suite.results, strings.ReplaceAll(name, ":", "-"), fmt.Sprintf("%s%02d", mode, repeat))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	warmup := flagWarmup
	if mode == result.ModeCost {
		warmup = flagCostWarmup
	}
	undo, err := separate(t, path, mode)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer undo()
	limit := warmup + flagDuration + 3*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	watch := map[string]string{}
	for _, sc := range path.Sidecars() {
		watch[sc.Side] = sc.Watch
	}
	srvArgs := []string{"server", "--listen", path.Listen(), "--json", "-", "--quiet",
		"--accept-timeout", "120s", "--setup-timeout", "120s", "--buffer", strconv.Itoa(flagBuffer), "--label", name}
	if w, ok := watch[provider.ServerSide]; ok {
		srvArgs = append(srvArgs, "--watch", result.WatchSidecar+"="+w)
	}
	srvArgs = append(srvArgs, seedLikeArgs...)
	srvArgs = append(srvArgs, congestionArgs()...)
	srvArgs = append(srvArgs, extra["server"]...)
	cliArgs := []string{"client", "--connect", path.Target(), "--json", "-", "--quiet",
		"--conns", strconv.Itoa(*flagConns), "--buffer", strconv.Itoa(flagBuffer), "--setup-timeout", "120s",
		"--duration", flagDuration.String(), "--warmup", warmup.String(), "--label", name}
	cliArgs = append(cliArgs, loadArgs(mode)...)
	cliArgs = append(cliArgs, receiverDelayArgs(warmup)...)
	cliArgs = append(cliArgs, seedLikeArgs...)
	if w, ok := watch[provider.ClientSide]; ok {
		cliArgs = append(cliArgs, "--watch", result.WatchSidecar+"="+w)
	}
	cliArgs = append(cliArgs, congestionArgs()...)
	cliArgs = append(cliArgs, extra["client"]...)
	procs := map[string]*started{}
	if procs["server"], err = start(ctx, path.Server(), "server", srvArgs); err != nil {
		r.Error = err.Error()
		return r
	}
	if fwd := path.Forwarder(); fwd != nil {
		// started before the client and long enough to cover its set-up, warm-up and window;
		// the forwarding node's figures are then computed over exactly the client's window
		// from the sampler's node series (result.NodeOver)
		procs["sampler"], err = start(ctx, fwd, "sampler", []string{"sample",
			"--duration", (warmup + flagDuration + samplerSlack()).String(), "--series-interval", "100ms",
			"--json", "-", "--label", name + " forwarding node"})
	}
	if err == nil {
		procs["client"], err = start(ctx, path.Client(), "client", cliArgs)
	}
	if err != nil {
		cancel()
		waitAll(procs, time.Second, cancel)
		r.Error = err.Error()
		return r
	}
	errs := waitAll(procs, samplerSlack()+15*time.Second, cancel)
	for role, p := range procs {
		if p == nil {
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, role+".log"), p.stderr.Bytes(), 0o644)
		_ = os.WriteFile(filepath.Join(dir, role+".json"), p.stdout.Bytes(), 0o644)
	}
	for _, role := range []string{"client", "server", "sampler"} {
		if errs[role] != nil {
			t.Logf("%s %s run %d: %s failed: %v\n%s", name, mode, repeat, role, errs[role], &procs[role].stderr)
			r.Error = fmt.Sprintf("%s: %v (log: %s)", role, errs[role], filepath.Join(dir, role+".log"))
			return r
		}
	}
	if r.Server, err = result.Decode(procs["server"].stdout.Bytes()); err != nil {
		r.Error = "server record: " + err.Error()
		return r
	}
	if r.Client, err = result.Decode(procs["client"].stdout.Bytes()); err != nil {
		r.Error = "client record: " + err.Error()
		return r
	}
	assert.Equal(t, r.Server.TotalBytes, r.Client.TotalBytes, "%s %s run %d: bytes written by the server = bytes read by the client", name, mode, repeat)
	if smp := procs["sampler"]; smp != nil {
		if r.Forwarder, err = result.Decode(smp.stdout.Bytes()); err != nil {
			r.Error = "sampler record: " + err.Error()
		}
	}
	return r
}

// samplerSlack is how much longer than the client's warm-up and window the forwarding node's
// sampler runs: the client's set-up (about 0.1 s in namespaces) and, on a cluster, the spread of
// the pods' start times.
func samplerSlack() time.Duration {
	if suite.provider.Name() == "local" {
		return 3 * time.Second
	}
	return 20 * time.Second
}

// waitAll waits for every process: the client as long as it takes (ctx bounds it), then the
// others within d each, cancelling ctx (which kills them) when one overstays.
func waitAll(procs map[string]*started, d time.Duration, cancel context.CancelFunc) map[string]error {
	errs := map[string]error{}
	if c := procs["client"]; c != nil {
		errs["client"] = c.proc.Wait()
	}
	for _, role := range []string{"server", "sampler"} {
		if p := procs[role]; p != nil {
			errs[role] = waitWithin(p, d, cancel)
		}
	}
	return errs
}

// started is a tcpload process with its output captured.
type started struct {
	role           string
	proc           provider.Proc
	stdout, stderr bytes.Buffer
}

// start starts tcpload on h.
func start(ctx context.Context, h provider.Host, role string, args []string) (*started, error) {
	s := &started{role: role}
	p, err := h.Start(ctx, args, &s.stdout, &s.stderr)
	if err != nil {
		return nil, fmt.Errorf("start tcpload %s on %s: %w", role, h.Name(), err)
	}
	s.proc = p
	return s, nil
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
