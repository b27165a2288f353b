# pathcost: what a network path costs a TCP workload.
# make run     loopback measurement at the seed's settings, readable summary
# make test    vet (every build tag) + race tests + e2e compile check for every tag set + actionlint
# make e2e     the seed's six scenarios in network namespaces (root), one combined table
# make e2e-smoke  a real 2-node Kubernetes (nskube, no Docker) and a tcpload smoke test on it
# make e2e-vm  plain and nodeport on User-Mode Linux VMs booted here (root; -provider vm)
# See README.md for everything else.

GO        ?= go
TAG_SETS  := plain gr istio "gr istio" vpccni "vpccni istio" nodeport
# packages with unit tests (e2e suites run through their own targets)
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v '/e2e')
RESULTS   ?= results
STAMP     := $(shell date +%Y%m%d-%H%M%S)
E2E_ARGS  ?=
FUZZTIME  ?= 5s

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
	@for t in "" $(TAG_SETS) smoke nskube gatepower; do echo "go vet -tags '$$t' ./..."; $(GO) vet -tags "$$t" ./... || exit 1; done

race:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# compile-only gate for every tag set and mixed ones (go test -list would run TestMain's Setup)
E2E_MIXED := "gr nodeport" "istio nodeport" "gr vpccni" "plain gr istio" "plain gr vpccni istio nodeport"
e2e-compile:
	@for t in "" $(TAG_SETS) $(E2E_MIXED) gatepower; do echo "go test -c -tags '$$t' ./e2e"; $(GO) test -c -o /dev/null -tags "$$t" ./e2e || exit 1; done

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeHeader -fuzztime $(FUZZTIME) ./pkg/tcpload
	$(GO) test -run '^$$' -fuzz FuzzParseRate -fuzztime $(FUZZTIME) ./pkg/units
	$(GO) test -run '^$$' -fuzz FuzzParseSize -fuzztime $(FUZZTIME) ./pkg/units
	$(GO) test -run '^$$' -fuzz FuzzParseDuration -fuzztime $(FUZZTIME) ./pkg/units

# What the local provider needs; installed when running as root on Debian/Ubuntu.
e2e-deps:
	@missing=""; \
	for pair in ip:iproute2 tc:iproute2 nsenter:util-linux iptables:iptables haproxy:haproxy conntrack:conntrack; do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make e2e needs (as root):$$missing — install them with: sudo apt-get install$$missing"; exit 1; fi; \
	fi

# The seed's six scenarios in turn, each against its own plain baseline, then one table.
e2e: e2e-deps
	@[ "$$(id -u)" = 0 ] || { echo "make e2e needs root: it builds network namespaces, veth pairs, bridges and iptables rules (sudo make e2e)"; exit 1; }
	@dir=$(RESULTS)/$(STAMP); rc=0; dirs=""; \
	for s in plain gr "gr istio" vpccni "vpccni istio" nodeport; do \
	  sub=$$dir/$$(echo $$s | tr ' ' '+'); dirs="$$dirs $$sub"; \
	  echo "=== scenario: -tags '$$s'"; \
	  $(GO) test -v -count=1 -timeout 30m -tags "$$s" ./e2e -args -results $(CURDIR)/$$sub $(E2E_ARGS) || rc=1; \
	done; \
	echo; echo "=== all scenarios ($$dir)"; \
	$(GO) run ./cmd/tcpload report --out $$dir $$dirs || rc=1; exit $$rc

# CI: the six scenarios briefly (2 s windows, 3 repeats) so the gates run on every change.
e2e-quick:
	$(MAKE) e2e E2E_ARGS="-duration 2s -warmup 1s -repeats 3 $(E2E_ARGS)"

# The gates' measured power: TRIALS trials each of the plain scenario as it is (A/A: any failed
# gate is a false alarm) and with -20 % bandwidth (tc) and +20 % client CPU injected into its path
# (the repeats and windows of e2e-quick unless E2E_ARGS says otherwise); prints the detection and
# false-alarm rates and fails when detection < 90 % or false alarms > 5 %.
TRIALS ?= 10
gate-power: e2e-deps
	@[ "$$(id -u)" = 0 ] || { echo "make gate-power needs root: it builds network namespaces and tc qdiscs (sudo make gate-power)"; exit 1; }
	$(GO) test -v -count=1 -timeout 180m -tags gatepower -run 'TestGatePower' ./e2e -args -trials $(TRIALS) \
	  -results $(CURDIR)/$(RESULTS)/$(STAMP)-power -duration 2s -warmup 1s -repeats 3 $(E2E_ARGS)

bench:
	$(GO) test -run '^$$' -bench . -count 5 ./bench

# tcpload vs the seed's C programs vs iperf3, alternately, with ratios
compare:
	bash bench/compare.sh

clean:
	rm -rf bin

# cluster-build, cluster-up, cluster-down, cluster-status, e2e-smoke
include pkg/cluster/nskube/nskube.mk

# vm-deps, e2e-vm (-provider vm: User-Mode Linux VMs booted here)
include pkg/provider/vm/vm.mk
