//go:build nodeport

package e2e

import (
	"testing"

	"github.com/pathcost/pathcost/pkg/topo"
)

// The seed's scenario 6: server pod on node C behind NodePort 32000; the client on host A dials
// node B, whose kube-proxy rules DNAT and masquerade the traffic to C.
var _ = register(topo.NodePort)

func TestNodePort(t *testing.T) {
	requireProvider(t)
	testenv.Test(t, scenarioFeature(topo.NodePort))
}
