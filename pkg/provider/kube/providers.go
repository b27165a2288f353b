package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/support"
	"sigs.k8s.io/e2e-framework/support/kind"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/sidecar"
	"github.com/pathcost/pathcost/pkg/topo"
)

// ConfigError is bad input about the kubeconfig (missing, unreadable, invalid): the suite exits 2.
type ConfigError struct {
	Path string
	Err  error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("kubeconfig %s: %v", e.Path, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is (or wraps) a *ConfigError.
func IsConfigError(err error) bool {
	var c *ConfigError
	return errors.As(err, &c)
}

// KubeconfigPath is path, or $KUBECONFIG when path is empty.
func KubeconfigPath(path string) string {
	if path != "" {
		return path
	}
	return os.Getenv("KUBECONFIG")
}

// LoadKubeconfig reads a kubeconfig file into a REST config; every problem is a *ConfigError
// naming the file.
func LoadKubeconfig(path string) (*rest.Config, error) {
	if path == "" {
		return nil, &ConfigError{Path: "(none)", Err: errors.New("no kubeconfig: give -kubeconfig PATH or set KUBECONFIG")}
	}
	if _, err := os.ReadFile(path); err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	return rc, nil
}

// OpenKubeconfig is the kubeconfig provider: the cluster path points at (see KubeconfigPath). It
// creates nothing but namespaces and what lives in them. A missing or unreadable file is a
// *ConfigError; an API server that does not answer within APITimeout is an error naming its URL.
func OpenKubeconfig(ctx context.Context, path string, o Options) (*Kube, error) {
	rc, err := LoadKubeconfig(path)
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "kubeconfig"
	}
	k, err := New(rc, o)
	if err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	if err := k.Ping(ctx); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return k, nil
}

// NSKubeConfig configures the nskube provider.
type NSKubeConfig struct {
	// Cluster is a running nskube cluster to use (tcpload cluster up / make cluster-up); empty:
	// bring one up for the run and tear it down at Close.
	Cluster string
	// Scenarios decide the cluster brought up: 3 nodes with nodeport among them (else 2); CNI
	// ptp (the VPC-CNI shape) when vpccni is among them and gr is not, else bridge (Global Router).
	Scenarios []topo.Spec
	// StateRoot is nskube's state directory ("" = its default).
	StateRoot string
	// WorkDir holds the tcpload image archive ("" = a temporary directory, removed at Close).
	WorkDir string
	// Options of the realisation (Name, SharedKernel are set).
	Options Options
}

// NSKubeCNI picks the CNI mode for scenarios (see NSKubeConfig.Scenarios), and says why when the
// choice does not fit every scenario.
func NSKubeCNI(scenarios []topo.Spec) (cni, note string) {
	gr, vpc := false, false
	for _, s := range scenarios {
		gr = gr || s.Kind == topo.KindGR
		vpc = vpc || s.Kind == topo.KindVPCCNI
	}
	switch {
	case vpc && gr:
		return nskube.CNIBridge, "nskube: both gr and vpccni are compiled in; the one cluster runs the bridge CNI (Global Router shape), so vpccni runs on it too (run the vpccni tags alone for the ptp CNI)"
	case vpc:
		return nskube.CNIPTP, ""
	}
	return nskube.CNIBridge, ""
}

// NSKubeNodes is the number of nodes scenarios need (3 with nodeport, else 2).
func NSKubeNodes(scenarios []topo.Spec) int {
	n := 2
	for _, s := range scenarios {
		n = max(n, s.Nodes)
	}
	return n
}

// cniKind maps nskube's CNI mode to the pod network shape it gives.
func cniKind(mode string) string {
	if mode == nskube.CNIPTP {
		return string(topo.KindVPCCNI)
	}
	return string(topo.KindGR)
}

// SharedKernelNote is what the notes say on nskube.
const SharedKernelNote = "nskube: every node is a network namespace on one machine; they share one kernel and its CPUs, so node CPU is the machine's (not each node's) and traffic between nodes is veth traffic inside one kernel"

// OpenNSKube is the nskube provider: a real Kubernetes whose nodes are network namespaces on this
// machine, brought up for the run (or the running cluster NSKubeConfig.Cluster), with the tcpload
// image built from this module and loaded into every node. Not being able to run nskube here (not
// root, packages missing) is a *provider.Skip.
func OpenNSKube(ctx context.Context, c NSKubeConfig) (k *Kube, err error) {
	if err := nskube.Requirements(); err != nil {
		return nil, provider.Skipf("the nskube provider cannot run here: %v", err)
	}
	o := c.Options
	o.Name = "nskube"
	o.SharedKernel, o.SharedKernelNote = true, SharedKernelNote
	o.defaults()
	work := c.WorkDir
	var cleanups []func(context.Context) error
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				if cerr := cleanups[i](context.Background()); cerr != nil {
					err = fmt.Errorf("%w; and %v", err, cerr)
				}
			}
		}
	}()
	if work == "" {
		if work, err = os.MkdirTemp("", "pathcost-nskube-image-"); err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func(context.Context) error { return os.RemoveAll(work) })
	}
	archive, err := BuildImageArchive(ctx, work, o.Image)
	if err != nil {
		return nil, err
	}
	var kubeconfig, cni, note string
	var load func(context.Context, string) error
	if c.Cluster != "" {
		st, err := nskube.LoadState(c.StateRoot, c.Cluster)
		if err != nil {
			return nil, &ConfigError{Path: c.Cluster, Err: fmt.Errorf("nskube cluster %s: %w (bring one up with make cluster-up)", c.Cluster, err)}
		}
		kubeconfig, cni = st.Kubeconfig, st.CNI
		load = st.LoadImageArchive
		if want, _ := NSKubeCNI(c.Scenarios); want != cni {
			note = fmt.Sprintf("nskube: cluster %s runs the %s CNI; the scenarios' tags ask for %s", c.Cluster, cni, want)
		}
	} else {
		cni, note = NSKubeCNI(c.Scenarios)
		name := envconf.RandomName("pathcost-e2e", 20)
		p := nskube.NewProvider(nskube.WithNodes(NSKubeNodes(c.Scenarios)), nskube.WithCNI(cni),
			nskube.WithStateRoot(c.StateRoot), nskube.WithOutput(o.Out))
		p.WithName(name)
		fmt.Fprintf(o.Out, "nskube: bringing up cluster %s (%d nodes, CNI %s)\n", name, NSKubeNodes(c.Scenarios), cni)
		kubeconfig, err = p.Create(ctx)
		if err != nil {
			return nil, fmt.Errorf("nskube: bring up cluster %s: %w", name, err)
		}
		destroy := func(ctx context.Context) error {
			if err := p.Destroy(ctx); err != nil {
				return fmt.Errorf("nskube: tear down cluster %s: %w", name, err)
			}
			left, err := nskube.Leftovers(c.StateRoot, name)
			if err != nil {
				return fmt.Errorf("nskube: after tearing down cluster %s: %w", name, err)
			}
			if len(left) > 0 {
				return fmt.Errorf("nskube: cluster %s left: %s", name, strings.Join(left, "; "))
			}
			return nil
		}
		cleanups = append(cleanups, destroy)
		load = func(ctx context.Context, a string) error { return p.LoadImageArchive(ctx, a) }
	}
	if err := load(ctx, archive); err != nil {
		return nil, fmt.Errorf("nskube: load the tcpload image into the nodes: %w", err)
	}
	if hasIstio(c.Scenarios) {
		if o.Sidecar, err = loadEmulatedSidecar(ctx, work, load); err != nil {
			return nil, fmt.Errorf("nskube: %w", err)
		}
	}
	mode := cni
	o.Amend = func(f *Facts) {
		f.CNI, f.CNIEvidence = cniKind(mode), "nskube CNI mode "+mode
		f.ProxyMode, f.ProxySource = "iptables", "nskube's kube-proxy configuration"
		if note != "" {
			f.Problems = append(f.Problems, note)
		}
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, &ConfigError{Path: kubeconfig, Err: err}
	}
	k, err = New(rc, o)
	if err != nil {
		return nil, err
	}
	for _, f := range cleanups {
		k.OnClose(f)
	}
	return k, nil
}

