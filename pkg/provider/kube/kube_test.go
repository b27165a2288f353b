package kube

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/sidecar"
	"github.com/pathcost/pathcost/pkg/topo"
)

func node(name, ip, role string, ready bool, taints ...corev1.Taint) corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n := corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
			NodeInfo:   corev1.NodeSystemInfo{KernelVersion: "6.1.0", OSImage: "Debian 12", KubeletVersion: "v1.34.4"},
			Capacity:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")},
		},
	}
	if role != "" {
		n.Labels[RoleLabel] = role
	}
	return n
}

func TestPlace(t *testing.T) {
	noSched := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name                    string
		nodes                   []corev1.Node
		want                    int
		client, server, forward string
		skip                    string // substring of the skip reason
	}{
		{name: "labels", want: 3, nodes: []corev1.Node{node("a", "10.0.0.1", "server", true), node("b", "10.0.0.2", "client", true), node("c", "10.0.0.3", "forward", true)},
			client: "b", server: "a", forward: "c"},
		{name: "labels, two nodes for a pod scenario", want: 2, nodes: []corev1.Node{node("a", "10.0.0.1", "server", true), node("b", "10.0.0.2", "client", true)},
			client: "b", server: "a"},
		{name: "labels without forward for nodeport", want: 3, nodes: []corev1.Node{node("a", "10.0.0.1", "server", true), node("b", "10.0.0.2", "client", true), node("c", "10.0.0.3", "", true)},
			skip: "none for forward"},
		{name: "no labels: name order, tainted and NotReady left out", want: 2,
			nodes:  []corev1.Node{node("m", "10.0.0.9", "", true, noSched), node("z", "10.0.0.3", "", true), node("x", "10.0.0.2", "", false), node("k", "10.0.0.1", "", true)},
			client: "k", server: "z"},
		{name: "no labels, three", want: 3, nodes: []corev1.Node{node("n1", "1", "", true), node("n2", "2", "", true), node("n3", "3", "", true)},
			client: "n1", forward: "n2", server: "n3"},
		{name: "too few", want: 3, nodes: []corev1.Node{node("n1", "1", "", true), node("n2", "2", "", true), node("cp", "3", "", true, noSched)},
			skip: "needs 3 Ready, schedulable nodes, the cluster has 2: n1, n2; not usable: cp (taint node-role.kubernetes.io/control-plane:NoSchedule)"},
		{name: "none", want: 2, skip: "the cluster has 0: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Place(tt.nodes, tt.want)
			if tt.skip != "" {
				require.Error(t, err)
				assert.True(t, provider.IsSkip(err), "a Skip: %v", err)
				assert.Contains(t, err.Error(), tt.skip)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.client, p.Client.Name)
			assert.Equal(t, tt.server, p.Server.Name)
			assert.Equal(t, tt.forward, p.Forward.Name)
			assert.NotEqual(t, p.Client.Name, p.Server.Name)
		})
	}
}

func TestTransientlyUnusable(t *testing.T) {
	notReady := corev1.Taint{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}
	assert.True(t, transientlyUnusable([]corev1.Node{node("a", "1", "", true, notReady)}))
	assert.True(t, transientlyUnusable([]corev1.Node{node("a", "1", "", false)}))
	assert.False(t, transientlyUnusable([]corev1.Node{node("a", "1", "", true, corev1.Taint{Key: "gpu", Effect: corev1.TaintEffectNoSchedule})}))
}

func TestSplitRecord(t *testing.T) {
	log := "server: listening on 0.0.0.0:50012\n{\n  \"schema\": \"pathcost/result/v1\",\n[client] 1.0-2.0 s 100 Mbps\n  \"mbps\": 1.5\n}\nserver: done\n"
	rec, rest := SplitRecord([]byte(log))
	assert.Equal(t, "{\n  \"schema\": \"pathcost/result/v1\",\n  \"mbps\": 1.5\n}\n", string(rec))
	assert.Equal(t, "server: listening on 0.0.0.0:50012\n[client] 1.0-2.0 s 100 Mbps\nserver: done\n", string(rest))

	rec, rest = SplitRecord([]byte("error: connect 1.2.3.4:5: refused\n"))
	assert.Empty(t, rec)
	assert.Equal(t, "error: connect 1.2.3.4:5: refused\n", string(rest))

	rec, rest = SplitRecord([]byte("{\n  \"a\": 1,\n")) // cut off: not a record
	assert.Empty(t, rec)
	assert.Contains(t, string(rest), `"a": 1`)
}

