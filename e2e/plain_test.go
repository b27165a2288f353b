//go:build plain || !(gr || vpccni || istio || nodeport)

package e2e

import (
	"testing"

	"github.com/pathcost/pathcost/pkg/localnet"
)

// The seed's scenario 1: two plain hosts on one L2 segment. Measured against a second pair of
// plain hosts, alternately: an A/A comparison that shows the noise of the machine.
var plainScenario = scenario{
	name:  "plain",
	title: "1. plain VMs: client and server hosts on one L2 segment (VPC)",
	spec:  localnet.Spec{Kind: localnet.KindPlain},
}

var _ = register(plainScenario)

func TestPlain(t *testing.T) {
	requireLocal(t)
	testenv.Test(t, scenarioFeature(plainScenario))
}
