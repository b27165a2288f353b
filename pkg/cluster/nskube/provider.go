package nskube

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/support"
)

// Provider is the e2e-framework cluster provider:
//
//	envfuncs.CreateCluster(nskube.NewProvider(nskube.WithNodes(3)), "pathcost")
type Provider struct {
	opts    Options
	state   *State
	rest    *rest.Config
	reaper  *os.Process
	stopSig chan struct{}
	mu      sync.Mutex
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

// Create builds what is missing, brings the cluster up and returns its kubeconfig path. Before the
// first process of the cluster starts, a reaper process starts watching this one: if it dies
// without Destroy (panic, os.Exit, SIGKILL), the reaper tears the cluster down. SIGINT/SIGTERM are
// caught from the start: during the bring-up they stop it (Up tears down what it made), later
// they lead to Destroy; then the process exits with status 130.
func (p *Provider) Create(ctx context.Context, args ...string) (string, error) {
	p.opts.defaults()
	if err := ValidName(p.opts.Name); err != nil {
		return "", err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	upDone := make(chan struct{})
	caught := make(chan os.Signal, 1)
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(p.opts.Out, "nskube: %v during the bring-up of cluster %s: stopping it, tearing down\n", s, p.opts.Name)
			cancel()
			caught <- s
		case <-upDone:
			caught <- nil // a later signal stays in sigs for catchSignals
		}
	}()
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
	close(upDone)
	if s := <-caught; s != nil {
		if err == nil { // the bring-up finished before it noticed
			if derr := DownState(context.Background(), st, p.opts.Out); derr != nil {
				fmt.Fprintf(p.opts.Out, "nskube: teardown after %v: %v (the reaper retries)\n", s, derr)
			}
		}
		p.stopReaperIfGone()
		fmt.Fprintf(p.opts.Out, "nskube: %v: exiting\n", s)
		os.Exit(130)
	}
	if err != nil {
		p.stopReaperIfGone()
		signal.Stop(sigs)
		return "", err
	}
	p.state = st
	p.catchSignals(sigs)
	return st.Kubeconfig, nil
}

// stopReaperIfGone stops the reaper if nothing of the cluster is left; otherwise it leaves it
// running, to tear down the rest when this process exits.
func (p *Provider) stopReaperIfGone() {
	if p.reaper == nil {
		return
	}
	if left := Leftovers(p.opts.StateRoot, p.opts.Name); len(left) > 0 {
		fmt.Fprintf(p.opts.Out, "nskube: reaper (pid %d) left running, it retries the teardown when this process exits: %s\n", p.reaper.Pid, strings.Join(left, "; "))
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
// it runs (a signal waits for it to finish); the reaper is stopped only after a complete teardown,
// otherwise it stays to retry when this process exits.
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
	if p.stopSig != nil {
		close(p.stopSig)
		p.stopSig = nil
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

// catchSignals: a SIGINT/SIGTERM on ch (already registered) leads to Destroy and exit status 130.
func (p *Provider) catchSignals(ch chan os.Signal) {
	p.stopSig = make(chan struct{})
	stop := p.stopSig
	go func() {
		defer signal.Stop(ch)
		select {
		case s := <-ch:
			fmt.Fprintf(p.opts.Out, "nskube: %v: tearing down cluster %s\n", s, p.opts.Name)
			_ = p.Destroy(context.Background())
			os.Exit(130)
		case <-stop:
		}
	}()
}

// Reaper: the provider re-executes the current binary with these variables; init() below turns that
// process into a watcher that tears the cluster down when its parent dies without Destroy.
const (
	reapEnvDir    = "PATHCOST_NSKUBE_REAP_DIR"
	reapEnvParent = "PATHCOST_NSKUBE_REAP_PARENT"
)

func (p *Provider) startReaper(dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "logs", "reaper.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), reapEnvDir+"="+dir, reapEnvParent+"="+strconv.Itoa(os.Getpid()))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.reaper = cmd.Process
	return nil
}

func init() {
	dir := os.Getenv(reapEnvDir)
	if dir == "" {
		return
	}
	parent, _ := strconv.Atoi(os.Getenv(reapEnvParent))
	for os.Getppid() == parent {
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "nskube reaper: process %d is gone without Destroy; tearing down %s\n", parent, dir)
	err := Down(context.Background(), filepath.Dir(dir), filepath.Base(dir), os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nskube reaper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
