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

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/topo"
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

// brokenRow measures a deliberately broken copy of s against its baseline, once in each mode,
// and gates it with s's thresholds; breakIt is applied to the scenario's path after Up.
func brokenRow(t *testing.T, s topo.Spec, breakIt func(t *testing.T, p provider.Path)) (result.Row, []result.GateResult) {
	t.Helper()
	base := up(t, topo.Plain)
	sc := up(t, s)
	breakIt(t, sc)
	name := s.Name + "-broken"
	var baseRuns, runs []result.Run
	for _, mode := range modes() {
		baseRuns = append(baseRuns, runOnce(t, base, "baseline:"+name, mode, 0, nil))
		runs = append(runs, runOnce(t, sc, name, mode, 0, nil))
	}
	baseRow := result.Aggregate("baseline:"+name, "", baseRuns)
	row := result.Aggregate(name, "", runs)
	result.CompareToBaseline(&row, baseRow)
	return row, result.Gate(row, suite.thresholds.For(s.Name))
}

// run runs a program (not tcpload) on a host, which must be a provider.Commander; a host that
// cannot run programs skips the self-test.
func run(t *testing.T, h provider.Host, name string, args ...string) string {
	t.Helper()
	c, ok := h.(provider.Commander)
	if !ok {
		t.Skipf("-provider %s cannot run %s on host %s (no Commander): this self-test needs it", suite.provider.Name(), name, h.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.Command(ctx, name, args...)
	require.NoError(t, err, "%s %s on %s", name, strings.Join(args, " "), h.Name())
	return string(out)
}

// TestGateCatchesBottleneck shows the gate failing on a degraded path: the server host's link
// is throttled to 200 Mbit/s (tc tbf), far below what the plain baseline carries.
func TestGateCatchesBottleneck(t *testing.T) {
	requireProvider(t)
	f := features.New("gate self-test: bottleneck").
		Assess("a throttled path fails the bandwidth gate", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			requireProvider(t)
			if n := suite.provider.Name(); n == "ssh" || n == "vm" {
				t.Skipf("-provider %s: the baseline and the scenario share the server host, so a throttle on it slows both and the ratio cannot show it", n)
			}
			row, gates := brokenRow(t, topo.Plain, func(t *testing.T, p provider.Path) {
				t.Cleanup(func() {
					if c, ok := p.Server().(provider.Commander); ok {
						_, _ = c.Command(context.Background(), "tc", "qdisc", "del", "dev", "eth0", "root")
					}
				})
				run(t, p.Server(), "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "200mbit", "burst", "256kb", "latency", "200ms")
			})
			require.NotNil(t, row.VsBaseline)
			t.Logf("throttled: client %.0f Mbps, %.3f of the baseline", row.ClientMbps.Median, row.VsBaseline.BandwidthRatio.Median)
			assert.Less(t, row.ClientMbps.Median, 260.0, "tbf limits the path to 200 Mbit/s")
			assert.True(t, gateFails(gates, result.FigBandwidthRatio), "the bandwidth-ratio gate must fail on a throttled path: %v", gates)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
