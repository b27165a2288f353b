//go:build gr || vpccni || istio

package e2e

import (
	"testing"

	"github.com/pathcost/pathcost/pkg/topo"
)

// podScenario is the seed's scenario 2, 3, 4 or 5, depending on the tags: client and server
// pods on different nodes of the pod network podCNI, with or without sidecars.
func podScenario() topo.Spec {
	s, err := topo.Pod(podCNI, withIstio)
	if err != nil {
		panic(err) // podCNI is a constant of this package: gr or vpccni
	}
	return s
}

var _ = register(podScenario())

func TestPodNetwork(t *testing.T) {
	requireProvider(t)
	testenv.Test(t, scenarioFeature(podScenario()))
}
