//go:build nskube

// Real-cluster tests of the provider (root, the Debian packages, the built binaries):
//
//	go test -tags nskube -v -timeout 20m ./pkg/cluster/nskube
//
// They skip with a message when the binaries are not built (tcpload cluster build).
package nskube

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pathcost/pathcost/pkg/interrupt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func needCluster(t *testing.T) {
	t.Helper()
	if err := Requirements(); err != nil {
		t.Skipf("cannot run a cluster here: %v", err)
	}
	if miss := MissingBinaries(BinDir(DefaultVersion)); len(miss) > 0 {
		t.Skipf("Kubernetes %s binaries not built (missing %v): run `tcpload cluster build` (~30 min on 2 cores)", DefaultVersion, miss)
	}
}

func checkGone(t *testing.T, root, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left, err := Leftovers(root, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %s", strings.Join(left, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestProviderUpDown brings a cluster up through the e2e-framework interface in each CNI mode,
// checks the nodes and their labels, destroys it and checks that nothing is left.
func TestProviderUpDown(t *testing.T) {
	needCluster(t)
	for _, tc := range []struct {
		cni   string
		nodes int
	}{{CNIBridge, 2}, {CNIPTP, 3}} {
		t.Run(tc.cni, func(t *testing.T) {
			root := t.TempDir()
			before := hostSnapshot(t)
			p := NewProvider(WithNodes(tc.nodes), WithCNI(tc.cni), WithStateRoot(root))
			p.SetDefaults().WithName("nsktest")
			ctx := context.Background()
			t0 := time.Now()
			kc, err := p.Create(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Destroy(context.Background()) })
			t.Logf("%s, %d nodes: up in %.1fs, kubeconfig %s", tc.cni, tc.nodes, time.Since(t0).Seconds(), kc)
			cs, err := kubernetes.NewForConfig(p.KubernetesRestConfig())
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, n := range nodes.Items {
				roles = append(roles, n.Labels[RoleLabel])
				if n.Spec.PodCIDR == "" {
					t.Errorf("node %s has no pod CIDR", n.Name)
				}
			}
			if strings.Join(roles, ",") != strings.Join(DefaultRoles(tc.nodes), ",") {
				t.Errorf("roles %v", roles)
			}
			if err := p.Destroy(ctx); err != nil {
				t.Fatal(err)
			}
			checkGone(t, root, "nsktest", time.Second)
			if d := before.Diff(hostSnapshot(t), OthersNetns); len(d) > 0 {
				t.Errorf("host changed: %s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestFailedUpTearsDown: a kubelet that cannot start makes Up fail, and Up removes all it made.
func TestFailedUpTearsDown(t *testing.T) {
	needCluster(t)
	bin := t.TempDir()
	for _, b := range Binaries {
		if err := os.Symlink(filepath.Join(BinDir(DefaultVersion), b), filepath.Join(bin, b)); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(bin, "kubelet"))
	if err := os.WriteFile(filepath.Join(bin, "kubelet"), []byte("#!/bin/sh\necho broken kubelet >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	before := hostSnapshot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := Up(ctx, Options{Name: "nskfail", BinDir: bin, StateRoot: root, Out: testWriter{t}})
	if err == nil {
		_ = Down(context.Background(), root, "nskfail", nil)
		t.Fatal("Up with a broken kubelet succeeded")
	}
	t.Logf("Up failed as expected: %v", err)
	// The error names what failed: the kubelet, and its log.
	if !strings.Contains(err.Error(), "kubelet") || !strings.Contains(err.Error(), "kubelet.log") {
		t.Errorf("error does not name the failed kubelet and its log: %v", err)
	}
	checkGone(t, root, "nskfail", time.Second)
	if d := before.Diff(hostSnapshot(t), OthersNetns); len(d) > 0 {
		t.Errorf("host changed by the failed bring-up:\n%s", strings.Join(d, "\n"))
	}
}

func hostSnapshot(t *testing.T) HostSnapshot {
	t.Helper()
	s, err := TakeHostSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReaper: a process that creates a cluster and dies without Destroy (here os.Exit, as after a
// panic or SIGKILL) leaves nothing: the reaper tears the cluster down.
func TestReaper(t *testing.T) {
	needCluster(t)
	if os.Getenv("NSKUBE_TEST_CHILD") != "" {
		p := NewProvider(WithStateRoot(os.Getenv("NSKUBE_TEST_ROOT")))
		p.SetDefaults().WithName("nskreap")
		if _, err := p.Create(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Exit(3) // no Destroy
	}
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReaper$", "-test.v")
	cmd.Env = append(os.Environ(), "NSKUBE_TEST_CHILD=1", "NSKUBE_TEST_ROOT="+root)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	if _, err := os.Stat(filepath.Join(root, "nskreap", "cluster.json")); err != nil {
		t.Logf("child output:\n%s", out)
	}
	checkGone(t, root, "nskreap", 60*time.Second)
}

// TestInterruptedUp: SIGINT or SIGTERM during the bring-up (containerd runs on every node) of
// `tcpload cluster up` and of Provider.Create tears the cluster down; the process exits
// 128+signal (130, 143), decided by tcpload's main and by the provider's signal handler.
func TestInterruptedUp(t *testing.T) {
	needCluster(t)
	root := os.Getenv("NSKUBE_TEST_ROOT")
	if os.Getenv("NSKUBE_TEST_INT") == "provider" {
		p := NewProvider(WithStateRoot(root), WithSignalHandler(func(sig os.Signal, err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "teardown:", err)
			}
			os.Exit(interrupt.ExitCode(sig))
		}))
		p.SetDefaults().WithName("nskint")
		if _, err := p.Create(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "Create:", err)
			os.Exit(1)
		}
		os.Exit(0) // not interrupted in time
	}
	tcpload := filepath.Join(t.TempDir(), "tcpload")
	if out, err := exec.Command("go", "build", "-o", tcpload, "github.com/pathcost/pathcost/cmd/tcpload").CombinedOutput(); err != nil {
		t.Fatalf("build tcpload: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		mode string
		sig  syscall.Signal
	}{{"cli", syscall.SIGINT}, {"provider", syscall.SIGTERM}, {"provider", syscall.SIGINT}} {
		t.Run(fmt.Sprintf("%s/%v", tc.mode, tc.sig), func(t *testing.T) {
			root := t.TempDir()
			before := hostSnapshot(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptedUp$")
			if tc.mode == "cli" {
				cmd = exec.Command(tcpload, "cluster", "up", "--state", root, "--name", "nskint")
			}
			cmd.Env = append(os.Environ(), "NSKUBE_TEST_INT="+tc.mode, "NSKUBE_TEST_ROOT="+root)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			sc := bufio.NewScanner(stderr)
			sent := false
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if !sent && strings.Contains(sc.Text(), "containerd on every node") {
					_ = cmd.Process.Signal(tc.sig)
					sent = true
				}
			}
			_ = cmd.Wait()
			if !sent {
				t.Fatalf("bring-up never reached containerd:\n%s", log.String())
			}
			if code, want := cmd.ProcessState.ExitCode(), interrupt.ExitCode(tc.sig); code != want {
				t.Errorf("exit %d, want %d:\n%s", code, want, log.String())
			}
			checkGone(t, root, "nskint", 5*time.Second)
			if d := before.Diff(hostSnapshot(t), OthersNetns); len(d) > 0 {
				t.Errorf("host changed:\n%s", strings.Join(d, "\n"))
			}
			t.Logf("child:\n%s", log.String())
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
