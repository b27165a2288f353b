//go:build istio

package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
)

// withIstio puts an Istio-style sidecar (istio-iptables capture plus a proxy with mTLS) into
// both pods of the pod scenario.
const withIstio = true

// TestGateCatchesBypassedSidecar shows the gate failing when the sidecar is silently out of the
// path: the istio-iptables capture chains are flushed in both pods after Up, so traffic goes
// straight from client to server and the proxies carry nothing.
func TestGateCatchesBypassedSidecar(t *testing.T) {
	requireProvider(t)
	s := podScenario()
	f := features.New("gate self-test: sidecar bypassed").
		Assess("a path without its sidecar fails the sidecar gate", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			requireProvider(t)
			row, gates := brokenRow(t, s, func(t *testing.T, p provider.Path) {
				for _, sc := range p.Sidecars() {
					run(t, sc.Host, "iptables", "-t", "nat", "-F", "ISTIO_OUTPUT")
					run(t, sc.Host, "iptables", "-t", "nat", "-F", "ISTIO_INBOUND")
				}
			})
			require.NotNil(t, row.SidecarClientCores, "the sidecars are still running and sampled")
			t.Logf("bypassed: client %.0f Mbps, sidecar %.4f + %.4f cores", row.ClientMbps.Median, row.SidecarClientCores.Median, row.SidecarServerCores.Median)
			assert.True(t, gateFails(gates, result.FigSidecarCoresPerGbps), "the sidecar gate must fail when the sidecar is bypassed: %v", gates)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
