package vm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Hypervisor is what boots the VMs.
type Hypervisor string

// The hypervisors. Auto picks KVM where KVM can run a stock guest kernel, else UML.
const (
	HypervisorAuto Hypervisor = "auto"
	// HypervisorUML is User-Mode Linux: the guest kernel runs as host processes, one vCPU.
	HypervisorUML Hypervisor = "uml"
	// HypervisorKVM is QEMU with KVM, booting Debian's stock kernel.
	HypervisorKVM Hypervisor = "kvm"
	// HypervisorTCG is QEMU without acceleration: every guest instruction is emulated. It runs
	// the QEMU path on machines where KVM cannot, at a small fraction of a real VM's speed.
	HypervisorTCG Hypervisor = "tcg"
)

// ParseHypervisor reads a -vm-hypervisor value ("" is auto).
func ParseHypervisor(s string) (Hypervisor, error) {
	switch h := Hypervisor(s); h {
	case "":
		return HypervisorAuto, nil
	case HypervisorAuto, HypervisorUML, HypervisorKVM, HypervisorTCG:
		return h, nil
	}
	return "", fmt.Errorf("hypervisor %q: want auto, uml, kvm or tcg", s)
}

// qemu reports whether h boots with QEMU (and so needs a kernel and initrd in the image).
func (h Hypervisor) qemu() bool { return h == HypervisorKVM || h == HypervisorTCG }

// Describe is the hypervisor's name in notes and logs.
func (h Hypervisor) Describe() string {
	switch h {
	case HypervisorUML:
		return "User-Mode Linux"
	case HypervisorKVM:
		return "QEMU with KVM"
	case HypervisorTCG:
		return "QEMU without acceleration (TCG)"
	}
	return string(h)
}

// qemuBinary is Debian's QEMU for x86-64 guests (package qemu-system-x86).
const qemuBinary = "qemu-system-x86_64"

// Resolve turns auto into the hypervisor this machine can use, with the reason when it is not
// KVM; an explicit choice comes back as it is.
func Resolve(h Hypervisor) (Hypervisor, string) {
	if h != HypervisorAuto && h != "" {
		return h, ""
	}
	if err := kvmRunsStockKernels(); err != nil {
		why := fmt.Sprintf("not QEMU with KVM: %v", err)
		if umlErr := umlRunsHere(); umlErr != nil {
			if _, lookErr := exec.LookPath(qemuBinary); lookErr == nil {
				return HypervisorTCG, why + "; not User-Mode Linux: " + umlErr.Error()
			}
		}
		return HypervisorUML, why
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return HypervisorUML, "not QEMU with KVM: " + qemuBinary + " is not installed (apt-get install qemu-system-x86)"
	}
	return HypervisorKVM, ""
}

// kvmRunsStockKernels says why KVM here cannot boot Debian's kernel (nil: it can). KVM needs
// the CPU's virtualisation extensions; a /dev/kvm without vmx or svm in the host's CPU flags is
// a paravirtual hypervisor (such as PVM) that runs only guest kernels built for it.
func kvmRunsStockKernels() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	_ = f.Close()
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return fmt.Errorf("cpu flags: %w", err)
	}
	if !hasVirtFlag(string(data)) {
		return errors.New("/dev/kvm exists but the CPU shows no vmx or svm flag: a paravirtual KVM (such as PVM) that boots no stock guest kernel")
	}
	return nil
}

// umlRunsHere says why User-Mode Linux cannot run here (nil: it can, as far as is known). On a
// CPU with AMX the host's XSAVE area is larger than Debian's UML kernel (6.1) expects: restoring
// a process's FP registers through ptrace fails ("ptrace set fp regs failed, errno = 14") and
// init dies at boot.
func umlRunsHere() error {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	if hasCPUFlag(string(data), "amx_tile") {
		return errors.New("the CPU has AMX (amx_tile), whose FP register state Debian's UML kernel cannot restore (init dies at boot: ptrace set fp regs failed)")
	}
	return nil
}

// hasCPUFlag reports whether a /proc/cpuinfo text's flags line shows flag.
func hasCPUFlag(cpuinfo, flag string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		for _, f := range strings.Fields(v) {
			if f == flag {
				return true
			}
		}
	}
	return false
}

