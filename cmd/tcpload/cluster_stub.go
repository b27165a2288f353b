package main

import "fmt"

// runCluster is a placeholder until cmd/tcpload/cluster.go (the nskube work) lands: whoever adds
// cluster.go deletes this file.
func runCluster(args []string) int {
	fmt.Fprintln(stderr, "tcpload cluster: not built into this binary yet")
	return 2
}
