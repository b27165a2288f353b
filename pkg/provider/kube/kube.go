// Package kube realises pathcost's scenarios on any Kubernetes cluster through client-go: each
// scenario gets a fresh namespace, tcpload runs as one pod per process (its record read back from
// the pod's log), client and server are pinned to two distinct nodes, the baseline is host-network
// pods on the same nodes, NodePort goes through a real Service, and Istio is the cluster's own (or
// an emulated sidecar where the cluster has none).
//
// The one realisation serves three providers: nskube (a cluster brought up on this machine,
// OpenNSKube), kubeconfig (a cluster of yours, OpenKubeconfig) and kind (OpenKind).
package kube

import (
	"context"
	"fmt"
	"github.com/pathcost/pathcost/pkg/interrupt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pathcost/pathcost/pkg/image"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/sidecar"
	"github.com/pathcost/pathcost/pkg/topo"
)

// Defaults.
const (
	// DefaultPort is the port tcpload servers listen on (the seed's).
	DefaultPort = 50012
	// DefaultNodePort is the seed's NodePort.
	DefaultNodePort = 32000
	// APITimeout bounds every API request and the first contact with the API server.
	APITimeout = 30 * time.Second
	// StartTimeout bounds scheduling, image pull and start of a pod.
	StartTimeout = 2 * time.Minute
	// ServerName is the host name the client pods dial on the pod network; each client pod's
	// /etc/hosts maps it to the current server pod (hostAliases).
	ServerName = "pathcost-server"
	// NodePortService is the name of the NodePort Service in a nodeport scenario's namespace.
	NodePortService = "pathcost-nodeport"
)

// Options configure the realisation.
type Options struct {
	// Name is the provider's name (nskube, kubeconfig, kind).
	Name string
	// Image is the tcpload image (default image.TCPLoadRef), pulled with PullPolicy (default
	// IfNotPresent).
	Image      string
	PullPolicy corev1.PullPolicy
	// PodAnnotations and PodResources go on the scenario's pod-network pods (TKE VPC-CNI:
	// tke.cloud.tencent.com/networks=tke-route-eni and tke.cloud.tencent.com/eni-ip=1).
	PodAnnotations map[string]string
	PodResources   corev1.ResourceList
	// Port is the tcpload server's port (default DefaultPort), NodePort the Service's node port
	// (default DefaultNodePort).
	Port, NodePort int32
	// Keep keeps each namespace at Down (labelled pathcost.dev/keep=true, never swept) and prints
	// how to delete it.
	Keep bool
	// SharedKernel is true when every node runs on one kernel (nskube); SharedKernelNote says so.
	SharedKernel     bool
	SharedKernelNote string
	// Sidecar is the emulated Istio sidecar for clusters without Istio, its images in the nodes or
	// a registry they pull from (nil: istio scenarios skip there). Its ServerPort is set to Port.
	Sidecar *sidecar.Emulated
	// Amend corrects what Discover found (nskube knows its CNI and kube-proxy mode directly).
	Amend func(*Facts)
	// Out receives progress and the namespaces kept (default os.Stderr).
	Out io.Writer
}

func (o *Options) defaults() {
	if o.Image == "" {
		o.Image = image.TCPLoadRef
	}
	if o.PullPolicy == "" {
		o.PullPolicy = corev1.PullIfNotPresent
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.NodePort == 0 {
		o.NodePort = DefaultNodePort
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if o.Sidecar != nil {
		o.Sidecar.ServerPort = int(o.Port)
	}
}

// Kube is the realisation of scenarios on one cluster. It implements provider.Provider and
// provider.Sweeper.
type Kube struct {
	opts  Options
	rest  *rest.Config
	cs    kubernetes.Interface
	owner Owner

	mu       sync.Mutex
	facts    *Facts
	factsErr error
	live     map[*path]bool
	closers  []func(context.Context) error
}

var (
	_ provider.Provider = (*Kube)(nil)
	_ provider.Sweeper  = (*Kube)(nil)
	_ provider.Closer   = (*Kube)(nil)
)

// New returns the realisation on the cluster rc points at. It does not contact the cluster.
func New(rc *rest.Config, o Options) (*Kube, error) {
	o.defaults()
	rc = rest.CopyConfig(rc)
	if rc.Timeout == 0 {
		rc.Timeout = APITimeout
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", rc.Host, err)
	}
	return NewWithClient(cs, rc, o)
}

// NewWithClient is New with a given clientset (a fake one in tests).
func NewWithClient(cs kubernetes.Interface, rc *rest.Config, o Options) (*Kube, error) {
	o.defaults()
	me, err := Self()
	if err != nil {
		return nil, err
	}
	return &Kube{opts: o, rest: rc, cs: cs, owner: me, live: map[*path]bool{}}, nil
}

// Name is the provider's name.
func (k *Kube) Name() string { return k.opts.Name }

// Client is the clientset the provider uses.
func (k *Kube) Client() kubernetes.Interface { return k.cs }

// Owner is the owner label value of this process's namespaces.
func (k *Kube) Owner() Owner { return k.owner }

// host is the API server's URL for errors.
func (k *Kube) host() string {
	if k.rest == nil {
		return "the API server"
	}
	return "API server " + k.rest.Host
}

// Ping checks that the API server answers within APITimeout; the error names its URL.
func (k *Kube) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, APITimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := k.cs.Discovery().ServerVersion()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s does not answer: %w", k.host(), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s does not answer within %s", k.host(), APITimeout)
	}
}