// KindConfig configures the kind provider.
type KindConfig struct {
	// Name is the kind cluster's name ("" = a random pathcost-… name).
	Name string
	// WorkDir holds the cluster config and the image archive ("" = a temporary directory).
	WorkDir string
	// Scenarios to run: with istio among them the emulated sidecar's images are loaded too (a
	// kind cluster has no Istio).
	Scenarios []topo.Spec
	// Options of the realisation.
	Options Options
}

// KindClusterConfig is the kind cluster the provider makes: a control plane and three workers
// labelled tcprole=client, forward and server (testdata/k8s/kind-config.yaml is a copy).
const KindClusterConfig = `# pathcost's kind cluster: a control plane and three workers, one per tcprole.
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
  labels:
    tcprole: client
- role: worker
  labels:
    tcprole: forward
- role: worker
  labels:
    tcprole: server
`

// KindMissing lists what kind needs and this machine lacks (docker, kind), empty when nothing.
func KindMissing() []string {
	var miss []string
	for _, c := range []string{"docker", "kind"} {
		if _, err := exec.LookPath(c); err != nil {
			miss = append(miss, c)
		}
	}
	if len(miss) == 0 {
		if err := exec.Command("docker", "info").Run(); err != nil {
			miss = append(miss, "a running Docker engine (docker info: "+err.Error()+")")
		}
	}
	return miss
}

