# pathcost: what a network path costs a TCP workload.
# make run     loopback measurement at the seed's settings, readable summary
# make test    gofmt + vet (every build tag) + race tests + e2e compile check for every tag set + actionlint
# make e2e     the seed's six scenarios in network namespaces (root), one combined table
# make e2e-smoke  a real 2-node Kubernetes (nskube, no Docker) and a tcpload smoke test on it
# make gate    the six scenarios (5 repeats) compared with testdata/reference (root)
# make e2e-k8s    the six scenarios on nskube clusters (pkg/provider/kube), one combined table
# make e2e-vm  plain and nodeport on VMs booted here (root; -provider vm; VM_HYPERVISOR=auto|uml|kvm|tcg)
# See README.md for everything else.

GO        ?= go
TAG_SETS  := plain gr istio "gr istio" vpccni "vpccni istio" nodeport
# packages with unit tests (e2e suites run through their own targets)
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v '/e2e')
RESULTS   ?= results
STAMP     := $(shell date +%Y%m%d-%H%M%S)
E2E_ARGS  ?=
FUZZTIME  ?= 60000x

.PHONY: all build run test actionlint vet race e2e-compile fuzz e2e e2e-quick e2e-deps gate-power bench compare clean help

all: test

help:
	@sed -n '1,/^$$/s/^# //p' Makefile

build:
	CGO_ENABLED=0 $(GO) build -o bin/tcpload ./cmd/tcpload

# The main job: tcpload loopback at the seed's defaults (100 connections, 102400-byte buffers,
# server pushes), 10 s window after 2 s warm-up; both sides' records in results/loopback.json.
run: build
	@mkdir -p $(RESULTS)
	./bin/tcpload loopback --duration 10s --warmup 2s --json $(RESULTS)/loopback.json
	@echo "records: $(RESULTS)/loopback.json"

test: vet race e2e-compile actionlint

# the GitHub workflows, checked here so a broken workflow fails before it fails on GitHub
ACTIONLINT ?= github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
actionlint:
	$(GO) run $(ACTIONLINT) -color=false

vet:
	@out=$$(gofmt -l cmd pkg e2e bench); [ -z "$$out" ] || { echo "gofmt -l: not formatted: $$out"; exit 1; }
	@for t in "" $(TAG_SETS) smoke nskube gatepower; do echo "go vet -tags '$$t' ./..."; $(GO) vet -tags "$$t" ./... || exit 1; done

race:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# compile-only gate for every tag set and mixed ones (go test -list would run TestMain's Setup)
E2E_MIXED := "gr nodeport" "istio nodeport" "gr vpccni" "plain gr istio" "plain gr vpccni istio nodeport"
e2e-compile:
	@for t in "" $(TAG_SETS) $(E2E_MIXED) gatepower; do echo "go test -c -tags '$$t' ./e2e"; $(GO) test -c -o /dev/null -tags "$$t" ./e2e || exit 1; done

# Each target runs for a number of executions (FUZZTIME=60000x), not a duration: with a duration the
# fuzzing engine can fail a target with its own "context deadline exceeded" and no failing input
# when a worker on a loaded 2-CPU machine is slow to stop (a race in Go's fuzz coordinator); a count
# has no deadline to race. A real failure writes its input to testdata/fuzz and fails.
FUZZ_TARGETS := "FuzzDecodeHeader ./pkg/tcpload" "FuzzParseRate ./pkg/units" "FuzzParseSize ./pkg/units" "FuzzParseDuration ./pkg/units"
fuzz:
	@for f in $(FUZZ_TARGETS); do \
	  set -- $$f; \
	  echo "go test -run '^$$' -fuzz $$1 -fuzztime $(FUZZTIME) $$2"; \
	  $(GO) test -run '^$$' -fuzz $$1 -fuzztime $(FUZZTIME) $$2 || exit 1; \
	done

# What the local provider needs. Every target that needs Debian packages installs them the same
# way (.ci/need.sh): as root on Debian/Ubuntu with apt-get, otherwise it names what is missing.
E2E_NEEDS := ip:iproute2 tc:iproute2 nsenter:util-linux iptables:iptables iptables-restore:iptables haproxy:haproxy conntrack:conntrack
e2e-deps:
	@sh .ci/need.sh "make e2e" $(E2E_NEEDS)