// discover finds the cluster's facts once.
func (k *Kube) discover(ctx context.Context) (*Facts, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.facts != nil || k.factsErr != nil {
		return k.facts, k.factsErr
	}
	if err := k.Ping(ctx); err != nil {
		k.factsErr = err
		return nil, err
	}
	f, err := Discover(ctx, k.cs)
	if err != nil {
		k.factsErr = fmt.Errorf("%s: %w", k.host(), err)
		return nil, k.factsErr
	}
	if k.opts.Amend != nil {
		k.opts.Amend(&f)
	}
	k.facts = &f
	return k.facts, nil
}

// Facts returns what the provider found on the cluster.
func (k *Kube) Facts(ctx context.Context) (Facts, error) {
	f, err := k.discover(ctx)
	if err != nil {
		return Facts{}, err
	}
	return *f, nil
}

// place lists the nodes and chooses where s runs. Nodes that are only briefly unusable (NotReady,
// or the not-ready / unreachable taints the node controller removes once they are Ready: a
// cluster just brought up) are waited for, at most 60 s.
func (k *Kube) place(ctx context.Context, s topo.Spec) (Placement, error) {
	want := max(s.Nodes, 2)
	deadline := time.Now().Add(60 * time.Second)
	for {
		nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return Placement{}, fmt.Errorf("%s: list nodes: %w", k.host(), err)
		}
		pl, err := Place(nodes.Items, want)
		if err == nil || !transientlyUnusable(nodes.Items) || time.Now().After(deadline) {
			return pl, err
		}
		select {
		case <-ctx.Done():
			return Placement{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Check says whether s can run on the cluster: the API server answers, RBAC lets this user do
// what the scenario needs, there are enough usable nodes (else a Skip naming them), and istio
// scenarios have Istio or the emulated sidecar.
func (k *Kube) Check(ctx context.Context, s topo.Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	f, err := k.discover(ctx)
	if err != nil {
		return err
	}
	if err := k.checkRBAC(ctx, s); err != nil {
		return err
	}
	if _, err := k.place(ctx, s); err != nil {
		return err
	}
	if s.Istio && !f.Istio && k.opts.Sidecar == nil {
		return provider.Skipf("%s: the cluster has no Istio sidecar injector, and the emulated sidecar's images are not available to it (nskube and kind load them; with -provider kubeconfig push them and pass -sidecar-images)", s.Name)
	}
	if s.Kind == topo.KindNodePort {
		if holder, err := k.nodePortHolder(ctx, k.opts.NodePort); err != nil {
			return err
		} else if holder != "" {
			return fmt.Errorf("NodePort %d is taken by Service %s (choose another with -nodeport N)", k.opts.NodePort, holder)
		}
	}
	return nil
}

// Up realises s in a fresh namespace. Realising topo.Plain gives the baseline: host-network pods
// on the same two nodes.
func (k *Kube) Up(ctx context.Context, s topo.Spec) (provider.Path, error) {
	if err := k.Check(ctx, s); err != nil {
		return nil, err
	}
	f, _ := k.discover(ctx)
	pl, err := k.place(ctx, s)
	if err != nil {
		return nil, err
	}
	realIstio := s.Istio && f.Istio
	extra := map[string]string{}
	if realIstio {
		extra["istio-injection"] = "enabled"
	}
	p := &path{k: k, spec: s, place: pl, istio: s.Istio, realIstio: realIstio, facts: *f,
		ns: NamespaceName(s.Name)}
	if _, err := k.cs.CoreV1().Namespaces().Create(ctx, namespace(p.ns, s.Name, k.owner, extra), metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("%s: create namespace %s: %w", k.host(), p.ns, err)
	}
	k.mu.Lock()
	k.live[p] = true
	k.mu.Unlock()
	if err := p.setUp(ctx); err != nil {
		if derr := p.down(context.Background(), false); derr != nil {
			err = fmt.Errorf("%w; and removing namespace %s: %v", err, p.ns, derr)
		}
		return nil, err
	}
	return p, nil
}

// Sweep deletes the namespaces of earlier runs on this host whose process is gone.
func (k *Kube) Sweep(ctx context.Context) error {
	swept, err := sweep(ctx, k.cs, k.owner)
	for _, ns := range swept {
		fmt.Fprintf(k.opts.Out, "%s: swept namespace %s of a run whose process is gone\n", k.opts.Name, ns)
	}
	return err
}

// Leftovers lists this process's namespaces still there (those kept with -keep excepted).
func (k *Kube) Leftovers(ctx context.Context) ([]string, error) {
	nss, err := ownedNamespaces(ctx, k.cs, k.owner)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range nss {
		if ns.Labels[KeepLabel] != "true" {
			out = append(out, "namespace "+ns.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// OnClose registers f to run at Close (after every path is down), last registered first.
func (k *Kube) OnClose(f func(context.Context) error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closers = append(k.closers, f)
}

// Close takes down every path still up, then runs what OnClose registered (tearing down a
// cluster the provider brought up).
func (k *Kube) Close(ctx context.Context) error {
	var errs []string
	if err := k.downAll(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	k.mu.Lock()
	cl := k.closers
	k.closers = nil
	k.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		if err := cl[i](ctx); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: close: %s", k.opts.Name, strings.Join(errs, "; "))
	}
	return nil
}

func (k *Kube) downAll(ctx context.Context) error {
	k.mu.Lock()
	var ps []*path
	for p := range k.live {
		ps = append(ps, p)
	}
	k.mu.Unlock()
	var errs []string
	for _, p := range ps {
		if err := p.Down(ctx); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

var signalOnce sync.Once

// HandleSignals makes SIGINT, SIGTERM and SIGHUP remove what this run made (Close: its
// namespaces, and a cluster the provider brought up), then calls h with the signal and the
// teardown's error; h decides how the program ends (interrupt.ExitCode gives 130/143). A second
// signal calls h at once.
func (k *Kube) HandleSignals(h interrupt.Handler) {
	signalOnce.Do(func() {
		interrupt.Watch(func() error {
			fmt.Fprintf(k.opts.Out, "%s: removing this run's namespaces\n", k.opts.Name)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			return k.Close(ctx)
		}, h, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	})
}

// nodePortHolder names the Service (namespace/name) that holds node port np, "" when free.
func (k *Kube) nodePortHolder(ctx context.Context, np int32) (string, error) {
	svcs, err := k.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("%s: list Services (to check NodePort %d): %w", k.host(), np, err)
	}
	for _, s := range svcs.Items {
		for _, p := range s.Spec.Ports {
			if p.NodePort == np {
				return s.Namespace + "/" + s.Name, nil
			}
		}
	}
	return "", nil
}

// nodePortService is the NodePort Service in front of the server pods.
func nodePortService(ns string, port, nodePort int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: NodePortService, Namespace: ns, Labels: map[string]string{ManagedByLabel: ManagedBy}},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeNodePort,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Selector:              map[string]string{RolePodLabel: "server"},
			Ports: []corev1.ServicePort{{Name: "tcpload", Protocol: corev1.ProtocolTCP, Port: port,
				TargetPort: intstr.FromInt32(port), NodePort: nodePort}},
		},
	}
}

// headlessService names the server pods for Istio: a sidecar treats traffic to an endpoint of a
// Service as in-mesh (mutual TLS); headless, so the client still dials the pod IP directly.
func headlessService(ns string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServerName, Namespace: ns, Labels: map[string]string{ManagedByLabel: ManagedBy}},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{RolePodLabel: "server"},
			Ports:     []corev1.ServicePort{{Name: "tcp-tcpload", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(port)}},
		},
	}
}

// waitServiceAccount waits for the namespace's default ServiceAccount: pods are refused until the
// controller-manager has made it.
func waitServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			return fmt.Errorf("namespace %s: default ServiceAccount: %w", ns, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