func TestOwner(t *testing.T) {
	me, err := Self()
	require.NoError(t, err)
	o, err := ParseOwner(me.String())
	require.NoError(t, err)
	assert.Equal(t, me, o)
	assert.LessOrEqual(t, len(me.String()), 63, "fits a label value")
	assert.False(t, me.Gone(me), "this process is alive")
	assert.True(t, Owner{Host: me.Host, PID: me.PID, Start: me.Start + 1}.Gone(me), "same pid, other start time: a reused pid")
	assert.False(t, Owner{Host: "elsewhere", PID: 1, Start: 1}.Gone(me), "other hosts are never gone")
	for _, bad := range []string{"", "host", "host.x.1", "host.1.x", ".1.2"} {
		_, err := ParseOwner(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "a-b-c", labelHost("a.b.c"))
	assert.Len(t, labelHost(strings.Repeat("x", 80)), 30)
}

func TestNamespaceName(t *testing.T) {
	n := NamespaceName("gr+istio")
	assert.Regexp(t, `^pathcost-gr-istio-[0-9a-f]{6}$`, n)
	assert.NotEqual(t, n, NamespaceName("gr+istio"))
}

func TestParseFlags(t *testing.T) {
	kv, err := ParseKV("tke.cloud.tencent.com/networks=tke-route-eni, a=b")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"tke.cloud.tencent.com/networks": "tke-route-eni", "a": "b"}, kv)
	_, err = ParseKV("novalue")
	assert.ErrorContains(t, err, "KEY=VALUE")
	r, err := ParseResources("tke.cloud.tencent.com/eni-ip=1")
	require.NoError(t, err)
	q := r["tke.cloud.tencent.com/eni-ip"]
	assert.Equal(t, "1", q.String())
	_, err = ParseResources("cpu=lots")
	assert.ErrorContains(t, err, "cpu")
	none, err := ParseResources("")
	assert.NoError(t, err)
	assert.Nil(t, none)
}

func TestPod(t *testing.T) {
	p := Pod(PodOptions{Namespace: "ns", Name: "server-1", Node: "n3", Role: "server", Image: "img", PullPolicy: corev1.PullIfNotPresent,
		Args: []string{"server"}, Port: 50012, Annotations: map[string]string{"a": "b"},
		Resources: corev1.ResourceList{"tke.cloud.tencent.com/eni-ip": resource.MustParse("1")}, ShareProcessNamespace: true})
	assert.Equal(t, corev1.RestartPolicyNever, p.Spec.RestartPolicy)
	assert.Equal(t, "server", p.Labels[RolePodLabel])
	assert.Equal(t, ManagedBy, p.Labels[ManagedByLabel])
	assert.Equal(t, "b", p.Annotations["a"])
	assert.True(t, *p.Spec.ShareProcessNamespace)
	assert.False(t, p.Spec.HostNetwork)
	req := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0]
	assert.Equal(t, "metadata.name", req.Key)
	assert.Equal(t, []string{"n3"}, req.Values)
	c := p.Spec.Containers[0]
	assert.Equal(t, Container, c.Name)
	assert.Equal(t, int32(50012), c.Ports[0].ContainerPort)
	assert.Equal(t, "1", c.Resources.Limits.Name("tke.cloud.tencent.com/eni-ip", resource.DecimalSI).String())

	h := Pod(PodOptions{Namespace: "ns", Name: "client-2", Node: "n1", Role: "client", HostNetwork: true})
	assert.True(t, h.Spec.HostNetwork)
	assert.Equal(t, corev1.DNSClusterFirstWithHostNet, h.Spec.DNSPolicy)
	assert.Nil(t, h.Spec.ShareProcessNamespace)
}

func TestPodProblem(t *testing.T) {
	waiting := func(reason, msg string) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: Container, Image: "reg/tcpload:x", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}}
	}
	assert.Contains(t, podProblem(waiting("ImagePullBackOff", "Back-off pulling image"), 0, time.Second), "image reg/tcpload:x cannot be pulled on node n1: ImagePullBackOff")
	assert.Contains(t, podProblem(waiting("ErrImageNeverPull", "not present"), 0, time.Second), "cannot be pulled")
	assert.Contains(t, podProblem(waiting("CreateContainerConfigError", "secret missing"), 0, time.Second), "cannot start")
	assert.Empty(t, podProblem(waiting("ContainerCreating", ""), 0, time.Second))
	unsched := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/2 nodes are available: Insufficient tke.cloud.tencent.com/eni-ip"}}}}
	assert.Empty(t, podProblem(unsched, time.Second, 20*time.Second), "patience")
	assert.Contains(t, podProblem(unsched, 30*time.Second, 20*time.Second), "Insufficient tke.cloud.tencent.com/eni-ip")
}