# The seed's six scenarios in turn, each against its own plain baseline, then one table.
e2e: e2e-deps
	@[ "$$(id -u)" = 0 ] || { echo "make e2e needs root: it builds network namespaces, veth pairs, bridges and iptables rules (sudo make e2e)"; exit 1; }
	@dir=$(abspath $(RESULTS))/$(STAMP); rc=0; dirs=""; \
	for s in plain gr "gr istio" vpccni "vpccni istio" nodeport; do \
	  sub=$$dir/$$(echo $$s | tr ' ' '+'); dirs="$$dirs $$sub"; \
	  echo "=== scenario: -tags '$$s'"; \
	  $(GO) test -v -count=1 -timeout 30m -tags "$$s" ./e2e -args -results $$sub $(E2E_ARGS) || rc=1; \
	done; \
	echo; echo "=== all scenarios ($$dir)"; \
	$(GO) run ./cmd/tcpload report --out $$dir $$dirs || rc=1; exit $$rc

# CI: the six scenarios briefly (2 s windows, 3 repeats) so the gates run on every change.
e2e-quick:
	$(MAKE) e2e E2E_ARGS="-duration 2s -warmup 1s -repeats 3 $(E2E_ARGS)"

# The gates' measured power: TRIALS trials each of the plain scenario as it is (A/A: any failed
# gate is a false alarm) and with -20 % bandwidth (tc) and +20 % server CPU injected into its path,
# then of gr+istio as it is and with +20 % CPU per byte in its sidecars (a burner preloaded into
# them, built with gcc; the sidecar gate max_sidecar_per_app) (the repeats and windows of
# e2e-quick unless E2E_ARGS says otherwise, e.g. E2E_ARGS="-power-only sidecar"); prints the
# detection and false-alarm rates and fails when detection < 90 % or false alarms > 5 %.
TRIALS ?= 10
gate-power: e2e-deps
	@sh .ci/need.sh "make gate-power" gcc:gcc
	@[ "$$(id -u)" = 0 ] || { echo "make gate-power needs root: it builds network namespaces and tc qdiscs (sudo make gate-power)"; exit 1; }
	$(GO) test -v -count=1 -timeout 180m -tags gatepower -run 'TestGatePower' ./e2e -args -trials $(TRIALS) \
	  -results $(abspath $(RESULTS))/$(STAMP)-power -duration 2s -warmup 1s -repeats 3 $(E2E_ARGS)

# --- Kubernetes: the six scenarios on nskube (pkg/provider/kube) ---------------------------------
# One nskube cluster per tag set (3 nodes for nodeport, ptp CNI for vpccni, the emulated sidecar
# for istio), brought up and torn down by the test process, then one combined table.
# K8S_ARGS is passed to every run, e.g. K8S_ARGS="-cluster pathcost" to use a running cluster
# (make cluster-up; its CNI then serves every tag set), or -keep.
K8S_ARGS       ?=
K8S_THRESHOLDS ?= $(CURDIR)/testdata/thresholds/nskube.yaml

.PHONY: e2e-k8s
e2e-k8s: cluster-build
	@[ "$$(id -u)" = 0 ] || { echo "make e2e-k8s needs root: nskube nodes are network, mount and cgroup namespaces (sudo make e2e-k8s)"; exit 1; }
	@dir=$(abspath $(RESULTS))/$(STAMP)-nskube; rc=0; dirs=""; \
	for s in plain gr "gr istio" vpccni "vpccni istio" nodeport; do \
	  sub=$$dir/$$(echo $$s | tr ' ' '+'); dirs="$$dirs $$sub"; \
	  echo "=== scenario on nskube: -tags '$$s'"; \
	  $(GO) test -v -count=1 -timeout 30m -tags "$$s" ./e2e -args -provider nskube \
	    -thresholds $(K8S_THRESHOLDS) -results $$sub $(E2E_ARGS) $(K8S_ARGS) || rc=1; \
	done; \
	echo; echo "=== all scenarios on nskube ($$dir)"; \
	$(GO) run ./cmd/tcpload report --out $$dir $$dirs || rc=1; exit $$rc

# CI: the six scenarios on nskube briefly (2 s windows, 2 repeats)
.PHONY: e2e-k8s-quick
e2e-k8s-quick:
	$(MAKE) e2e-k8s E2E_ARGS="-duration 2s -warmup 1s -repeats 2 $(E2E_ARGS)"

bench:
	$(GO) test -run '^$$' -bench 'Loopback|Programs' -count 5 ./bench

