package main

import "github.com/pathcost/pathcost/pkg/cluster/nskube"

// runCluster is `tcpload cluster build|up|down|status`: the offline Kubernetes cluster (nskube)
// for humans. The logic is in pkg/cluster/nskube.
func runCluster(args []string) int {
	return nskube.CLI(args, stdout, stderr)
}
