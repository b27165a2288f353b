package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/sidecar"
	"github.com/pathcost/pathcost/pkg/topo"
)

// path is one realised scenario: a namespace and the pods started in it.
type path struct {
	k                *Kube
	spec             topo.Spec
	place            Placement
	facts            Facts
	ns               string
	istio, realIstio bool

	mu       sync.Mutex
	seq      int
	serverIP string // pod IP of the server pod running now ("" when none)
	downOnce sync.Once
	downErr  error
}

var _ provider.Path = (*path)(nil)

// hostNetwork says whether the role runs in the node's network namespace: every role of the
// baseline; the client (node A) and the sampler (node B) of NodePort.
func (p *path) hostNetwork(role string) bool {
	switch p.spec.Kind {
	case topo.KindPlain:
		return true
	case topo.KindNodePort:
		return role != "server"
	}
	return false
}

// setUp makes what the namespace needs before the first pod.
func (p *path) setUp(ctx context.Context) error {
	cs := p.k.cs
	if err := waitServiceAccount(ctx, cs, p.ns); err != nil {
		return err
	}
	if p.spec.Kind == topo.KindNodePort {
		svc := nodePortService(p.ns, p.k.opts.Port, p.k.opts.NodePort)
		if _, err := cs.CoreV1().Services(p.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "already allocated") {
				holder, herr := p.k.nodePortHolder(ctx, p.k.opts.NodePort)
				if herr == nil && holder != "" {
					return fmt.Errorf("NodePort %d is taken by Service %s (choose another with -nodeport N): %w", p.k.opts.NodePort, holder, err)
				}
			}
			return fmt.Errorf("create NodePort Service %s/%s: %w", p.ns, NodePortService, err)
		}
	}
	if p.istio {
		if _, err := cs.CoreV1().Services(p.ns).Create(ctx, headlessService(p.ns, p.k.opts.Port), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", p.ns, ServerName, err)
		}
		if !p.realIstio {
			e := p.k.opts.Sidecar
			sec, err := e.Secret(p.ns)
			if err != nil {
				return fmt.Errorf("emulated sidecar: %w", err)
			}
			if _, err := cs.CoreV1().Secrets(p.ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create Secret %s/%s: %w", p.ns, sec.Name, err)
			}
			cm, err := e.ConfigMap(p.ns)
			if err != nil {
				return fmt.Errorf("emulated sidecar: %w", err)
			}
			if _, err := cs.CoreV1().ConfigMaps(p.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create ConfigMap %s/%s: %w", p.ns, cm.Name, err)
			}
		}
	}
	return nil
}

func (p *path) Spec() topo.Spec       { return p.spec }
func (p *path) Client() provider.Host { return &host{p: p, role: "client", node: p.place.Client} }
func (p *path) Server() provider.Host { return &host{p: p, role: "server", node: p.place.Server} }
func (p *path) SharedKernel() bool    { return p.k.opts.SharedKernel }

// Forwarder is node B of NodePort, where the sampler runs.
func (p *path) Forwarder() provider.Host {
	if p.spec.Kind != topo.KindNodePort {
		return nil
	}
	return &host{p: p, role: "sampler", node: p.place.Forward}
}

// Target is what the client dials: the server node's address (baseline), node B's NodePort, or on
// the pod network the name ServerName, which each client pod resolves to the server pod running
// at its start.
func (p *path) Target() string {
	port := strconv.Itoa(int(p.k.opts.Port))
	switch p.spec.Kind {
	case topo.KindPlain:
		return net.JoinHostPort(p.place.Server.InternalIP, port)
	case topo.KindNodePort:
		return net.JoinHostPort(p.place.Forward.InternalIP, strconv.Itoa(int(p.k.opts.NodePort)))
	}
	return net.JoinHostPort(ServerName, port)
}

// Listen is what the server binds: every address of its pod (or node) on the port.
func (p *path) Listen() string { return net.JoinHostPort("0.0.0.0", strconv.Itoa(int(p.k.opts.Port))) }

// Sidecars are the client's and the server's, watched through the pods' shared process namespace.
func (p *path) Sidecars() []provider.Sidecar {
	if !p.istio {
		return nil
	}
	if !p.realIstio {
		e := p.k.opts.Sidecar
		return []provider.Sidecar{e.Sidecar(provider.ClientSide, p.Client()), e.Sidecar(provider.ServerSide, p.Server())}
	}
	return []provider.Sidecar{
		{Side: provider.ClientSide, Host: p.Client(), Watch: sidecar.WatchEnvoy, Proxy: "envoy (Istio)"},
		{Side: provider.ServerSide, Host: p.Server(), Watch: sidecar.WatchEnvoy, Proxy: "envoy (Istio)"},
	}
}

