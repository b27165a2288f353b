//go:build nskube

package kube

// The scenario suite (e2e) run as a user runs it, against an nskube cluster: bad input, an API
// server that does not answer, too few nodes, RBAC refusals and SIGINT mid-run, each followed by a
// check that nothing of ours is left (namespaces, Services, pods; the cluster for -provider nskube).
//
//	sudo go test -tags nskube -run Suite -v -timeout 30m ./pkg/provider/kube

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
)

var e2eDir, _ = filepath.Abs(filepath.Join("..", "..", "..", "e2e"))

// buildSuite compiles the e2e suite with tags into dir.
func buildSuite(t *testing.T, dir, tags string) string {
	t.Helper()
	out := filepath.Join(dir, "e2e-"+strings.ReplaceAll(tags, " ", "-")+".test")
	cmd := exec.Command("go", "test", "-c", "-tags", tags, "-o", out, ".")
	cmd.Dir = e2eDir
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// suiteRun is one run of the compiled suite.
type suiteRun struct {
	cmd      *exec.Cmd
	out      bytes.Buffer
	done     chan struct{}
	code     int
	duration time.Duration
}

func startSuite(t *testing.T, bin string, args ...string) *suiteRun {
	t.Helper()
	r := &suiteRun{done: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"-test.v", "-test.count=1"}, args...)...)
	r.cmd.Dir = e2eDir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	t0 := time.Now()
	require.NoError(t, r.cmd.Start())
	go func() {
		_ = r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		r.duration = time.Since(t0)
		close(r.done)
	}()
	return r
}

func (r *suiteRun) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		_ = r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("the suite did not end within %s:\n%s", d, r.out.String())
	}
	// what a user sees: the suite's own messages and skips, with the exit status and time
	var lines []string
	for _, l := range strings.Split(r.out.String(), "\n") {
		if strings.HasPrefix(l, "e2e: ") || strings.Contains(l, "kubeconfig: ") || strings.Contains(l, "SIGINT") ||
			strings.Contains(l, "interrupt") || strings.Contains(l, "RBAC") || strings.Contains(l, "skip") {
			lines = append(lines, l)
		}
	}
	t.Logf("exit %d after %.1fs:\n%s", r.code, r.duration.Seconds(), strings.Join(lines, "\n"))
}

// nothingOurs fails when a namespace, pod or Service made by pathcost is on the cluster.
func nothingOurs(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy}
	nss, err := cs.CoreV1().Namespaces().List(ctx, sel)
	require.NoError(t, err)
	pods, err := cs.CoreV1().Pods("").List(ctx, sel)
	require.NoError(t, err)
	svcs, err := cs.CoreV1().Services("").List(ctx, sel)
	require.NoError(t, err)
	var left []string
	for _, n := range nss.Items {
		left = append(left, "namespace "+n.Name)
	}
	for _, p := range pods.Items {
		left = append(left, "pod "+p.Namespace+"/"+p.Name)
	}
	for _, s := range svcs.Items {
		left = append(left, "service "+s.Namespace+"/"+s.Name)
	}
	assert.Empty(t, left, "nothing of ours is left on the cluster")
}

// waitOurPodRunning waits until a tcpload pod of ours runs (the suite is mid-run).
func waitOurPodRunning(t *testing.T, cs kubernetes.Interface, r *suiteRun, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pods, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: RolePodLabel + "=client"})
		if err == nil {
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					return
				}
			}
		}
		select {
		case <-r.done:
			t.Fatalf("the suite ended before a client pod ran:\n%s", r.out.String())
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("no client pod running after %s:\n%s", d, r.out.String())
}

