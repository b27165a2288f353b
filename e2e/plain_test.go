//go:build plain || !(gr || vpccni || istio || nodeport)

package e2e

import (
	"testing"

	"github.com/pathcost/pathcost/pkg/topo"
)

// The seed's scenario 1: two plain hosts on one L2 segment. Measured against a second pair of
// plain hosts, alternately: an A/A comparison that shows the noise of the machine.
var _ = register(topo.Plain)

func TestPlain(t *testing.T) {
	requireProvider(t)
	testenv.Test(t, scenarioFeature(topo.Plain))
}
