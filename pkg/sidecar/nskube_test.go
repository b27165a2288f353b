//go:build nskube

package sidecar

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/image"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/usage"
)

// TestEmulatedOnNSKube proves the injected sidecar on a real Kubernetes without Istio (nskube, two
// nodes): a tcpload server pod and a tcpload client pod on different nodes, each with the emulated
// sidecar injected, run a session through both proxies. It checks the istio-iptables rules inside
// the pods' network namespaces (applied by the init container: with NET_ADMIN only by
// iptables-nft in the server pod, with NET_ADMIN and NET_RAW by iptables-legacy in the client pod), that both
// proxies carried every connection and byte of the session (their connection logs; the server
// side's through its mTLS listener), their CPU over a window inside the session, and that every
// byte was conserved. Run it alone, under the measurement lock:
//
//	sudo go test -tags nskube -run TestEmulatedOnNSKube -v ./pkg/sidecar
//
// TestMain: an nskube cluster starts a reaper that re-executes this test binary.
func TestMain(m *testing.M) { os.Exit(nskube.RunTests(m)) }

func TestEmulatedOnNSKube(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nskube needs root")
	}
	if err := nskube.Requirements(); err != nil {
		t.Skipf("nskube: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// Images first: a failure here leaves no cluster behind.
	bin := filepath.Join(dir, "tcpload")
	require.NoError(t, image.GoBuildStatic(ctx, "../..", "./cmd/tcpload", bin))
	tcploadArchive := filepath.Join(dir, "tcpload.tar")
	require.NoError(t, image.WriteArchive(image.TCPLoad(bin, image.TCPLoadRef), tcploadArchive))
	imgs, err := BuildImages(ctx, dir)
	require.NoError(t, err)

	const cluster = "sidecar"
	p := nskube.NewProvider(nskube.WithNodes(2), nskube.WithOutput(io.Discard))
	p.WithName(cluster)
	t0 := time.Now()
	_, err = p.Create(ctx)
	require.NoError(t, err)
	st := p.State()
	t.Cleanup(func() {
		require.NoError(t, p.Destroy(context.Background()))
		left, err := st.Leftovers()
		assert.NoError(t, err)
		assert.Empty(t, left, "the cluster left nothing")
	})
	t.Logf("cluster %s up in %.1fs", cluster, time.Since(t0).Seconds())
	for _, a := range []string{tcploadArchive, imgs.HAProxyArchive, imgs.InitArchive} {
		require.NoError(t, p.LoadImageArchive(ctx, a))
	}
	cs, err := kubernetes.NewForConfig(p.KubernetesRestConfig())
	require.NoError(t, err)

	ns := "sidecar-proof"
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, 60*time.Second, "default service account", func() bool {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	e := &Emulated{HAProxyImage: imgs.HAProxyRef, InitImage: imgs.InitRef, ServerPort: 50012, Proxy: imgs.Proxy}
	sec, err := e.Secret(ns)
	require.NoError(t, err)
	cm, err := e.ConfigMap(ns)
	require.NoError(t, err)
	_, err = cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)

	const nconns, window = 20, 8 * time.Second
	srv := proofPod(ns, "server", "server", "--listen", "0.0.0.0:50012", "--json", "-")
	require.NoError(t, e.Inject(&srv.Spec, provider.ServerSide))
	_, err = cs.CoreV1().Pods(ns).Create(ctx, srv, metav1.CreateOptions{})
	require.NoError(t, err)
	sp := waitPodPhase(ctx, t, cs, ns, "server", 120*time.Second, corev1.PodRunning)

	cli := proofPod(ns, "client", "client", "--connect", sp.Status.PodIP+":50012", "--conns", strconv.Itoa(nconns),
		"--duration", window.String(), "--warmup", "1s", "--setup-timeout", "60s", "--quiet", "--json", "-")
	// The client pod's init container uses the legacy backend (NET_ADMIN and NET_RAW), the
	// server pod's the default nft one (NET_ADMIN only): both are proven in one run.
	e.Legacy = true
	require.NoError(t, e.Inject(&cli.Spec, provider.ClientSide))
	e.Legacy = false
	_, err = cs.CoreV1().Pods(ns).Create(ctx, cli, metav1.CreateOptions{})
	require.NoError(t, err)

	// The proxies, from the host: processes named haproxy in each node's cgroups.
	nodes := map[string]string{}
	for _, n := range st.Nodes {
		nodes[n.Role] = n.Name
	}
	var clientPID, serverPID int
	waitFor(t, 120*time.Second, "both proxies running", func() bool {
		clientPID, serverPID = haproxyPID(nodes["client"]), haproxyPID(nodes["server"])
		return clientPID > 0 && serverPID > 0
	})
	// The rules the init container applied, read back inside each pod's network namespace.
	for side, pid := range map[string]int{provider.ClientSide: clientPID, provider.ServerSide: serverPID} {
		save := "iptables-nft-save"
		if side == provider.ClientSide {
			save = "iptables-legacy-save"
		}
		out, err := exec.CommandContext(ctx, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid), save, "-t", "nat").CombinedOutput()
		require.NoError(t, err, "%s", out)
		rules, err := Rules(50012)
		require.NoError(t, err)
		assert.Equal(t, ruleLines(rules), ruleLines(string(out)), "%s pod: the istio-iptables rules", side)
	}
	// Once the client-side proxy burns CPU the session's data flows: measure both proxies over a
	// 4 s window inside the client's 8 s window.
	start, err := usage.ReadProc(clientPID)
	require.NoError(t, err)
	waitFor(t, 60*time.Second, "traffic through the client-side proxy", func() bool {
		now, err := usage.ReadProc(clientPID)
		return err == nil && now.Total()-start.Total() >= 0.05
	})
	const measure = 4 * time.Second
	ca, err := usage.ReadProc(clientPID)
	require.NoError(t, err)
	sa, err := usage.ReadProc(serverPID)
	require.NoError(t, err)
	t1 := time.Now()
	time.Sleep(measure)
	cb, err := usage.ReadProc(clientPID)
	require.NoError(t, err)
	sb, err := usage.ReadProc(serverPID)
	require.NoError(t, err)
	secs := time.Since(t1).Seconds()
	clientCores := (cb.Total() - ca.Total()) / secs
	serverCores := (sb.Total() - sa.Total()) / secs
	waitPodPhase(ctx, t, cs, ns, "client", 120*time.Second, corev1.PodSucceeded)
	waitPodPhase(ctx, t, cs, ns, "server", 60*time.Second, corev1.PodSucceeded)
	client := podRecord(ctx, t, cs, ns, "client")
	server := podRecord(ctx, t, cs, ns, "server")
	clientConns := carried(t, logs(ctx, cs, ns, "client", ProxyContainer), "outbound_capture")
	serverConns := carried(t, logs(ctx, cs, ns, "server", ProxyContainer), "inbound_capture")

	out := fmt.Sprintf("through the emulated sidecars (%s): client %.0f Mbps, server %.0f Mbps, %d conns, setup %.2fs, bytes server %d / client %d; "+
		"client %.2f cores, server %.2f cores; proxies over %.1fs: client-side %.2f cores, server-side %.2f cores; "+
		"client-side proxy: %d connections, %d bytes to the app; server-side proxy: %d mTLS connections, %d bytes from the app",
		imgs.Proxy, client.Mbps, server.Mbps, client.Conns, client.SetupSeconds, server.TotalBytes, client.TotalBytes,
		client.CPU.Cores, server.CPU.Cores, secs, clientCores, serverCores,
		clientConns.n, clientConns.down, serverConns.n, serverConns.down)
	t.Log(out)
	fmt.Println("sidecar on nskube:", out)

	require.Empty(t, client.Error)
	require.Empty(t, server.Error)
	assert.Greater(t, client.Mbps, 0.0)
	assert.Equal(t, server.TotalBytes, client.TotalBytes, "every byte written was read")
	assert.Positive(t, client.TotalBytes)
	// The proxies carried the session: every connection went through both (the server side's
	// through its mTLS listener), with every byte the app moved — plus the few bytes of the
	// server's per-connection acknowledgements — and they used CPU.
	for side, c := range map[string]conns{provider.ClientSide: clientConns, provider.ServerSide: serverConns} {
		assert.Equal(t, nconns, c.n, "%s proxy connections", side)
		assert.GreaterOrEqual(t, c.down, client.TotalBytes, "%s proxy bytes", side)
		assert.LessOrEqual(t, c.down, client.TotalBytes+uint64(nconns)*4096, "%s proxy bytes", side)
	}
	assert.Greater(t, clientCores, 0.01, "client-side proxy CPU")
	assert.Greater(t, serverCores, 0.01, "server-side proxy CPU")
}

