//go:build gr || vpccni || istio

package e2e

import (
	"testing"

	"github.com/pathcost/pathcost/pkg/localnet"
)

// podScenario is the seed's scenario 2, 3, 4 or 5, depending on the tags: client and server
// pods on different nodes of the pod network podCNI, with or without sidecars.
func podScenario() scenario {
	s := scenario{spec: localnet.Spec{Kind: podCNI, Istio: withIstio}}
	switch {
	case podCNI == localnet.KindGR && !withIstio:
		s.name, s.title = "gr", "2. K8s, Global Router CNI, pods pinned to different nodes"
	case podCNI == localnet.KindGR:
		s.name, s.title = "gr+istio", "3. as 2, traffic through Istio sidecars"
	case !withIstio:
		s.name, s.title = "vpccni", "4. K8s, VPC-CNI (shared ENI, multiple IPs)"
	default:
		s.name, s.title = "vpccni+istio", "5. as 4, through Istio sidecars"
	}
	return s
}

var _ = register(podScenario())

func TestPodNetwork(t *testing.T) {
	requireLocal(t)
	testenv.Test(t, scenarioFeature(podScenario()))
}