// OpenKind is the kind provider: a kind cluster (e2e-framework's kind support) with KindClusterConfig,
// the tcpload image loaded with `kind load image-archive`, then the same realisation as every
// cluster. Without docker or kind it returns a *provider.Skip saying so.
func OpenKind(ctx context.Context, c KindConfig) (k *Kube, err error) {
	if miss := KindMissing(); len(miss) > 0 {
		return nil, provider.Skipf("the kind provider needs %s, missing here", strings.Join(miss, " and "))
	}
	o := c.Options
	o.Name = "kind"
	o.defaults()
	work := c.WorkDir
	var cleanups []func(context.Context) error
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				_ = cleanups[i](context.Background())
			}
		}
	}()
	if work == "" {
		if work, err = os.MkdirTemp("", "pathcost-kind-"); err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func(context.Context) error { return os.RemoveAll(work) })
	}
	cfgFile := filepath.Join(work, "kind-config.yaml")
	if err := os.WriteFile(cfgFile, []byte(KindClusterConfig), 0o644); err != nil {
		return nil, err
	}
	archive, err := BuildImageArchive(ctx, work, o.Image)
	if err != nil {
		return nil, err
	}
	name := c.Name
	if name == "" {
		name = envconf.RandomName("pathcost", 16)
	}
	var cl support.E2EClusterProvider = kind.NewProvider().WithName(name)
	kubeconfig, err := cl.CreateWithConfig(ctx, cfgFile)
	if err != nil {
		return nil, fmt.Errorf("kind: create cluster %s: %w", name, err)
	}
	cleanups = append(cleanups, func(ctx context.Context) error {
		if err := cl.Destroy(ctx); err != nil {
			return fmt.Errorf("kind: delete cluster %s: %w", name, err)
		}
		return nil
	})
	loader, ok := cl.(support.E2EClusterProviderWithImageLoader)
	if !ok {
		return nil, errors.New("kind: the e2e-framework kind provider cannot load images")
	}
	load := func(ctx context.Context, a string) error { return loader.LoadImageArchive(ctx, a) }
	if err := load(ctx, archive); err != nil {
		return nil, fmt.Errorf("kind: load the tcpload image: %w", err)
	}
	if hasIstio(c.Scenarios) {
		if o.Sidecar, err = loadEmulatedSidecar(ctx, work, load); err != nil {
			return nil, fmt.Errorf("kind: %w", err)
		}
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, &ConfigError{Path: kubeconfig, Err: err}
	}
	if k, err = New(rc, o); err != nil {
		return nil, err
	}
	for _, f := range cleanups {
		k.OnClose(f)
	}
	return k, nil
}

func hasIstio(scenarios []topo.Spec) bool {
	for _, s := range scenarios {
		if s.Istio {
			return true
		}
	}
	return false
}

// loadEmulatedSidecar builds the emulated sidecar's images from this machine's Debian packages
// into dir, loads them with load, and returns the sidecar that uses them.
func loadEmulatedSidecar(ctx context.Context, dir string, load func(context.Context, string) error) (*sidecar.Emulated, error) {
	imgs, err := sidecar.BuildImages(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("emulated sidecar images (apt-get install haproxy iptables): %w", err)
	}
	for _, a := range []string{imgs.HAProxyArchive, imgs.InitArchive} {
		if err := load(ctx, a); err != nil {
			return nil, fmt.Errorf("load the emulated sidecar image %s: %w", a, err)
		}
	}
	return &sidecar.Emulated{HAProxyImage: imgs.HAProxyRef, InitImage: imgs.InitRef, Proxy: imgs.Proxy}, nil
}