func proofPod(ns, name, role string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr(int64(1)),
			NodeSelector:                  map[string]string{nskube.RoleLabel: role},
			Containers: []corev1.Container{{
				Name: "tcpload", Image: image.TCPLoadRef, ImagePullPolicy: corev1.PullIfNotPresent,
				Args: append([]string{role}, args...),
			}},
		},
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitPodPhase(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns, name string, d time.Duration, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var err error
		if p, err = cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			if p.Status.Phase == phase {
				return p
			}
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("pod %s failed: %+v\n%s", name, p.Status, logs(ctx, cs, ns, name, ""))
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	var status any
	if p != nil {
		status = p.Status
	}
	t.Fatalf("pod %s not %s after %s: %+v\nproxy: %s\ninit: %s", name, phase, d, status, logs(ctx, cs, ns, name, ProxyContainer), logs(ctx, cs, ns, name, InitContainer))
	return nil
}

func logs(ctx context.Context, cs *kubernetes.Clientset, ns, name, container string) string {
	rc, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: container}).Stream(ctx)
	if err != nil {
		return "logs: " + err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// podRecord reads the tcpload record (indented JSON on stdout, "{" to "}") from the pod's log.
func podRecord(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns, name string) result.Record {
	t.Helper()
	log := logs(ctx, cs, ns, name, "tcpload")
	var js []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case !in && l == "{":
			in = true
			js = append(js, l)
		case in && l == "}":
			js = append(js, l)
			in = false
		case in && strings.HasPrefix(l, " "):
			js = append(js, l)
		}
	}
	var r result.Record
	require.NoError(t, json.Unmarshal([]byte(strings.Join(js, "\n")), &r), "record of %s:\n%s", name, log)
	return r
}

// haproxyPID finds the process named haproxy in the cgroups of node.
func haproxyPID(node string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "haproxy" {
			continue
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err == nil && strings.Contains(string(cg), "/"+node+"/") {
			return pid
		}
	}
	return 0
}

// conns sums a proxy's logged connections through one frontend.
type conns struct {
	n    int
	down uint64
}

// carried sums the connections a proxy's log shows through frontend, each closed normally.
func carried(t *testing.T, log, frontend string) conns {
	t.Helper()
	cl, err := ParseConnLog(log)
	require.NoError(t, err)
	var c conns
	for _, l := range cl {
		if l.Frontend != frontend {
			continue
		}
		assert.Equal(t, "--", l.Term, "connection to %s closed normally", l.Dst)
		c.n++
		c.down += uint64(l.BytesDown)
	}
	return c
}