// hasVirtFlag reports whether a /proc/cpuinfo text shows Intel VT-x (vmx) or AMD-V (svm).
func hasVirtFlag(cpuinfo string) bool {
	return hasCPUFlag(cpuinfo, "vmx") || hasCPUFlag(cpuinfo, "svm")
}

// Requirements says what this machine lacks to build the image and boot the VMs with h
// (auto resolved first; nil: nothing).
func Requirements(h Hypervisor) error {
	h, _ = Resolve(h)
	if os.Geteuid() != 0 {
		return errors.New("the vm provider needs root: it builds the image with debootstrap and puts the VMs' taps in a network namespace")
	}
	if h.qemu() && runtime.GOARCH != "amd64" {
		return fmt.Errorf("the vm provider's QEMU image is amd64 (Debian's linux-image-amd64, qemu-system-x86_64); this is %s: use -vm-hypervisor uml", runtime.GOARCH)
	}
	need := map[string]string{"debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs", "ip": "iproute2", "ethtool": "ethtool"}
	if h.qemu() {
		need[qemuBinary] = "qemu-system-x86"
	} else {
		need[linuxUML] = "user-mode-linux"
	}
	var missing []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the vm provider (%s) needs Debian packages: apt-get install %s", h.Describe(), strings.Join(missing, " "))
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("the vm provider needs /dev/net/tun for the VMs' tap devices: %w", err)
	}
	switch h {
	case HypervisorUML:
		if _, err := umlKernel(); err != nil {
			return err
		}
	case HypervisorKVM:
		if err := kvmRunsStockKernels(); err != nil {
			return fmt.Errorf("-vm-hypervisor kvm: %w (use uml, or tcg to run QEMU emulated)", err)
		}
	}
	_, err := hostRelease()
	return err
}

// umlKernel is the version of the UML kernel's modules.
func umlKernel() (string, error) {
	entries, err := os.ReadDir(umlModules)
	if err != nil || len(entries) == 0 {
		return "", fmt.Errorf("no UML kernel modules in %s (apt-get install user-mode-linux): %v", umlModules, err)
	}
	return entries[0].Name(), nil
}

// bootArgs is the command (run with `ip netns exec NS`) that boots role's VM from img with its
// tap device and MAC; console output goes to its standard output.
func (p *Provider) bootArgs(role, tap, mac string) []string {
	if !p.hv.qemu() {
		return []string{linuxUML,
			"umid=" + p.ns + "-" + role, "uml_dir=" + p.run, "mem=" + p.cfg.Memory,
			fmt.Sprintf("ubd0=%s/%s.cow,%s", p.run, role, p.img.base), "root=/dev/ubda", "rw",
			fmt.Sprintf("vec0:transport=tap,ifname=%s,mac=%s", tap, mac),
			"con=null", "con0=null,fd:1", "systemd.hostname=" + role}
	}
	accel, cpu, vhost := "tcg", "max", "off"
	if p.hv == HypervisorKVM {
		accel, cpu = "kvm", "host"
		if _, err := os.Stat("/dev/vhost-net"); err == nil {
			vhost = "on"
		}
	}
	// snapshot=on keeps the base image read-only: each VM writes to a temporary file in
	// TMPDIR (the run directory). -name carries the namespace, so a VM can be told to its run
	// (QEMU dies with the provider's process: Pdeathsig).
	return []string{qemuBinary,
		"-name", p.ns + "-" + role, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", "q35", "-accel", accel, "-cpu", cpu, "-smp", "1", "-m", p.cfg.Memory,
		"-kernel", filepath.Join(p.img.dir, "vmlinuz"), "-initrd", filepath.Join(p.img.dir, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.hostname=" + role,
		"-drive", "file=" + p.img.base + ",if=virtio,format=raw,snapshot=on",
		"-netdev", fmt.Sprintf("tap,id=net0,ifname=%s,script=no,downscript=no,vhost=%s", tap, vhost),
		"-device", "virtio-net-pci,netdev=net0,mac=" + mac,
		"-serial", "stdio"}
}
