package vm

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/provider/ssh/netns"
	"github.com/pathcost/pathcost/pkg/provider/ssh/sshtest"
	"github.com/pathcost/pathcost/pkg/topo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sshtest.RemoveTcpload()
	os.Exit(code)
}

func TestMirrorIn(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"one-line", "deb http://deb.debian.org/debian bookworm main\ndeb http://security.debian.org/ bookworm-security main\n", "http://deb.debian.org/debian"},
		{"options", "deb [arch=amd64 signed-by=/x.gpg] http://m.example/debian bookworm main\n", "http://m.example/debian"},
		{"deb822", "Types: deb\nURIs: http://deb.nodesource.com/node\nSuites: nodistro\n\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n", "http://deb.debian.org/debian"},
		{"other suite", "deb http://deb.debian.org/debian trixie main\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, mirrorIn(tc.text, "bookworm")) })
	}
}

func TestCacheDirIsKeyedByContent(t *testing.T) {
	r := release{suite: "bookworm", mirror: "http://deb.debian.org/debian", kernel: "uml6.1.176"}
	a := r.cacheDir("/c")
	assert.True(t, strings.HasPrefix(a, "/c/bookworm-uml6.1.176-"), a)
	assert.Equal(t, a, r.cacheDir("/c"))
	assert.Equal(t, "uml", r.hypervisorArg())
	r2 := r
	r2.mirror = "http://other/debian"
	assert.NotEqual(t, a, r2.cacheDir("/c"))
	q := r
	q.kernel = "qemu"
	assert.True(t, strings.HasPrefix(q.cacheDir("/c"), "/c/bookworm-qemu-"), q.cacheDir("/c"))
	assert.Equal(t, "qemu", q.hypervisorArg())
}

func TestParseHypervisor(t *testing.T) {
	tests := []struct {
		in      string
		want    Hypervisor
		wantErr string
	}{
		{"", HypervisorAuto, ""},
		{"auto", HypervisorAuto, ""},
		{"uml", HypervisorUML, ""},
		{"kvm", HypervisorKVM, ""},
		{"tcg", HypervisorTCG, ""},
		{"qemu", "", `hypervisor "qemu": want auto, uml, kvm or tcg`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			h, err := ParseHypervisor(tc.in)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, h)
		})
	}
}

func TestHasVirtFlag(t *testing.T) {
	tests := []struct {
		name, cpuinfo string
		want          bool
	}{
		{"intel", "processor\t: 0\nflags\t\t: fpu vme de pse vmx ept\n", true},
		{"amd", "flags\t\t: fpu svm npt\n", true},
		{"pvm guest", "flags\t\t: fpu vme hypervisor avx2\nvmx flags\t: ept\n", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, hasVirtFlag(tc.cpuinfo)) })
	}
}

// TestResolve: an explicit choice is kept; auto picks KVM only where the CPU shows vmx or svm.
func TestResolve(t *testing.T) {
	for _, h := range []Hypervisor{HypervisorUML, HypervisorKVM, HypervisorTCG} {
		got, why := Resolve(h)
		assert.Equal(t, h, got)
		assert.Empty(t, why)
	}
	got, why := Resolve(HypervisorAuto)
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	require.NoError(t, err)
	if !hasVirtFlag(string(cpuinfo)) {
		assert.Contains(t, why, "not QEMU with KVM")
		if hasCPUFlag(string(cpuinfo), "amx_tile") && got == HypervisorTCG {
			assert.Contains(t, why, "not User-Mode Linux: the CPU has AMX")
		} else {
			assert.Equal(t, HypervisorUML, got)
		}
	}
	assert.Contains(t, []Hypervisor{HypervisorUML, HypervisorKVM, HypervisorTCG}, got)
}

// TestHasCPUFlag: only the flags line counts, whole words only.
func TestHasCPUFlag(t *testing.T) {
	info := "model name\t: amx_tile inside a name\nflags\t\t: fpu avx512f amx_tile amx_bf16\n"
	assert.True(t, hasCPUFlag(info, "amx_tile"))
	assert.True(t, hasCPUFlag(info, "fpu"))
	assert.False(t, hasCPUFlag(info, "amx"))
	assert.False(t, hasCPUFlag("model name\t: amx_tile\n", "amx_tile"))
}

// TestBootArgs: each hypervisor gets its kernel, disk, tap and MAC.
func TestBootArgs(t *testing.T) {
	img := &image{dir: "/cache/img", base: "/cache/img/base.img"}
	tests := []struct {
		hv   Hypervisor
		want []string
	}{
		{HypervisorUML, []string{linuxUML, "ubd0=/run/x/server.cow,/cache/img/base.img", "vec0:transport=tap,ifname=tap2,mac=52:54:00:77:00:0c", "mem=512M", "systemd.hostname=server"}},
		{HypervisorTCG, []string{qemuBinary, "-accel", "tcg", "-cpu", "max", "/cache/img/vmlinuz", "/cache/img/initrd.img", "file=/cache/img/base.img,if=virtio,format=raw,snapshot=on", "tap,id=net0,ifname=tap2,script=no,downscript=no,vhost=off", "virtio-net-pci,netdev=net0,mac=52:54:00:77:00:0c", "512M"}},
		{HypervisorKVM, []string{qemuBinary, "-accel", "kvm", "-cpu", "host"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.hv), func(t *testing.T) {
			p := New(Config{Hypervisor: tc.hv, Memory: "512M"})
			p.ns, p.run, p.img = "pcvmtest", "/run/x", img
			args := p.bootArgs("server", "tap2", "52:54:00:77:00:0c")
			assert.Equal(t, tc.want[0], args[0])
			for _, w := range tc.want[1:] {
				assert.Contains(t, args, w)
			}
		})
	}
}

