//go:build nodeport

package e2e

import (
	"testing"

	"github.com/pathcost/pathcost/pkg/localnet"
)

// The seed's scenario 6: server pod on node C behind NodePort 32000; the client on host A dials
// node B, whose kube-proxy (iptables mode) rules DNAT and masquerade the traffic to C.
var nodePortScenario = scenario{
	name:  "nodeport",
	title: "6. NodePort 32000: client on A dials node B, B forwards to the server pod on C",
	spec:  localnet.Spec{Kind: localnet.KindNodePort},
}

var _ = register(nodePortScenario)

func TestNodePort(t *testing.T) {
	requireLocal(t)
	testenv.Test(t, scenarioFeature(nodePortScenario))
}
