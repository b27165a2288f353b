//go:build smoke

package smoke

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/pathcost/pathcost/pkg/provider/kube"
	"github.com/pathcost/pathcost/pkg/result"
)

const (
	roleLabel  = kube.RoleLabel
	serverPort = kube.DefaultPort
)

func clientset(t *testing.T, c *envconf.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Client().RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// tcploadPod is a pod running tcpload ARGS on a node with tcprole=role.
func tcploadPod(ns, name, role string, labels map[string]string, restart corev1.RestartPolicy, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: ptr(int64(1)),
			Affinity:                      kube.RoleAffinity(role),
			Containers: []corev1.Container{{
				Name: "tcpload", Image: *imageFlag, ImagePullPolicy: corev1.PullIfNotPresent, Args: args,
				Ports: []corev1.ContainerPort{{ContainerPort: serverPort}},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// waitPod waits until ok(pod) or the pod fails.
func waitPod(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns, name string, d time.Duration, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(d)
	var p *corev1.Pod
	for time.Now().Before(deadline) {
		var err error
		p, err = cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if ok(p) {
				return p
			}
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("pod %s failed: %s\n%s", name, p.Status.Message, podLogs(ctx, cs, ns, name, false))
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if p == nil {
		t.Fatalf("pod %s not %s after %s: never read", name, what, d)
	}
	t.Fatalf("pod %s not %s after %s: %+v", name, what, d, p.Status)
	return nil
}

func running(p *corev1.Pod) bool   { return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" }
func succeeded(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }

func podLogs(ctx context.Context, cs *kubernetes.Clientset, ns, name string, previous bool) string {
	b, err := kube.PodLogs(ctx, cs, ns, name, kube.Container, previous)
	if err != nil {
		return string(b) + "\nlogs: " + err.Error()
	}
	return string(b)
}

// record finds the JSON result record in a pod's log, where stdout (the record of --json -) and
// stderr are interleaved line by line (kube.SplitRecord).
func record(t *testing.T, log string) result.Record {
	t.Helper()
	js, _ := kube.SplitRecord([]byte(log))
	if len(js) == 0 {
		t.Fatalf("no JSON record in the log:\n%s", log)
	}
	r, err := result.Decode(js)
	if err != nil {
		t.Fatalf("record: %v\n%s", err, log)
	}
	return *r
}

func serverArgs(label string) []string {
	return []string{"server", "--listen", fmt.Sprintf("0.0.0.0:%d", serverPort), "--json", "-", "--label", label}
}

func clientArgs(target, label string) []string {
	return []string{"client", "--connect", target, "--conns", "4", "--duration", durationFlag.String(),
		"--warmup", "1s", "--setup-timeout", "60s", "--quiet", "--json", "-", "--label", label}
}

// runPair runs a tcpload server pod on the server node and a client pod on the client node that
// connects to target(serverPod), and returns both records.
func runPair(ctx context.Context, t *testing.T, c *envconf.Config, name string, target func(*corev1.Pod) string, setup func(*corev1.Pod)) (server, client result.Record, sp, cp *corev1.Pod) {
	cs := clientset(t, c)
	ns := c.Namespace()
	srv := tcploadPod(ns, name+"-server", "server", map[string]string{"app": name + "-server"}, corev1.RestartPolicyNever, serverArgs(name)...)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, srv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Pods(ns).Delete(context.Background(), srv.Name, metav1.DeleteOptions{}) })
	sp = waitPod(ctx, t, cs, ns, srv.Name, 90*time.Second, "running", running)
	if setup != nil {
		setup(sp)
	}
	cli := tcploadPod(ns, name+"-client", "client", nil, corev1.RestartPolicyNever, clientArgs(target(sp), name)...)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, cli, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Pods(ns).Delete(context.Background(), cli.Name, metav1.DeleteOptions{}) })
	wait := 90*time.Second + 2**durationFlag
	cp = waitPod(ctx, t, cs, ns, cli.Name, wait, "succeeded", succeeded)
	sp = waitPod(ctx, t, cs, ns, srv.Name, 30*time.Second, "succeeded", succeeded)
	client = record(t, podLogs(ctx, cs, ns, cli.Name, false))
	server = record(t, podLogs(ctx, cs, ns, srv.Name, false))
	return server, client, sp, cp
}

// checkTransfer asserts real figures: both sides moved data at a positive rate and every byte the
// sender wrote was read.
func checkTransfer(t *testing.T, what string, server, client result.Record) {
	t.Helper()
	t.Logf("%s: client %.0f Mbps (%d bytes in %.1fs, %d conns), server %.0f Mbps; total bytes server %d / client %d; node busy %.2f of %d cores; client %.2f cores, server %.2f cores",
		what, client.Mbps, client.Bytes, client.Seconds, client.Conns, server.Mbps, server.TotalBytes, client.TotalBytes,
		client.Node.BusyCores, client.Node.NumCPU, client.CPU.Cores, server.CPU.Cores)
	fmt.Printf("smoke: %s: %.0f Mbps (client), %.0f Mbps (server), %d bytes conserved, client %.2f cores, server %.2f cores, node busy %.2f cores\n",
		what, client.Mbps, server.Mbps, client.TotalBytes, client.CPU.Cores, server.CPU.Cores, client.Node.BusyCores)
	if client.Error != "" || server.Error != "" {
		t.Fatalf("%s: errors: client %q server %q", what, client.Error, server.Error)
	}
	if client.Mbps <= 0 || server.Mbps <= 0 || client.Bytes == 0 {
		t.Errorf("%s: no throughput: client %.1f Mbps, server %.1f Mbps", what, client.Mbps, server.Mbps)
	}
	if client.CPU.Cores <= 0 || server.CPU.Cores <= 0 {
		t.Errorf("%s: per-process CPU not measured: client %.3f cores, server %.3f cores", what, client.CPU.Cores, server.CPU.Cores)
	}
	if client.TotalBytes == 0 || client.TotalBytes != server.TotalBytes {
		t.Errorf("%s: bytes not conserved: server wrote %d, client read %d", what, server.TotalBytes, client.TotalBytes)
	}
}

func nodeRoles(ctx context.Context, t *testing.T, cs *kubernetes.Clientset) (byName map[string]string, ipByName map[string]string) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName, ipByName = map[string]string{}, map[string]string{}
	for _, n := range nodes.Items {
		byName[n.Name] = n.Labels[roleLabel]
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ipByName[n.Name] = a.Address
			}
		}
	}
	return byName, ipByName
}

