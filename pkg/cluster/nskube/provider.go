package nskube

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pathcost/pathcost/pkg/interrupt"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/support"
)

// Provider is the e2e-framework cluster provider:
//
//	envfuncs.CreateCluster(nskube.NewProvider(nskube.WithNodes(3)), "pathcost")
type Provider struct {
	opts   Options
	state  *State
	rest   *rest.Config
	reaper *os.Process
	watch  *interrupt.Watcher // SIGINT/SIGTERM from Create until Destroy
	mu     sync.Mutex
}

var (
	_ support.E2EClusterProvider                = (*Provider)(nil)
	_ support.E2EClusterProviderWithImageLoader = (*Provider)(nil)
)

// Option configures a Provider.
type Option func(*Options)

// WithNodes sets the number of nodes (2 by default; 3 gives client, forward, server).
func WithNodes(n int) Option { return func(o *Options) { o.Nodes = n } }

// WithCNI sets the CNI mode: CNIBridge or CNIPTP.
func WithCNI(mode string) Option { return func(o *Options) { o.CNI = mode } }

// WithRoles sets the tcprole label of each node.
func WithRoles(roles ...string) Option { return func(o *Options) { o.Roles = roles } }

// WithStateRoot sets where the cluster keeps its files.
func WithStateRoot(dir string) Option { return func(o *Options) { o.StateRoot = dir } }

// WithOutput sets where progress goes.
func WithOutput(w io.Writer) Option { return func(o *Options) { o.Out = w } }

// WithSignalHandler sets what the provider calls after SIGINT or SIGTERM (caught from the start
// of Create until the end of Destroy) has torn the cluster down; see Create. The handler
// normally exits: os.Exit(interrupt.ExitCode(sig)). Without one the process goes on after the
// teardown, and the next signal ends it the default way.
func WithSignalHandler(h interrupt.Handler) Option { return func(o *Options) { o.onSignal = h } }

// NewProvider returns a provider with the given options.
func NewProvider(opts ...Option) *Provider {
	p := &Provider{}
	for _, o := range opts {
		o(&p.opts)
	}
	return p
}

func (p *Provider) SetDefaults() support.E2EClusterProvider { p.opts.defaults(); return p }

func (p *Provider) WithName(name string) support.E2EClusterProvider { p.opts.Name = name; return p }

func (p *Provider) WithVersion(version string) support.E2EClusterProvider {
	p.opts.Version = version
	p.opts.BinDir = ""
	return p
}

// WithPath sets the directory holding the Kubernetes binaries (instead of the version's cache).
func (p *Provider) WithPath(path string) support.E2EClusterProvider { p.opts.BinDir = path; return p }

func (p *Provider) WithOpts(opts ...support.ClusterOpts) support.E2EClusterProvider {
	for _, o := range opts {
		o(p)
	}
	return p
}

// Options returns the provider's options (after SetDefaults, the effective ones).
func (p *Provider) Options() Options { return p.opts }

// State returns the running cluster's state (nil before Create).
func (p *Provider) State() *State { return p.state }

// Create builds what is missing, brings the cluster up and returns its kubeconfig path. The
// program must have called RunReaperIfAsked first: before the first process of the cluster
// starts, Create starts this program again as a reaper that tears the cluster down if this
// process dies without Destroy (panic, os.Exit, SIGKILL). SIGINT and SIGTERM are caught from
// the start of Create to the end of Destroy: during the bring-up they stop it (Up tears down
// what it made), later they lead to Destroy; then the handler of WithSignalHandler is called
// with the signal and the teardown's error (or, on a second signal, at once), and a Create
// still running returns an error. The provider never exits the process.
func (p *Provider) Create(ctx context.Context, args ...string) (string, error) {
	p.opts.defaults()
	if err := ValidName(p.opts.Name); err != nil {
		return "", err
	}
	if !reaperAsked.Load() {
		return "", errNoReaperCall
	}
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	upDone := make(chan struct{})
	p.watch = interrupt.Watch(func() error {
		fmt.Fprintf(p.opts.Out, "nskube: signal: tearing down cluster %s\n", p.opts.Name)
		cancel() // a bring-up in progress stops and tears down what it made
		<-upDone
		return p.Destroy(context.Background())
	}, p.opts.onSignal, syscall.SIGINT, syscall.SIGTERM)
	o := p.opts
	o.beforeStart = func(st *State) error {
		st.Owner = procRef(os.Getpid())
		if err := p.startReaper(st.Dir); err != nil {
			fmt.Fprintf(p.opts.Out, "nskube: warning: no reaper: %v\n", err)
		} else {
			st.Reaper = procRef(p.reaper.Pid)
		}
		return nil
	}
	st, err := Up(upCtx, o)
	if err == nil {
		p.mu.Lock()
		p.state = st
		p.mu.Unlock()
	}
	close(upDone)
	if sig := p.watch.Caught(); sig != nil {
		<-p.watch.Done() // the teardown, then the handler (which normally exits)
		return "", fmt.Errorf("nskube: cluster %s: %v during the bring-up: torn down", p.opts.Name, sig)
	}
	if err != nil {
		p.watch.Stop()
		p.stopReaperIfGone()
		return "", err
	}
	return st.Kubeconfig, nil
}