func TestFacts(t *testing.T) {
	cs := fake.NewClientset(
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "tke-eni-agent", Namespace: "kube-system"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"},
			Data: map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"ipvs\"\n"}},
		&admv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"},
			Webhooks: []admv1.MutatingWebhook{{Name: "namespace.sidecar-injector.istio.io"}}},
	)
	f, err := Discover(context.Background(), cs)
	require.NoError(t, err)
	assert.Equal(t, []string{"kube-proxy", "tke-eni-agent"}, f.DaemonSets)
	assert.Equal(t, "ipvs", f.ProxyMode)
	assert.Equal(t, "vpccni", f.CNI)
	assert.True(t, f.Istio)
	assert.Empty(t, f.Mismatch(topo.VPCCNI))
	assert.Contains(t, f.Mismatch(topo.GR), "WARNING: scenario gr asks for the gr pod network, but the cluster runs vpccni (DaemonSet kube-system/tke-eni-agent (TKE VPC-CNI))")
	assert.Empty(t, f.Mismatch(topo.NodePort))
	pl := Placement{Client: nodeOf(ptr(node("a", "10.0.0.1", "", true))), Server: nodeOf(ptr(node("b", "10.0.0.2", "", true)))}
	notes := strings.Join(f.Notes(topo.GR, pl), "\n")
	for _, want := range []string{"node a: kernel 6.1.0, Debian 12", "kube-proxy mode: ipvs", "WARNING", "8 CPUs"} {
		assert.Contains(t, notes, want)
	}
	assert.Equal(t, "iptables (default)", proxyMode("kind: KubeProxyConfiguration\nmode: \"\"\n"))
}

// fakeCluster is a fake clientset with two (or three) labelled nodes where every access review is
// allowed and every namespace has its default ServiceAccount.
func fakeCluster(t *testing.T, nodes int, allow func(*authv1.ResourceAttributes) bool, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	roles := []string{"client", "server"}
	if nodes == 3 {
		roles = []string{"client", "forward", "server"}
	}
	for i, r := range roles {
		n := node("node"+string(rune('1'+i)), "10.0.0."+string(rune('1'+i)), r, true)
		objs = append(objs, &n)
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = allow == nil || allow(r.Spec.ResourceAttributes)
		return true, r, nil
	})
	cs.PrependReactor("get", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: a.GetNamespace()}}, nil
	})
	return cs
}

func fakeKube(t *testing.T, cs *fake.Clientset, o Options) *Kube {
	t.Helper()
	if o.Name == "" {
		o.Name = "kubeconfig"
	}
	o.Out = &strings.Builder{}
	k, err := NewWithClient(cs, nil, o)
	require.NoError(t, err)
	return k
}

func TestUpDownNamespaces(t *testing.T) {
	ctx := context.Background()
	cs := fakeCluster(t, 3, nil)
	k := fakeKube(t, cs, Options{})
	p, err := k.Up(ctx, topo.NodePort)
	require.NoError(t, err)
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, nss.Items, 1)
	ns := nss.Items[0]
	assert.Regexp(t, `^pathcost-nodeport-[0-9a-f]{6}$`, ns.Name)
	assert.Equal(t, ManagedBy, ns.Labels[ManagedByLabel])
	assert.Equal(t, k.Owner().String(), ns.Labels[OwnerLabel])
	svc, err := cs.CoreV1().Services(ns.Name).Get(ctx, NodePortService, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(32000), svc.Spec.Ports[0].NodePort)
	assert.Equal(t, corev1.ServiceExternalTrafficPolicyCluster, svc.Spec.ExternalTrafficPolicy)
	assert.Equal(t, "10.0.0.2:32000", p.Target(), "node B's InternalIP")
	assert.Equal(t, "sampler@node2", p.Forwarder().Name())
	assert.False(t, p.SharedKernel())
	left, err := k.Leftovers(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"namespace " + ns.Name}, left)

	// the NodePort is now taken: a second nodeport run names the Service holding it
	err = k.Check(ctx, topo.NodePort)
	assert.ErrorContains(t, err, "NodePort 32000 is taken by Service "+ns.Name+"/"+NodePortService)

	require.NoError(t, p.Down(ctx))
	require.NoError(t, p.Down(ctx), "Down twice")
	left, err = k.Leftovers(ctx)
	require.NoError(t, err)
	assert.Empty(t, left)

	base, err := k.Up(ctx, topo.Plain)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.3:50012", base.Target(), "the server node's InternalIP")
	assert.Nil(t, base.Forwarder())
	assert.Contains(t, strings.Join(base.Notes(), "\n"), "hostNetwork pods on the same two nodes")
	require.NoError(t, k.Close(ctx), "Close takes down what is still up")
	left, err = k.Leftovers(ctx)
	require.NoError(t, err)
	assert.Empty(t, left)
}