// TestPodToPod: a tcpload server pod pinned to the server node and a client pod pinned to the
// client node (nodeAffinity on tcprole), traffic across nodes, both records from the pod logs.
func TestPodToPod(t *testing.T) {
	f := features.New("pod-to-pod across nodes").
		Assess("pods are pinned by nodeAffinity and move data", func(ctx context.Context, t *testing.T, c *envconf.Config) context.Context {
			roles, _ := nodeRoles(ctx, t, clientset(t, c))
			server, client, sp, cp := runPair(ctx, t, c, "p2p", func(p *corev1.Pod) string {
				return fmt.Sprintf("%s:%d", p.Status.PodIP, serverPort)
			}, nil)
			if roles[sp.Spec.NodeName] != "server" || roles[cp.Spec.NodeName] != "client" || sp.Spec.NodeName == cp.Spec.NodeName {
				t.Fatalf("placement: server on %s (%s), client on %s (%s)", sp.Spec.NodeName, roles[sp.Spec.NodeName], cp.Spec.NodeName, roles[cp.Spec.NodeName])
			}
			t.Logf("server pod %s on %s, client pod %s on %s", sp.Status.PodIP, sp.Spec.NodeName, cp.Status.PodIP, cp.Spec.NodeName)
			checkTransfer(t, "pod-to-pod", server, client)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// TestNodePort: a NodePort Service in front of the server pod, reached by the client pod through
// a node that does not host the server pod (the client's own node, or the forward node with 3).
func TestNodePort(t *testing.T) {
	f := features.New("NodePort through the other node").
		Assess("client reaches the server pod via another node's NodePort", func(ctx context.Context, t *testing.T, c *envconf.Config) context.Context {
			cs := clientset(t, c)
			ns := c.Namespace()
			roles, ips := nodeRoles(ctx, t, cs)
			via := ""
			for name, role := range roles {
				if role == "forward" || (role == "client" && via == "") {
					via = name
				}
			}
			var svc *corev1.Service
			server, client, sp, _ := runPair(ctx, t, c, "np", func(p *corev1.Pod) string {
				return fmt.Sprintf("%s:%d", ips[via], svc.Spec.Ports[0].NodePort)
			}, func(p *corev1.Pod) {
				s := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: "np-server", Namespace: ns},
					Spec: corev1.ServiceSpec{
						Type:     corev1.ServiceTypeNodePort,
						Selector: map[string]string{"app": "np-server"},
						Ports:    []corev1.ServicePort{{Port: serverPort, TargetPort: intstr.FromInt32(serverPort), Protocol: corev1.ProtocolTCP}},
					},
				}
				var err error
				if svc, err = cs.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cs.CoreV1().Services(ns).Delete(context.Background(), s.Name, metav1.DeleteOptions{}) })
				t.Logf("NodePort %d; server pod on %s, reached via %s (%s)", svc.Spec.Ports[0].NodePort, p.Spec.NodeName, via, ips[via])
			})
			if sp.Spec.NodeName == via {
				t.Fatalf("the NodePort was reached through the server pod's own node %s", via)
			}
			checkTransfer(t, "nodeport", server, client)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// TestDaemonSetNodeCPU: a DaemonSet runs `tcpload sample` on every node; each record has the
// node's CPU (busy cores > 0).
func TestDaemonSetNodeCPU(t *testing.T) {
	f := features.New("DaemonSet reading node CPU").
		Assess("every node reports its CPU", func(ctx context.Context, t *testing.T, c *envconf.Config) context.Context {
			cs := clientset(t, c)
			ns := c.Namespace()
			labels := map[string]string{"app": "node-sample"}
			ds := &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: "node-sample", Namespace: ns},
				Spec: appsv1.DaemonSetSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							TerminationGracePeriodSeconds: ptr(int64(1)),
							Containers: []corev1.Container{{
								Name: kube.Container, Image: *imageFlag, ImagePullPolicy: corev1.PullIfNotPresent,
								// One window, then exit 0: a DaemonSet restarts it, so the record is read from the
								// terminated container's log (or the previous one's, after a restart).
								Command: []string{"/usr/local/bin/tcpload"},
								Args:    []string{"sample", "--duration", "2s", "--json", "-", "--label", "daemonset"},
							}},
						},
					},
				},
			}
			if _, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cs.AppsV1().DaemonSets(ns).Delete(context.Background(), ds.Name, metav1.DeleteOptions{}) })
			nodes, _ := nodeRoles(ctx, t, cs)
			deadline := time.Now().Add(120 * time.Second)
			got := map[string]result.Record{}
			for len(got) < len(nodes) && time.Now().Before(deadline) {
				pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=node-sample"})
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range pods.Items {
					if _, ok := got[p.Spec.NodeName]; ok || len(p.Status.ContainerStatuses) == 0 {
						continue
					}
					st := p.Status.ContainerStatuses[0]
					var log string
					switch {
					case st.State.Terminated != nil && st.State.Terminated.ExitCode == 0:
						log = podLogs(ctx, cs, ns, p.Name, false)
					case st.RestartCount > 0 && st.LastTerminationState.Terminated != nil && st.LastTerminationState.Terminated.ExitCode == 0:
						log = podLogs(ctx, cs, ns, p.Name, true)
					default:
						continue
					}
					got[p.Spec.NodeName] = record(t, log)
				}
				time.Sleep(500 * time.Millisecond)
			}
			if len(got) != len(nodes) {
				t.Fatalf("records from %d of %d nodes", len(got), len(nodes))
			}
			for node, r := range got {
				t.Logf("node %s: busy %.2f of %d cores (user %.2f sys %.2f softirq %.2f steal %.2f)", node, r.Node.BusyCores, r.Node.NumCPU, r.Node.UserCores, r.Node.SysCores, r.Node.SoftirqCores, r.Node.StealCores)
				fmt.Printf("smoke: daemonset on %s: node busy %.2f of %d cores\n", node, r.Node.BusyCores, r.Node.NumCPU)
				if r.Node.BusyCores <= 0 || r.Node.NumCPU <= 0 {
					t.Errorf("node %s: no CPU figure: %+v", node, r.Node)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
