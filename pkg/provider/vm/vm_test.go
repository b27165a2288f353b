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
	r := release{suite: "bookworm", mirror: "http://deb.debian.org/debian", umlKernel: "6.1.176"}
	a := r.cacheDir("/c")
	assert.True(t, strings.HasPrefix(a, "/c/bookworm-uml6.1.176-"), a)
	assert.Equal(t, a, r.cacheDir("/c"))
	r2 := r
	r2.mirror = "http://other/debian"
	assert.NotEqual(t, a, r2.cacheDir("/c"))
}

func TestCheckSkipsPodScenarios(t *testing.T) {
	p := New(Config{})
	for _, s := range []topo.Spec{topo.GR, topo.GRIstio, topo.VPCCNI, topo.VPCCNIIstio} {
		err := p.Check(context.Background(), s)
		require.True(t, provider.IsSkip(err), "%s: %v", s.Name, err)
		assert.Equal(t, s.Name+" needs a cluster: use -provider kubeconfig", err.Error())
	}
}

// TestVMs builds (or reuses) the image, boots three UML VMs and runs plain and nodeport on
// them. It takes a minute or more, so it runs only with PATHCOST_VM_TEST=1 (make e2e-vm sets it).
func TestVMs(t *testing.T) {
	if os.Getenv("PATHCOST_VM_TEST") != "1" {
		t.Skip("boots VMs for a minute or more: set PATHCOST_VM_TEST=1 (make e2e-vm does)")
	}
	if err := Requirements(); err != nil {
		t.Skip(err)
	}
	p := New(Config{Binary: sshtest.Tcpload(t), Log: testLog{t}})
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
	assert.Contains(t, strings.Join(pa.Notes(), "\n"), "User-Mode Linux")
	c, s := sshtest.RunPair(t, pa, 100, "3s")
	t.Logf("plain: client %.0f Mbps, client VM idle %.1f%%, server VM idle %.1f%%", c.Mbps, c.Node.IdlePct, s.Node.IdlePct)
	assert.Greater(t, c.Mbps, 10.0, "offloads off: far more than the ~2 Mbps with them on")
	assert.Equal(t, 1, c.Node.NumCPU, "one vCPU per UML VM")
	require.NoError(t, pa.Down(ctx))

	pa, err = p.Up(ctx, topo.NodePort)
	require.NoError(t, err)
	assert.False(t, pa.SharedKernel())
	c, s = sshtest.RunPair(t, pa, 100, "3s")
	t.Logf("nodeport: client %.0f Mbps, client VM idle %.1f%%, server VM idle %.1f%%", c.Mbps, c.Node.IdlePct, s.Node.IdlePct)
	require.NoError(t, pa.Down(ctx))
	t.Logf("boot times: %v", p.BootTimes())

	ns, run := p.ns, p.run
	closed = true
	require.NoError(t, p.Close(ctx))
	assert.False(t, netns.Exists(ns), "namespace %s removed", ns)
	_, err = os.Stat(run)
	assert.True(t, os.IsNotExist(err), "run directory %s removed", run)
	out, _ := exec.Command("pgrep", "-f", "umid="+ns).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "no UML process left")
}

// testLog writes the provider's progress to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