func TestKeepAndSweep(t *testing.T) {
	ctx := context.Background()
	cs := fakeCluster(t, 2, nil)
	k := fakeKube(t, cs, Options{Keep: true})
	p, err := k.Up(ctx, topo.GR)
	require.NoError(t, err)
	require.NoError(t, p.Down(ctx))
	assert.Contains(t, k.opts.Out.(*strings.Builder).String(), "kubectl delete namespace pathcost-gr-")
	all, err := ownedNamespaces(ctx, cs, Owner{})
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "true", all[0].Labels[KeepLabel])

	// a namespace of a gone process on this host is swept; kept ones and other hosts' are not
	me := k.Owner()
	gone := Owner{Host: me.Host, PID: me.PID, Start: me.Start + 7}
	other := Owner{Host: "other-host", PID: 1, Start: 1}
	for _, o := range []Owner{gone, other} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, namespace(NamespaceName("gr"), "gr", o, nil), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, k.Sweep(ctx))
	all, err = ownedNamespaces(ctx, cs, Owner{})
	require.NoError(t, err)
	var owners []string
	for _, ns := range all {
		owners = append(owners, ns.Labels[OwnerLabel])
	}
	assert.ElementsMatch(t, []string{me.String(), other.String()}, owners)
}

func TestUpFailureRemovesNamespace(t *testing.T) {
	ctx := context.Background()
	cs := fakeCluster(t, 3, nil)
	cs.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, assert.AnError
	})
	k := fakeKube(t, cs, Options{})
	_, err := k.Up(ctx, topo.NodePort)
	require.ErrorContains(t, err, "create NodePort Service")
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, nss.Items, "the namespace of a failed Up is removed")
}

func TestRBACDenied(t *testing.T) {
	cs := fakeCluster(t, 2, func(ra *authv1.ResourceAttributes) bool { return ra.Resource != "namespaces" || ra.Verb != "create" })
	k := fakeKube(t, cs, Options{})
	err := k.Check(context.Background(), topo.GR)
	require.Error(t, err)
	assert.False(t, provider.IsSkip(err))
	assert.Contains(t, err.Error(), `verb "create" on resource "namespaces"`)
}

func TestTooFewNodesSkips(t *testing.T) {
	k := fakeKube(t, fakeCluster(t, 2, nil), Options{})
	err := k.Check(context.Background(), topo.NodePort)
	require.Error(t, err)
	assert.True(t, provider.IsSkip(err))
	assert.Contains(t, err.Error(), "none for forward")
}

func TestIstioWithoutIstioOrEmulatorSkips(t *testing.T) {
	k := fakeKube(t, fakeCluster(t, 2, nil), Options{})
	err := k.Check(context.Background(), topo.GRIstio)
	assert.True(t, provider.IsSkip(err), "%v", err)
}

func TestLoadKubeconfigErrors(t *testing.T) {
	_, err := LoadKubeconfig("")
	assert.True(t, IsConfigError(err))
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err = OpenKubeconfig(context.Background(), missing, Options{})
	require.Error(t, err)
	assert.True(t, IsConfigError(err))
	assert.Contains(t, err.Error(), missing)
	garbage := filepath.Join(t.TempDir(), "garbage.yaml")
	require.NoError(t, os.WriteFile(garbage, []byte("{{{ not yaml"), 0o644))
	_, err = OpenKubeconfig(context.Background(), garbage, Options{})
	assert.True(t, IsConfigError(err))
	assert.Contains(t, err.Error(), garbage)
	if os.Geteuid() != 0 { // root reads any file
		unreadable := filepath.Join(t.TempDir(), "unreadable.yaml")
		require.NoError(t, os.WriteFile(unreadable, []byte("apiVersion: v1\n"), 0o000))
		_, err = OpenKubeconfig(context.Background(), unreadable, Options{})
		assert.True(t, IsConfigError(err))
	}
}