func TestCheckSkipsPodScenarios(t *testing.T) {
	p := New(Config{})
	for _, s := range []topo.Spec{topo.GR, topo.GRIstio, topo.VPCCNI, topo.VPCCNIIstio} {
		err := p.Check(context.Background(), s)
		require.True(t, provider.IsSkip(err), "%s: %v", s.Name, err)
		assert.Equal(t, s.Name+" needs a cluster: use -provider kubeconfig", err.Error())
	}
}

// TestVMs builds (or reuses) the image, boots three VMs and runs plain and nodeport on them
// (plain only under TCG).
// It takes a minute or more, so it runs only with PATHCOST_VM_TEST=1 (make e2e-vm sets it);
// PATHCOST_VM_HYPERVISOR picks the hypervisor (default auto).
func TestVMs(t *testing.T) {
	if os.Getenv("PATHCOST_VM_TEST") != "1" {
		t.Skip("boots VMs for a minute or more: set PATHCOST_VM_TEST=1 (make e2e-vm does)")
	}
	hv, err := ParseHypervisor(os.Getenv("PATHCOST_VM_HYPERVISOR"))
	require.NoError(t, err, "PATHCOST_VM_HYPERVISOR")
	if err := Requirements(hv); err != nil {
		t.Skip(err)
	}
	p := New(Config{Binary: sshtest.Tcpload(t), Hypervisor: hv, Log: testLog{t}})
	t.Logf("hypervisor: %s", p.Hypervisor().Describe())
	ctx := context.Background()
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = p.Close(ctx)
		}
	})

	start := time.Now()
	pa, err := p.Up(ctx, topo.Plain)
	require.NoError(t, err)
	t.Logf("image + boot of 2 VMs + staging: %s", time.Since(start).Round(100*time.Millisecond))
	assert.False(t, pa.SharedKernel(), "each VM has its own kernel")
	assert.Contains(t, strings.Join(pa.Notes(), "\n"), "hypervisor "+p.Hypervisor().Describe())
	c, s := sshtest.RunPair(t, pa, 100, "3s")
	t.Logf("plain: client %.0f Mbps, client VM idle %.1f%%, server VM idle %.1f%%", c.Mbps, c.Node.IdlePct, s.Node.IdlePct)
	assert.Greater(t, c.Mbps, 10.0, "far more than UML's ~2 Mbps with offloads on")
	assert.Equal(t, 1, c.Node.NumCPU, "one vCPU per VM")
	require.NoError(t, pa.Down(ctx))

	if p.Hypervisor() == HypervisorTCG {
		// Three emulated VMs on a 2-core machine: in one e2e run here a guest's virtio-net TX
		// queue stalled for good ("NETDEV WATCHDOG ... transmit queue 0 timed out") after a
		// dozen nodeport runs; the nodeport code path is the ssh provider's, which UML covers.
		t.Log("nodeport: not run under TCG (three emulated VMs starve a small machine; UML runs it)")
	} else {
		pa, err = p.Up(ctx, topo.NodePort)
		require.NoError(t, err)
		assert.False(t, pa.SharedKernel())
		c, s = sshtest.RunPair(t, pa, 100, "3s")
		t.Logf("nodeport: client %.0f Mbps, client VM idle %.1f%%, server VM idle %.1f%%", c.Mbps, c.Node.IdlePct, s.Node.IdlePct)
		require.NoError(t, pa.Down(ctx))
	}
	t.Logf("boot times: %v", p.BootTimes())

	ns, run := p.ns, p.run
	closed = true
	require.NoError(t, p.Close(ctx))
	assert.False(t, netns.Exists(ns), "namespace %s removed", ns)
	_, err = os.Stat(run)
	assert.True(t, os.IsNotExist(err), "run directory %s removed", run)
	for _, pattern := range []string{"umid=" + ns, "-name " + ns} {
		// "--": the QEMU pattern starts with "-" (without it pgrep fails on usage and finds
		// nothing); exit status 1 is "no process matched", anything else is not an answer
		out, err := exec.Command("pgrep", "-f", "--", pattern).Output()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "pgrep %q: %s", pattern, out)
		assert.Equal(t, 1, ee.ExitCode(), "no VM process left (%s): %s", pattern, out)
	}
}

// testLog writes the provider's progress to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