// Notes say where the scenario ran and what was found.
func (p *path) Notes() []string {
	o := p.k.opts
	out := []string{fmt.Sprintf("provider %s: tcpload runs as one pod per process (image %s), records read from the pod logs", o.Name, o.Image)}
	out = append(out, p.facts.Notes(p.spec, p.place)...)
	switch p.spec.Kind {
	case topo.KindPlain:
		out = append(out, "baseline: hostNetwork pods on the same two nodes (node to node)")
	case topo.KindNodePort:
		out = append(out, fmt.Sprintf("nodeport: Service %s type NodePort %d (externalTrafficPolicy Cluster), server pod on node %s, client hostNetwork pod on node %s dialling node %s (%s); tcpload sample in a hostNetwork pod on node %s",
			NodePortService, o.NodePort, p.place.Server.Name, p.place.Client.Name, p.place.Forward.Name, p.place.Forward.InternalIP, p.place.Forward.Name))
	default:
		out = append(out, fmt.Sprintf("%s: client and server pods on the cluster's pod network, on two nodes", p.spec.Name))
	}
	if len(o.PodAnnotations) > 0 || len(o.PodResources) > 0 {
		out = append(out, fmt.Sprintf("pod-network pods carry annotations %s and resources %s", kvString(o.PodAnnotations), resourceString(o.PodResources)))
	}
	if p.istio {
		if p.realIstio {
			out = append(out, "istio: "+sidecar.Note(false)+": the cluster's Istio ("+p.facts.IstioEvidence+"), namespace labelled istio-injection=enabled, envoy watched through the shared process namespace")
		} else {
			out = append(out, o.Sidecar.Notes()...)
		}
	}
	if o.SharedKernel && o.SharedKernelNote != "" {
		out = append(out, o.SharedKernelNote)
	}
	return out
}

// Down deletes the namespace (and with it every pod and Service) and waits until it is gone; with
// Keep it labels it kept and prints how to delete it. Safe to call more than once.
func (p *path) Down(ctx context.Context) error {
	p.downOnce.Do(func() { p.downErr = p.down(ctx, p.k.opts.Keep) })
	return p.downErr
}

func (p *path) down(ctx context.Context, keep bool) error {
	defer func() {
		p.k.mu.Lock()
		delete(p.k.live, p)
		p.k.mu.Unlock()
	}()
	if keep {
		patch := []byte(`{"metadata":{"labels":{"` + KeepLabel + `":"true"}}}`)
		if _, err := p.k.cs.CoreV1().Namespaces().Patch(ctx, p.ns, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("keep namespace %s: %w", p.ns, err)
		}
		fmt.Fprintf(p.k.opts.Out, "%s: kept namespace %s for debugging (-keep); delete it with: kubectl delete namespace %s\n", p.k.opts.Name, p.ns, p.ns)
		return nil
	}
	return deleteNamespace(ctx, p.k.cs, p.ns, 2*time.Minute)
}

// host is one role of a path: each Start runs one pod on the role's node.
type host struct {
	p    *path
	role string
	node Node
}

func (h *host) Name() string { return h.role + "@" + h.node.Name }