# tcpload vs the seed's C programs vs iperf3 in alternating rounds: medians, per-round ratios and
# the median ratios with a 95 % confidence interval (root). ROUNDS, WINDOW (seconds), PIN (split|same);
# TCPLOAD_FLAGS are added to tcpload's server and client (e.g. --notsent-lowat kernel, as the seed
# runs); NOTSENT_LOWAT (bytes) sets net.ipv4.tcp_notsent_lowat in each pair's namespace, for all three.
ROUNDS  ?= 9
WINDOW  ?= 5
PIN     ?=
TCPLOAD_FLAGS ?=
NOTSENT_LOWAT ?=
compare:
	PATHCOST_BENCH_TCPLOAD_FLAGS='$(TCPLOAD_FLAGS)' PATHCOST_BENCH_NOTSENT_LOWAT='$(NOTSENT_LOWAT)' \
	  bash bench/compare.sh $(ROUNDS) $(WINDOW) $(PIN)

clean:
	rm -rf bin

# --- reference gate and benchmark comparison ---------------------------------------------------
# make gate       the six scenarios with GATE_REPEATS repeats (2 s windows as e2e-quick), then
#                 `tcpload compare REF NEW --tolerance GATE_TOLERANCE` against the reference named
#                 by testdata/reference/CURRENT (or REF=summary.json): fails on a figure that got
#                 significantly worse (Mann-Whitney U, alpha 0.05) by more than the tolerance.
#                 Figures are machine-specific: compare only with a reference of the same machine class.
# make reference  the same matrix, copied into testdata/reference/local-<UTC date>/ and named in
#                 testdata/reference/CURRENT (refused when a scenario is missing or a repeat failed)
# make gate-selftest  no measurement: the gate passes the reference against itself and fails it
#                 against copies with client Mbps x0.7 and total cores/Gbps x1.3 (needs jq)
# make bench-compare  benchstat of `go test -bench BENCH -count COUNT ./bench` at OLD vs NEW
# 5 repeats: the fewest with which a Mann-Whitney U test of 5+5 samples can reach p < 0.05 with
# some overlap (3+3 never can, 4+4 only with none) and the medians get a 90 % interval.
GATE_REPEATS   ?= 5
GATE_TOLERANCE ?= 10
GATE_E2E_ARGS  ?= -duration 2s -warmup 1s -repeats $(GATE_REPEATS)
REF            ?= $(shell bash bench/refgate.sh current 2>/dev/null)

.PHONY: gate reference gate-selftest bench-compare

# the matrix of make gate and make reference ($(1): gate or reference; results in
# RESULTS/STAMP-$(1)). make e2e reports its own threshold gates; make gate's verdict is the
# comparison's, and a missing scenario or a failed repeat fails it (bench/refgate.sh check).
gate_matrix = $(MAKE) --no-print-directory e2e STAMP=$(STAMP)-$(1) E2E_ARGS="$(GATE_E2E_ARGS) $(E2E_ARGS)" || \
	  echo "*** make e2e failed (its threshold gates or a failed repeat, above); the reference gate follows"

gate:
	@ref="$(REF)"; [ -n "$$ref" ] || { bash bench/refgate.sh current; exit 2; }; \
	$(call gate_matrix,gate); \
	bash bench/refgate.sh check $(RESULTS)/$(STAMP)-gate/summary.json && \
	GATE_TOLERANCE=$(GATE_TOLERANCE) bash bench/refgate.sh compare "$$ref" $(RESULTS)/$(STAMP)-gate/summary.json

reference:
	@$(call gate_matrix,reference); \
	bash bench/refgate.sh save $(RESULTS)/$(STAMP)-reference

gate-selftest:
	GATE_TOLERANCE=$(GATE_TOLERANCE) bash bench/refgate.sh selftest

# OLD and NEW: git revisions, or NEW= empty for the working tree (the default: HEAD vs your change)
OLD   ?= HEAD
NEW   ?=
COUNT ?= 5
BENCH ?= Loopback/seed
BENCHSTAT ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260709024250-82a0b07e230d
bench-compare:
	OLD="$(OLD)" NEW="$(NEW)" COUNT=$(COUNT) BENCH="$(BENCH)" BENCHSTAT=$(BENCHSTAT) GO=$(GO) bash bench/benchcmp.sh

# cluster-build, cluster-up, cluster-down, cluster-status, e2e-smoke
include pkg/cluster/nskube/nskube.mk

# vm-deps, vm-test, e2e-vm (-provider vm: QEMU or User-Mode Linux VMs booted here)
include pkg/provider/vm/vm.mk