func TestSuiteOnNSKube(t *testing.T) {
	if err := nskube.Requirements(); err != nil {
		t.Skipf("nskube: %v", err)
	}
	ctx := context.Background()
	work := t.TempDir()
	gr := buildSuite(t, work, "gr")
	nodeport := buildSuite(t, work, "nodeport")

	name := envconf.RandomName("pathcost-suite", 20)
	p := nskube.NewProvider(nskube.WithNodes(2))
	p.WithName(name)
	kc, err := p.Create(ctx)
	require.NoError(t, err)
	defer func() {
		assert.NoError(t, p.Destroy(context.Background()))
		left, err := nskube.Leftovers("", name)
		assert.NoError(t, err)
		assert.Empty(t, left)
	}()
	archive, err := BuildImageArchive(ctx, work, "")
	require.NoError(t, err)
	require.NoError(t, p.LoadImageArchive(ctx, archive))
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)

	t.Run("missing kubeconfig exits 2 naming it", func(t *testing.T) {
		missing := filepath.Join(work, "no-such-kubeconfig")
		r := startSuite(t, gr, "-provider", "kubeconfig", "-kubeconfig", missing)
		r.wait(t, time.Minute)
		assert.Equal(t, 2, r.code, r.out.String())
		assert.Contains(t, r.out.String(), missing)
		nothingOurs(t, cs)
	})
	t.Run("an API server that does not answer fails within 30 s naming its URL", func(t *testing.T) {
		file, url := closedPortKubeconfig(t)
		r := startSuite(t, gr, "-provider", "kubeconfig", "-kubeconfig", file)
		r.wait(t, time.Minute)
		assert.Equal(t, 1, r.code, r.out.String())
		assert.Less(t, r.duration, 30*time.Second)
		assert.Contains(t, r.out.String(), url)
		nothingOurs(t, cs)
	})
	t.Run("too few nodes skips naming them", func(t *testing.T) {
		r := startSuite(t, nodeport, "-provider", "kubeconfig", "-kubeconfig", kc, "-duration", "1s", "-repeats", "1")
		r.wait(t, 3*time.Minute)
		assert.Equal(t, 0, r.code, r.out.String())
		out := r.out.String()
		assert.Contains(t, out, "--- SKIP: TestNodePort")
		assert.Contains(t, out, name+"-node1=client")
		assert.Contains(t, out, name+"-node2=server")
		assert.Contains(t, out, "none for forward")
		nothingOurs(t, cs)
	})
	t.Run("RBAC forbidden fails naming verb and resource", func(t *testing.T) {
		restricted := restrictedKubeconfig(t, cs, kc, work)
		r := startSuite(t, gr, "-provider", "kubeconfig", "-kubeconfig", restricted, "-duration", "1s", "-repeats", "1")
		r.wait(t, 3*time.Minute)
		assert.Equal(t, 1, r.code, r.out.String())
		assert.Contains(t, r.out.String(), `verb "create" on resource "namespaces"`)
		nothingOurs(t, cs)
	})
	t.Run("an image that cannot be pulled fails naming image, node and event", func(t *testing.T) {
		const ref = "registry.invalid/pathcost/tcpload:missing"
		r := startSuite(t, gr, "-provider", "kubeconfig", "-kubeconfig", kc, "-image", ref, "-duration", "1s", "-repeats", "1")
		r.wait(t, 5*time.Minute)
		assert.Equal(t, 1, r.code, r.out.String())
		assert.Less(t, r.duration, 4*time.Minute, "within 2 minutes per pod")
		assert.Contains(t, r.out.String(), "image "+ref+" cannot be pulled on node "+name+"-node")
		assert.Contains(t, r.out.String(), "events: ")
		nothingOurs(t, cs)
	})
	t.Run("SIGINT mid-run removes the run's namespaces", func(t *testing.T) {
		r := startSuite(t, gr, "-provider", "kubeconfig", "-kubeconfig", kc, "-duration", "60s", "-repeats", "1")
		waitOurPodRunning(t, cs, r, 3*time.Minute)
		require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
		r.wait(t, 3*time.Minute)
		assert.Equal(t, 130, r.code, r.out.String())
		assert.Contains(t, r.out.String(), "removing this run's namespaces")
		nothingOurs(t, cs)
	})
}

// restrictedKubeconfig makes a ServiceAccount that may list nodes and namespaces but not create
// them, and a kubeconfig with a token of it.
func restrictedKubeconfig(t *testing.T, cs kubernetes.Interface, adminKC, dir string) string {
	t.Helper()
	ctx := context.Background()
	const sa = "pathcost-restricted"
	_, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "default"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	tok, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	admin, err := clientcmd.LoadFromFile(adminKC)
	require.NoError(t, err)
	cfg := clientcmdapi.NewConfig()
	for n, c := range admin.Clusters {
		cfg.Clusters[n] = c
		cfg.AuthInfos["restricted"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
		cfg.Contexts["restricted"] = &clientcmdapi.Context{Cluster: n, AuthInfo: "restricted"}
		cfg.CurrentContext = "restricted"
	}
	file := filepath.Join(dir, "restricted-kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, file))
	return file
}

// TestSuiteSIGINTOnNSKubeProvider: -provider nskube brings its own cluster up; SIGINT mid-run
// removes the cluster too.
func TestSuiteSIGINTOnNSKubeProvider(t *testing.T) {
	if err := nskube.Requirements(); err != nil {
		t.Skipf("nskube: %v", err)
	}
	root := nskube.StateRoot()
	before, _ := os.ReadDir(root)
	had := map[string]bool{}
	for _, e := range before {
		had[e.Name()] = true
	}
	gr := buildSuite(t, t.TempDir(), "gr")
	r := startSuite(t, gr, "-provider", "nskube", "-duration", "60s", "-repeats", "1")
	// find the cluster it brings up
	var name, kc string
	deadline := time.Now().Add(5 * time.Minute)
	for name == "" && time.Now().Before(deadline) {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if !had[e.Name()] && strings.HasPrefix(e.Name(), "pathcost-e2e-") {
				if _, err := os.Stat(filepath.Join(root, e.Name(), "kubeconfig")); err == nil {
					name, kc = e.Name(), filepath.Join(root, e.Name(), "kubeconfig")
				}
			}
		}
		select {
		case <-r.done:
			t.Fatalf("the suite ended before its cluster was up:\n%s", r.out.String())
		case <-time.After(time.Second):
		}
	}
	require.NotEmpty(t, name, "the suite's cluster")
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	waitOurPodRunning(t, cs, r, 3*time.Minute)
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
	r.wait(t, 3*time.Minute)
	assert.Equal(t, 130, r.code, r.out.String())
	// the reaper finishes a teardown the process could not; give it a moment
	var left []string
	for i := 0; i < 30; i++ {
		if left, _ = nskube.Leftovers(root, name); len(left) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	assert.Empty(t, left, "cluster %s is gone:\n%s", name, r.out.String())
}
