# ---- -provider ssh and -provider vm (pkg/provider/ssh, pkg/provider/vm) ----
# e2e-vm: the seed's scenario 1 (plain) and nodeport on User-Mode Linux VMs booted here (each VM
# its own kernel: per-host idle %), one table. The image is built once with debootstrap from
# Debian's packages and cached in /var/cache/pathcost/vm. Cost runs at 100 Mbit/s: a UML VM has
# one vCPU and carries well under 1 Gbps. The gate self-test (tc on the server's eth0) is left
# out: the VMs outlive a path, so its throttle would stay for later scenarios and it throttles
# the baseline too (baseline and scenario share the server VM).
VM_NEEDS := linux.uml:user-mode-linux debootstrap:debootstrap mkfs.ext4:e2fsprogs ip:iproute2 ethtool:ethtool
VM_ARGS  ?= -duration 3s -warmup 1s -repeats 3 -rate 100Mbit

.PHONY: vm-deps e2e-vm

vm-deps:
	@sh .ci/need.sh "make e2e-vm" $(VM_NEEDS)

e2e-vm: vm-deps
	@[ "$$(id -u)" = 0 ] || { echo "make e2e-vm needs root: debootstrap, tap devices in a network namespace (sudo make e2e-vm)"; exit 1; }
	@dir=$(abspath $(RESULTS))/$(STAMP)-vm; rc=0; start=$$(date +%s); \
	echo "=== the vm provider's own test (image, boot, plain + nodeport, clean-up)"; \
	PATHCOST_VM_TEST=1 $(GO) test -count=1 -v -timeout 30m -run TestVMs ./pkg/provider/vm || rc=1; \
	echo "=== plain and nodeport, -provider vm"; \
	$(GO) test -v -count=1 -timeout 60m -tags "plain nodeport" -run 'TestPlain$$|TestNodePort$$' ./e2e -args -provider vm \
	  -thresholds $(CURDIR)/testdata/thresholds/vm.yaml -results $$dir $(VM_ARGS) $(E2E_ARGS) || rc=1; \
	echo "=== e2e-vm took $$(( $$(date +%s) - start )) s ($$dir)"; exit $$rc