// stopReaperIfGone stops the reaper if nothing of the cluster is left; otherwise it leaves it
// running, to tear down the rest when this process exits.
func (p *Provider) stopReaperIfGone() {
	if p.reaper == nil {
		return
	}
	if left, err := Leftovers(p.opts.StateRoot, p.opts.Name); len(left) > 0 || err != nil {
		fmt.Fprintf(p.opts.Out, "nskube: reaper (pid %d) left running, it retries the teardown when this process exits: %s (%v)\n", p.reaper.Pid, strings.Join(left, "; "), err)
		return
	}
	_ = p.reaper.Kill()
	_, _ = p.reaper.Wait()
	p.reaper = nil
}

// CreateWithConfig is Create; the provider has no config file format (use Options).
func (p *Provider) CreateWithConfig(ctx context.Context, configFile string) (string, error) {
	return p.Create(ctx)
}

func (p *Provider) GetKubeconfig() string {
	if p.state == nil {
		return ""
	}
	return p.state.Kubeconfig
}

func (p *Provider) GenerateKubeconfig(args ...string) (string, error) {
	if p.state == nil {
		return "", fmt.Errorf("nskube: cluster not created")
	}
	return p.state.Kubeconfig, nil
}

func (p *Provider) GetKubectlContext() string { return p.opts.Name }

// KubectlPath is the kubectl built with the cluster's binaries.
func (p *Provider) KubectlPath() string { return filepath.Join(p.opts.BinDir, "kubectl") }

// ExportLogs copies every component's log and the pods' logs into dest/NAME.
func (p *Provider) ExportLogs(ctx context.Context, dest string) error {
	if p.state == nil {
		return fmt.Errorf("nskube: cluster not created")
	}
	return p.state.ExportLogs(dest)
}

// Destroy tears the cluster down and checks that nothing is left. SIGINT/SIGTERM stay caught while
// it runs (a signal waits for it to finish, then the handler is called); the reaper is stopped
// only after a complete teardown, otherwise it stays to retry when this process exits.
func (p *Provider) Destroy(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.state == nil {
		err = Down(ctx, p.opts.StateRoot, p.opts.Name, p.opts.Out)
	} else {
		err = DownState(ctx, p.state, p.opts.Out)
		p.state = nil
	}
	if err == nil {
		p.stopReaperIfGone()
	} else if p.reaper != nil {
		fmt.Fprintf(p.opts.Out, "nskube: reaper (pid %d) left running, it retries the teardown when this process exits\n", p.reaper.Pid)
	}
	if p.watch != nil {
		p.watch.Stop() // no effect once a signal is being handled
	}
	return err
}

// WaitForControlPlane: Create returns only once the API server is ready and every node is Ready.
func (p *Provider) WaitForControlPlane(ctx context.Context, client klient.Client) error {
	if p.state == nil {
		return fmt.Errorf("nskube: cluster not created")
	}
	return p.state.waitNodes(ctx, 60*time.Second)
}

func (p *Provider) KubernetesRestConfig() *rest.Config {
	if p.rest == nil && p.state != nil {
		p.rest, _ = p.state.RESTConfig()
	}
	return p.rest
}

// LoadImage loads an image into every node. There is no local image store to take it from, so
// image must be the path of an image archive (as for LoadImageArchive).
func (p *Provider) LoadImage(ctx context.Context, image string, args ...string) error {
	if _, err := os.Stat(image); err != nil {
		return fmt.Errorf("nskube: no container engine to load %q from; build an archive with pkg/image and use LoadImageArchive", image)
	}
	return p.LoadImageArchive(ctx, image, args...)
}

// LoadImageArchive imports a docker/OCI image tarball into every node's containerd.
func (p *Provider) LoadImageArchive(ctx context.Context, archivePath string, args ...string) error {
	if p.state == nil {
		return fmt.Errorf("nskube: cluster not created")
	}
	return p.state.LoadImageArchive(ctx, archivePath)
}

// LoadImageArchive imports an image archive into every node's containerd.
func (s *State) LoadImageArchive(ctx context.Context, archive string) error {
	for _, n := range s.Nodes {
		if err := ImportArchive(ctx, n.Socket, archive); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// ExportLogs copies the cluster's logs into dest/NAME.
func (s *State) ExportLogs(dest string) error {
	out := filepath.Join(dest, s.Name)
	copyTree := func(src, dst string) error {
		return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || !info.Mode().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(src, path)
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			t := filepath.Join(dst, rel)
			if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
				return err
			}
			return os.WriteFile(t, b, 0o644)
		})
	}
	if err := copyTree(filepath.Join(s.Dir, "logs"), filepath.Join(out, "control-plane")); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if err := copyTree(filepath.Join(n.Dir, "logs"), filepath.Join(out, n.Name)); err != nil {
			return err
		}
		if err := copyTree(filepath.Join(n.Dir, "ov", "var.upper", "log", "pods"), filepath.Join(out, n.Name, "pods")); err != nil {
			return err
		}
	}
	return nil
}
