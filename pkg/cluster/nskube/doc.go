// Package nskube is an e2e-framework cluster provider that runs a real multi-node Kubernetes on one
// Linux machine with no container engine and no registry: the binaries are built from the Go module
// proxy, each node is a network namespace (with its own mount namespace, containerd, kubelet and
// kube-proxy) attached by veth to a bridge namespace that plays the VPC, and images are built from
// static binaries and imported into every node's containerd.
//
//	testenv.Setup(envfuncs.CreateCluster(nskube.NewProvider(), "pathcost"))
//	testenv.Finish(envfuncs.DestroyCluster("pathcost"))
//
// A program that uses Provider.Create calls RunReaperIfAsked first in main (or TestMain) and
// gives the provider a signal handler (WithSignalHandler) that exits; the package itself never
// exits. The command line for humans is `tcpload cluster` (cmd/tcpload). README.md in this
// directory describes the topology, what it needs and changes on the host, and its limits.
package nskube