// closedPortKubeconfig writes a kubeconfig pointing at a 127.0.0.1 port nothing listens on.
func closedPortKubeconfig(t *testing.T) (file, url string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	url = "https://" + addr
	file = filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "`+url+`", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: x}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`), 0o600))
	return file, url
}

func TestAPIServerNotAnswering(t *testing.T) {
	file, url := closedPortKubeconfig(t)
	t0 := time.Now()
	_, err := OpenKubeconfig(context.Background(), file, Options{})
	require.Error(t, err)
	assert.Less(t, time.Since(t0), 30*time.Second)
	assert.Contains(t, err.Error(), url)
	assert.False(t, IsConfigError(err), "a cluster that does not answer is not bad input")
}

func TestKindClusterConfig(t *testing.T) {
	b, err := os.ReadFile("../../../testdata/k8s/kind-config.yaml")
	require.NoError(t, err)
	assert.Equal(t, KindClusterConfig, string(b), "testdata/k8s/kind-config.yaml is a copy of KindClusterConfig")
	var cfg struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Nodes      []struct {
			Role   string            `json:"role"`
			Labels map[string]string `json:"labels"`
		} `json:"nodes"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(KindClusterConfig), &cfg))
	assert.Equal(t, "Cluster", cfg.Kind)
	assert.Equal(t, "kind.x-k8s.io/v1alpha4", cfg.APIVersion)
	var roles []string
	for _, n := range cfg.Nodes {
		if n.Role == "worker" {
			roles = append(roles, n.Labels[RoleLabel])
		}
	}
	assert.Equal(t, []string{"client", "forward", "server"}, roles, "three workers, one per tcprole")
	assert.Equal(t, "control-plane", cfg.Nodes[0].Role)
}

func TestKindSkipsWithoutDocker(t *testing.T) {
	miss := KindMissing()
	if len(miss) == 0 {
		t.Skip("docker and kind are here")
	}
	_, err := OpenKind(context.Background(), KindConfig{})
	require.Error(t, err)
	assert.True(t, provider.IsSkip(err))
	assert.Contains(t, err.Error(), "the kind provider needs")
}

func TestNSKubeChoices(t *testing.T) {
	cni, note := NSKubeCNI([]topo.Spec{topo.Plain, topo.VPCCNI})
	assert.Equal(t, "ptp", cni)
	assert.Empty(t, note)
	cni, note = NSKubeCNI([]topo.Spec{topo.GR, topo.VPCCNI})
	assert.Equal(t, "bridge", cni)
	assert.Contains(t, note, "both gr and vpccni")
	assert.Equal(t, 3, NSKubeNodes([]topo.Spec{topo.GR, topo.NodePort}))
	assert.Equal(t, 2, NSKubeNodes([]topo.Spec{topo.GRIstio}))
}

func TestThresholdFiles(t *testing.T) {
	for _, f := range []string{"nskube.yaml", "vm-8core.yaml"} {
		th, err := result.LoadThresholds(filepath.Join("..", "..", "..", "testdata", "thresholds", f))
		require.NoError(t, err, f)
		assert.Empty(t, th.UnknownScenarios(topo.Names()), f)
	}
}

func TestEmulatedSidecarDrains(t *testing.T) {
	e := &sidecar.Emulated{ServerPort: DefaultPort}
	p := Pod(PodOptions{Namespace: "ns", Name: "server-1", Role: "server", Image: "img"})
	require.NoError(t, e.Inject(&p.Spec, provider.ServerSide))
	drainOnStop(&p.Spec)
	var proxy *corev1.Container
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == sidecar.ProxyContainer {
			proxy = &p.Spec.InitContainers[i]
		}
	}
	require.NotNil(t, proxy)
	require.NotNil(t, proxy.Lifecycle.PreStop.Sleep)
	assert.Equal(t, int64(SidecarDrain), proxy.Lifecycle.PreStop.Sleep.Seconds)
	assert.Greater(t, *p.Spec.TerminationGracePeriodSeconds, int64(SidecarDrain), "the grace period covers the drain")
}
