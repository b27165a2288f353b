//go:build vpccni

package e2e

import "github.com/pathcost/pathcost/pkg/topo"

// podCNI is the pod network of the pod scenarios: VPC-CNI, shared ENI with several IPs.
const podCNI = topo.KindVPCCNI