// Start runs tcpload ARGS in a new pod on the host's node. For the server it returns once the
// container runs (client pods started later dial it); other roles return once the pod is created,
// and Wait reports a pod that cannot start. The record comes back when the pod ends.
func (h *host) Start(ctx context.Context, args []string, stdout, stderr io.Writer) (provider.Proc, error) {
	p := h.p
	k := p.k
	p.mu.Lock()
	p.seq++
	name := fmt.Sprintf("%s-%d", h.role, p.seq)
	serverIP := p.serverIP
	p.mu.Unlock()
	hostNet := p.hostNetwork(h.role)
	o := PodOptions{Namespace: p.ns, Name: name, Node: h.node.Name, Role: h.role, Image: k.opts.Image,
		PullPolicy: k.opts.PullPolicy, Args: args, HostNetwork: hostNet}
	if h.role == "server" {
		o.Port = k.opts.Port
	}
	if !hostNet {
		o.Annotations, o.Resources = k.opts.PodAnnotations, k.opts.PodResources
	}
	if h.role == "client" && !hostNet {
		if serverIP == "" {
			return nil, fmt.Errorf("start %s: no server pod is running in %s to dial (start the server first)", name, p.ns)
		}
		o.HostAliases = []corev1.HostAlias{{IP: serverIP, Hostnames: []string{ServerName}}}
	}
	if p.istio && h.role != "sampler" {
		o.ShareProcessNamespace = true
		if p.realIstio {
			o.Annotations = mergeMaps(o.Annotations, map[string]string{"proxy.istio.io/config": `{"holdApplicationUntilProxyStarts": true}`})
		}
	}
	pod := Pod(o)
	if p.istio && !p.realIstio && h.role != "sampler" {
		side := provider.ClientSide
		if h.role == "server" {
			side = provider.ServerSide
		}
		if err := k.opts.Sidecar.Inject(&pod.Spec, side); err != nil {
			return nil, fmt.Errorf("start %s: emulated sidecar: %w", name, err)
		}
		drainOnStop(&pod.Spec)
	}
	where := fmt.Sprintf("pod %s/%s on node %s", p.ns, name, h.node.Name)
	created, err := k.cs.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("start tcpload %s: create %s: %w", firstArg(args), where, err)
	}
	if p.realIstio && h.role != "sampler" && !hasContainer(created, sidecar.ProxyContainer) {
		k.deletePod(p.ns, name)
		return nil, fmt.Errorf("start tcpload %s: %s got no %s container although the namespace is labelled istio-injection=enabled (is the injector selecting it?)", firstArg(args), where, sidecar.ProxyContainer)
	}
	pr := &proc{k: k, ns: p.ns, name: name, node: h.node.Name, what: firstArg(args), stdout: stdout, stderr: stderr, ctx: ctx}
	if h.role == "server" {
		// the server must run before a client dials it (and its pod IP is the client's target);
		// clients and samplers are not waited for here, so that the client and the sampler
		// started after it begin at about the same time and their windows overlap
		running, err := pr.waitStarted(ctx)
		if err != nil {
			k.deletePod(p.ns, name)
			return nil, err
		}
		p.mu.Lock()
		p.serverIP = running.Status.PodIP
		p.mu.Unlock()
		pr.started = true
	}
	stop := make(chan struct{})
	pr.stop = stop
	go func() { // cancelling ctx kills the pod
		select {
		case <-ctx.Done():
			k.deletePod(p.ns, name)
		case <-stop:
		}
	}()
	return pr, nil
}

func hasContainer(p *corev1.Pod, name string) bool {
	for _, c := range append(append([]corev1.Container{}, p.Spec.Containers...), p.Spec.InitContainers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}

func mergeMaps(a, b map[string]string) map[string]string {
	out := copyMap(a)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// deletePod deletes a pod at once, in the background: its namespace goes at Down anyway.
func (k *Kube) deletePod(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), APITimeout)
	defer cancel()
	_ = k.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
}

// proc is one tcpload pod.
type proc struct {
	k                    *Kube
	ns, name, node, what string
	stdout, stderr       io.Writer
	ctx                  context.Context
	stop                 chan struct{}
	started              bool // waitStarted succeeded
	waitOnce             sync.Once
	waitErr              error
}

func (pr *proc) where() string { return fmt.Sprintf("pod %s/%s on node %s", pr.ns, pr.name, pr.node) }

