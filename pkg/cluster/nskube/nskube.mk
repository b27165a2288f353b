# nskube targets: `include pkg/cluster/nskube/nskube.mk` from the top Makefile (or paste them there).
GO ?= go
NSKUBE_VERSION ?= v1.34.4
NSKUBE_NAME    ?= pathcost
NSKUBE_NODES   ?= 2
NSKUBE_CNI     ?= bridge
SMOKE_ARGS     ?=

.PHONY: cluster-build cluster-up cluster-down cluster-status e2e-smoke

# kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl, etcd from the Go module
# proxy into /var/cache/pathcost/k8s/$(NSKUBE_VERSION)/bin (first time ~30 min on 2 cores, then cached)
cluster-build:
	$(GO) run ./cmd/tcpload cluster build --version $(NSKUBE_VERSION)

# a real cluster, nodes as network namespaces; prints the kubeconfig path (stdout) and how to use it
cluster-up: cluster-build
	$(GO) run ./cmd/tcpload cluster up --name $(NSKUBE_NAME) --nodes $(NSKUBE_NODES) --cni $(NSKUBE_CNI) --version $(NSKUBE_VERSION)

cluster-down:
	$(GO) run ./cmd/tcpload cluster down --name $(NSKUBE_NAME)

cluster-status:
	$(GO) run ./cmd/tcpload cluster status --name $(NSKUBE_NAME)

# smoke test on nskube: nodeAffinity placement, pod-to-pod and NodePort tcpload runs, DaemonSet node CPU,
# then Destroy and a check that nothing is left on the host
e2e-smoke: cluster-build
	$(GO) test -tags smoke -count=1 -v -timeout 30m ./e2e/smoke -args -provider nskube -nodes $(NSKUBE_NODES) -cni $(NSKUBE_CNI) $(SMOKE_ARGS)
