//go:build (gr || istio) && !vpccni

package e2e

import "github.com/pathcost/pathcost/pkg/topo"

// podCNI is the pod network of the pod scenarios: Global Router (the default CNI, also for
// -tags istio alone).
const podCNI = topo.KindGR
