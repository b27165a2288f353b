# ---- -provider ssh and -provider vm (pkg/provider/ssh, pkg/provider/vm) ----
# e2e-vm: the seed's scenario 1 (plain) and nodeport on VMs booted here (each VM its own kernel:
# per-host idle %), one table. VM_HYPERVISOR: auto (QEMU with KVM where KVM runs a stock kernel,
# else User-Mode Linux), uml, kvm, or tcg (QEMU emulated). The image is built once with
# debootstrap from Debian's packages and cached in /var/cache/pathcost/vm. Cost runs at
# 100 Mbit/s: a UML or TCG VM has one vCPU and carries 0.5-1.7 Gbps here. The gate self-test (tc on the server's eth0) is left
# out: the VMs outlive a path, so its throttle would stay for later scenarios and it throttles
# the baseline too (baseline and scenario share the server VM).
VM_HYPERVISOR ?= auto
ifeq ($(filter auto uml kvm tcg,$(VM_HYPERVISOR)),)
$(error VM_HYPERVISOR=$(VM_HYPERVISOR): want auto, uml, kvm or tcg)
endif
VM_ARGS  ?= -duration 3s -warmup 1s -repeats 3 -rate 100Mbit
# auto, as -vm-hypervisor auto resolves it: QEMU with KVM where /dev/kvm and the CPU's vmx or
# svm flag say KVM can run it; else QEMU emulated (tcg) on a CPU with AMX, whose FP state
# Debian's UML kernel cannot restore (init dies at boot); else User-Mode Linux
VM_KVM_OK := $(shell [ -e /dev/kvm ] && grep -m1 '^flags' /proc/cpuinfo | grep -qwE 'vmx|svm' && echo 1)
VM_AMX    := $(shell grep -m1 '^flags' /proc/cpuinfo | grep -qw amx_tile && echo 1)
VM_HV     := $(if $(filter auto,$(VM_HYPERVISOR)),$(if $(VM_KVM_OK),auto,$(if $(VM_AMX),tcg,uml)),$(VM_HYPERVISOR))
# TCG's figures have their own shape (three emulated vCPUs share the host's cores)
VM_THRESHOLDS ?= $(CURDIR)/testdata/thresholds/$(if $(filter tcg,$(VM_HV)),vm-tcg,vm).yaml
VM_QEMU := $(if $(filter kvm tcg,$(VM_HV)),1,$(if $(filter auto,$(VM_HV)),1))
VM_UML  := $(if $(filter uml,$(VM_HV)),1)
VM_NEEDS := debootstrap:debootstrap mkfs.ext4:e2fsprogs ip:iproute2 ethtool:ethtool \
	$(if $(VM_UML),linux.uml:user-mode-linux) $(if $(VM_QEMU),qemu-system-x86_64:qemu-system-x86)

.PHONY: vm-deps vm-test e2e-vm vm-hypervisor

# vm-hypervisor prints VM_HYPERVISOR as resolved here: an explicit choice as it is; auto stays auto
# where KVM can run Debian's kernel (the provider then picks QEMU with KVM), else tcg or uml
vm-hypervisor:
	@echo $(VM_HV)

vm-deps:
	@sh .ci/need.sh "make e2e-vm/vm-test (VM_HYPERVISOR=$(VM_HYPERVISOR), here $(VM_HV))" $(VM_NEEDS)

# The provider's own test (image, boot, a plain and a nodeport pair (plain only under TCG), clean-up)
VM_TEST = PATHCOST_VM_TEST=1 PATHCOST_VM_HYPERVISOR=$(VM_HV) $(GO) test -count=1 -v -timeout 30m -run TestVMs ./pkg/provider/vm

# vm-test: only that test, e.g. `make vm-test VM_HYPERVISOR=tcg` to run the QEMU path on a
# machine without a usable KVM.
vm-test: vm-deps
	@[ "$$(id -u)" = 0 ] || { echo "make vm-test needs root: debootstrap, tap devices in a network namespace (sudo make vm-test)"; exit 1; }
	$(VM_TEST)

e2e-vm: vm-deps
	@[ "$$(id -u)" = 0 ] || { echo "make e2e-vm needs root: debootstrap, tap devices in a network namespace (sudo make e2e-vm)"; exit 1; }
	@dir=$(abspath $(RESULTS))/$(STAMP)-vm; rc=0; start=$$(date +%s); \
	echo "=== the vm provider's own test (image, boot, plain + nodeport, clean-up)"; \
	$(VM_TEST) || rc=1; \
	echo "=== plain and nodeport, -provider vm"; \
	$(GO) test -v -count=1 -timeout 60m -tags "plain nodeport" -run 'TestPlain$$|TestNodePort$$' ./e2e -args -provider vm -vm-hypervisor $(VM_HV) \
	  -thresholds $(VM_THRESHOLDS) -results $$dir $(VM_ARGS) $(E2E_ARGS) || rc=1; \
	echo "=== e2e-vm took $$(( $$(date +%s) - start )) s ($$dir)"; exit $$rc
