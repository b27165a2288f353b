package e2e

import (
	"context"
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

// gateFails reports whether any gate on figure failed.
func gateFails(gates []result.GateResult, figure string) bool {
	for _, g := range gates {
		if g.Figure == figure && g.Status == result.GateFail {
			return true
		}
	}
	return false
}

// brokenRow measures a deliberately broken copy of s against its baseline, once, and gates it
// with s's thresholds; break is applied to the scenario's env after Up.
func brokenRow(t *testing.T, s scenario, breakIt func(t *testing.T, e *localnet.Env)) (result.Row, []result.GateResult) {
	t.Helper()
	base := up(t, localnet.Spec{Kind: localnet.KindPlain})
	sc := up(t, s.spec)
	breakIt(t, sc)
	name := s.name + "-broken"
	baseRun := runOnce(t, base, "baseline:"+name, 0)
	run := runOnce(t, sc, name, 0)
	baseRow := result.Aggregate("baseline:"+name, "", []result.Run{baseRun})
	row := result.Aggregate(name, "", []result.Run{run})
	result.CompareToBaseline(&row, baseRow)
	return row, result.Gate(row, suite.thresholds.For(s.name))
}

// run runs a command in a host's namespace and fails the test with its output on error.
func run(t *testing.T, e *localnet.Env, h localnet.Host, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := e.Command(ctx, h, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s in %s: %s", name, strings.Join(args, " "), h.NetNS, out)
	return string(out)
}

// TestGateCatchesBottleneck shows the gate failing on a degraded path: the server host's link
// is throttled to 200 Mbit/s (tc tbf), far below what the plain baseline carries.
func TestGateCatchesBottleneck(t *testing.T) {
	requireLocal(t)
	f := features.New("gate self-test: bottleneck").
		Assess("a throttled path fails the bandwidth gate", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if skipReason != "" {
				t.Skip(skipReason)
			}
			row, gates := brokenRow(t, scenario{name: "plain", spec: localnet.Spec{Kind: localnet.KindPlain}}, func(t *testing.T, e *localnet.Env) {
				run(t, e, e.Server, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "200mbit", "burst", "256kb", "latency", "200ms")
			})
			require.NotNil(t, row.VsBaseline)
			t.Logf("throttled: client %.0f Mbps, %.3f of the baseline", row.ClientMbps.Median, row.VsBaseline.BandwidthRatio.Median)
			assert.Less(t, row.ClientMbps.Median, 260.0, "tbf limits the path to 200 Mbit/s")
			assert.True(t, gateFails(gates, result.FigBandwidthRatio), "the bandwidth-ratio gate must fail on a throttled path: %v", gates)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
