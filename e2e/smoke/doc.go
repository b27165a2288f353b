// Package smoke is pathcost's Kubernetes smoke test (files behind the "smoke" build tag): pods
// pinned to tcprole=client|server nodes by nodeAffinity, pod-to-pod tcpload traffic across nodes, a
// NodePort Service reached through a node that does not host the server pod, and a DaemonSet
// reading node CPU, each asserting real figures. By default it runs on a cluster made by the nskube
// provider (real Kubernetes, nodes as network namespaces, no Docker, no registry):
//
//	go run ./cmd/tcpload cluster build          # first time: ~30 min on 2 cores, then cached
//	go test -tags smoke -v -timeout 60m ./e2e/smoke -args -provider nskube [-nodes 3] [-cni ptp]
//
// With -provider kubeconfig (and --kubeconfig) it runs on an existing cluster instead.
package smoke
