# nskube targets: `include pkg/cluster/nskube/nskube.mk` from the top Makefile (or paste them there).
GO ?= go
NSKUBE_VERSION ?= v1.34.4
NSKUBE_NAME    ?= pathcost
NSKUBE_NODES   ?= 2
NSKUBE_CNI     ?= bridge
SMOKE_ARGS     ?=

.PHONY: cluster-deps cluster-build cluster-up cluster-down cluster-status e2e-smoke

# the programs and CNI plugins a cluster runs (nskube.Requirements checks the same), installed as
# root like e2e-deps does (.ci/need.sh)
CLUSTER_NEEDS := containerd:containerd ctr:containerd runc:runc iptables:iptables conntrack:conntrack \
	socat:socat nsenter:util-linux unshare:util-linux ip:iproute2 \
	$(foreach p,bridge host-local portmap ptp loopback,/usr/lib/cni/$(p):containernetworking-plugins)
cluster-deps:
	@sh .ci/need.sh "make $(or $(MAKECMDGOALS),cluster-deps)" $(CLUSTER_NEEDS)

# kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl, etcd from the Go module
# proxy into /var/cache/pathcost/k8s/$(NSKUBE_VERSION)/bin (first time ~30 min on 2 cores, then cached)
cluster-build:
	$(GO) run ./cmd/tcpload cluster build --version $(NSKUBE_VERSION)

# a real cluster, nodes as network namespaces; prints the kubeconfig path (stdout) and how to use it
cluster-up: cluster-deps cluster-build
	$(GO) run ./cmd/tcpload cluster up --name $(NSKUBE_NAME) --nodes $(NSKUBE_NODES) --cni $(NSKUBE_CNI) --version $(NSKUBE_VERSION)

cluster-down:
	$(GO) run ./cmd/tcpload cluster down --name $(NSKUBE_NAME)

cluster-status:
	$(GO) run ./cmd/tcpload cluster status --name $(NSKUBE_NAME)

# smoke test on nskube: nodeAffinity placement, pod-to-pod and NodePort tcpload runs, DaemonSet node CPU,
# then Destroy and a check that nothing is left on the host
e2e-smoke: cluster-deps cluster-build
	$(GO) test -tags smoke -count=1 -v -timeout 30m ./e2e/smoke -args -provider nskube -nodes $(NSKUBE_NODES) -cni $(NSKUBE_CNI) $(SMOKE_ARGS)