// waitStarted waits until the tcpload container runs (or already ended), at most StartTimeout;
// an image that cannot be pulled, a container that cannot start or a pod that cannot be scheduled
// fails at once, naming the pod, the node and what the kubelet or scheduler said.
func (pr *proc) waitStarted(ctx context.Context) (*corev1.Pod, error) {
	t0 := time.Now()
	var unschedSince time.Time
	for {
		pod, err := pr.k.cs.CoreV1().Pods(pr.ns).Get(ctx, pr.name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("tcpload %s: %s: %w", pr.what, pr.where(), err)
		}
		if st := containerStatus(pod, Container); st != nil && (st.State.Running != nil || st.State.Terminated != nil) {
			return pod, nil
		}
		if pod.Status.Phase == corev1.PodSucceeded {
			return pod, nil
		}
		if pod.Spec.NodeName == "" && unschedSince.IsZero() {
			unschedSince = time.Now()
		} else if pod.Spec.NodeName != "" {
			unschedSince = time.Time{}
		}
		var unsched time.Duration
		if !unschedSince.IsZero() {
			unsched = time.Since(unschedSince)
		}
		if why := podProblem(pod, unsched, 20*time.Second); why != "" {
			return nil, pr.failure(ctx, why)
		}
		if time.Since(t0) > StartTimeout {
			return nil, pr.failure(ctx, fmt.Sprintf("not running after %s (phase %s)", StartTimeout, pod.Status.Phase))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tcpload %s: %s: %w", pr.what, pr.where(), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// failure is an error naming the pod, its node, the reason and the pod's Warning events.
func (pr *proc) failure(ctx context.Context, why string) error {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	msg := fmt.Sprintf("tcpload %s: %s: %s", pr.what, pr.where(), why)
	if evs := warningEvents(ectx, pr.k.cs, pr.ns, pr.name); len(evs) > 0 {
		msg += "; events: " + strings.Join(evs, "; ")
	}
	return errors.New(msg)
}

// Wait waits for the tcpload container to end, copies the record from its log to stdout and the
// rest to stderr, and deletes the pod. A non-zero exit names the pod, the node and the reason.
func (pr *proc) Wait() error {
	pr.waitOnce.Do(func() { pr.waitErr = pr.wait() })
	return pr.waitErr
}

func (pr *proc) wait() error {
	defer func() {
		close(pr.stop)
		pr.k.deletePod(pr.ns, pr.name)
	}()
	if !pr.started {
		if _, err := pr.waitStarted(pr.ctx); err != nil {
			return err
		}
	}
	var term *corev1.ContainerStateTerminated
	for term == nil {
		pod, err := pr.k.cs.CoreV1().Pods(pr.ns).Get(context.WithoutCancel(pr.ctx), pr.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if pr.ctx.Err() != nil {
				return fmt.Errorf("tcpload %s: %s: killed: %w", pr.what, pr.where(), pr.ctx.Err())
			}
			return fmt.Errorf("tcpload %s: %s: the pod was deleted before tcpload ended", pr.what, pr.where())
		case err != nil:
			if pr.ctx.Err() != nil {
				return fmt.Errorf("tcpload %s: %s: %w", pr.what, pr.where(), pr.ctx.Err())
			}
			time.Sleep(time.Second) // the API server may be briefly unavailable
			continue
		}
		if st := containerStatus(pod, Container); st != nil && st.State.Terminated != nil {
			term = st.State.Terminated
			break
		}
		if pod.Status.Phase == corev1.PodFailed {
			return pr.failure(pr.ctx, fmt.Sprintf("pod failed: %s %s", pod.Status.Reason, pod.Status.Message))
		}
		select {
		case <-pr.ctx.Done():
			// the watcher goroutine deletes the pod; the next Get sees it gone
		case <-time.After(250 * time.Millisecond):
		}
	}
	lctx, cancel := context.WithTimeout(context.Background(), APITimeout)
	defer cancel()
	log, lerr := PodLogs(lctx, pr.k.cs, pr.ns, pr.name, Container, false)
	rec, rest := SplitRecord(log)
	if _, err := pr.stdout.Write(rec); err != nil {
		return fmt.Errorf("tcpload %s: %s: copy the record: %w", pr.what, pr.where(), err)
	}
	if _, err := pr.stderr.Write(rest); err != nil {
		return fmt.Errorf("tcpload %s: %s: copy the log: %w", pr.what, pr.where(), err)
	}
	if term.ExitCode != 0 {
		return fmt.Errorf("tcpload %s: %s: exit status %d (%s)%s", pr.what, pr.where(), term.ExitCode, term.Reason, lastLines(rest, 3))
	}
	if lerr != nil {
		return fmt.Errorf("tcpload %s: %s: %w", pr.what, pr.where(), lerr)
	}
	return nil
}

// lastLines returns the last n lines of b as ": a | b | c" ("" for none).
func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(bytes.TrimSpace(b))), "\n")
	if len(ls) == 1 && ls[0] == "" {
		return ""
	}
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return ": " + strings.Join(ls, " | ")
}

// SidecarDrain is how long an emulated sidecar keeps running after its pod's tcpload container
// ended, before the kubelet stops it.
const SidecarDrain = 5

// drainOnStop keeps the emulated sidecar's proxy running SidecarDrain seconds after tcpload ends
// (a preStop sleep), as Istio's sidecar drains connections for terminationDrainDuration (5 s)
// before it exits: the server ends once it has written its last byte, and without the pause the
// kubelet would stop its HAProxy (SIGTERM: a hard stop) with bytes still in flight to the client.
func drainOnStop(spec *corev1.PodSpec) {
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if c.Name != sidecar.ProxyContainer {
			continue
		}
		if c.Lifecycle == nil {
			c.Lifecycle = &corev1.Lifecycle{}
		}
		c.Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: SidecarDrain}}
		spec.TerminationGracePeriodSeconds = ptr(int64(SidecarDrain + 5))
	}
}
