package e2e

// This is the one file of the suite that knows the realisations: it maps -provider to an
// implementation of provider.Provider. Everything else talks to provider.Provider, Path and Host.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/interrupt"
	"github.com/pathcost/pathcost/pkg/localnet"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/provider/kube"
	"github.com/pathcost/pathcost/pkg/provider/local"
	"github.com/pathcost/pathcost/pkg/provider/ssh"
	"github.com/pathcost/pathcost/pkg/provider/vm"
	"github.com/pathcost/pathcost/pkg/sidecar"
	"github.com/pathcost/pathcost/pkg/topo"
)

// providerNames are the -provider values.
var providerNames = []string{"local", "nskube", "kubeconfig", "kind", "ssh", "vm"}

// openProvider returns the provider named by -provider. A non-empty skip says why this machine
// cannot run any scenario with it (the tests then skip with that reason); an error is a broken
// set-up or bad input and ends the run (a usageError: exit 2; otherwise 1). work is a directory
// for the run's own files (the tcpload binary), removed at the end.
func openProvider(ctx context.Context, name string, scenarios []topo.Spec, work string) (p provider.Provider, skip string, err error) {
	congestion = resolveCongestion(*flagCongestion, name)
	switch name {
	case "local":
		return openLocal(scenarios, work)
	case "nskube", "kubeconfig", "kind":
		return openKube(ctx, name, scenarios, work)
	case "ssh":
		return openSSH(work)
	case "vm":
		return openVM(work)
	default:
		return nil, "", usageError{fmt.Errorf("-provider %q unknown: want one of %s", name, strings.Join(providerNames, ", "))}
	}
}

// resolveCongestion turns -congestion auto into what provider name runs with: cubic for the
// emulation (with this machine's bbr an unpaced pair is bimodal), each host's own default ("")
// for real hosts, which are measured as they are (a pod may not even be allowed to choose: an
// algorithm outside net.ipv4.tcp_allowed_congestion_control needs CAP_NET_ADMIN).
func resolveCongestion(flagValue, name string) string {
	switch {
	case flagValue != "auto":
		return flagValue
	case name == "local":
		return "cubic"
	default:
		return ""
	}
}

// usageError is bad input: the run exits 2.
type usageError struct{ error }

// openLocal builds the tcpload binary the namespaces run and checks that this machine can run
// the local provider: without root every scenario skips; as root a missing tool is a broken
// set-up, not a reason to pass without measuring.
func openLocal(scenarios []topo.Spec, work string) (provider.Provider, string, error) {
	if runtime.GOOS != "linux" {
		return nil, "the local provider needs Linux network namespaces", nil
	}
	if os.Geteuid() != 0 {
		return nil, "the local provider needs root (it creates network namespaces, veth pairs, bridges and iptables rules); run as root, e.g. sudo make e2e", nil
	}
	p := local.New("")
	p.Congestion = congestion
	var missing []string
	for _, s := range scenarios {
		if err := p.Check(context.Background(), s); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		return nil, "", fmt.Errorf("cannot run the scenarios: %s (make e2e installs what is missing as root on Debian/Ubuntu)", strings.Join(missing, "; "))
	}
	// SIGINT/SIGTERM: localnet tears down every environment of this process, then the suite
	// exits with 128+signal (a second signal exits at once)
	localnet.HandleSignals(exitOnSignal)
	bin, err := buildTCPLoad(work)
	if err != nil {
		return nil, "", err
	}
	p.Binary = bin
	return p, "", nil
}

// sidecarRegressionPossible says whether the suite's provider can start sidecars with an
// environment of the test's (sidecarRegression).
func sidecarRegressionPossible() bool {
	_, ok := suite.provider.(*local.Provider)
	return ok
}

// sidecarRegression returns the suite's provider again with env added to its emulated sidecars'
// environment (make gate-power preloads its CPU burner with it); sidecarRegressionPossible must
// hold. What it leaves behind is checked when t ends.
func sidecarRegression(t *testing.T, env []string) provider.Provider {
	lp, ok := suite.provider.(*local.Provider)
	require.True(t, ok, "-provider %s cannot preload into its sidecars", suite.provider.Name())
	p := local.New(lp.Binary)
	p.Congestion, p.SidecarEnv = lp.Congestion, env
	t.Cleanup(func() {
		left, err := p.Leftovers(context.Background())
		assert.NoError(t, err)
		assert.Empty(t, left, "what the burning sidecars' paths left behind")
	})
	return p
}

// runReaperIfAsked turns this process into nskube's reaper when a cluster of an earlier run of
// this binary asked for one (see nskube.RunReaperIfAsked); it must be the first thing TestMain does.
func runReaperIfAsked() (bool, error) { return nskube.RunReaperIfAsked() }

// exitOnSignal is the suite's interrupt.Handler: the provider has torn down what it could.
func exitOnSignal(sig os.Signal, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v: teardown: %v\n", sig, err)
	}
	os.Exit(interrupt.ExitCode(sig))
}

// closeOnSignal closes p on SIGINT, SIGTERM or SIGHUP (the ssh provider stops its processes and
// undoes its changes on the hosts; the vm provider also stops the VMs and removes their
// namespace), then the suite exits with 128+signal; a second signal exits at once.
func closeOnSignal(p provider.Closer) {
	interrupt.Watch(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return p.Close(ctx)
	}, exitOnSignal, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
}

// buildTCPLoad builds a static tcpload binary into dir.
func buildTCPLoad(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build tcpload: %w", err)
	}
	bin := filepath.Join(dir, "tcpload")
	build := exec.Command("go", "build", "-o", bin, "../cmd/tcpload")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tcpload: %w\n%s", err, out)
	}
	return bin, nil
}

// Flags of the Kubernetes providers (-kubeconfig is e2e-framework's own flag, $KUBECONFIG when empty).
var (
	flagImage          = flag.String("image", "", "kubeconfig: the tcpload image the cluster pulls (push one with: tcpload image push REF; default pathcost/tcpload:dev, as tcpload cluster load names it); nskube and kind build and load it")
	flagCluster        = flag.String("cluster", "", "nskube: use this running cluster (make cluster-up) instead of bringing one up for the run")
	flagKeep           = flag.Bool("keep", false, "nskube/kubeconfig/kind: keep each scenario's namespace for debugging (prints how to delete it)")
	flagNodePort       = flag.Int("nodeport", kube.DefaultNodePort, "nodeport: the NodePort of the Service (30000-32767)")
	flagPodAnnotations = flag.String("pod-annotations", "", "annotations k=v,... on the scenario's pod-network pods (TKE VPC-CNI: tke.cloud.tencent.com/networks=tke-route-eni)")
	flagPodResources   = flag.String("pod-resources", "", "resources name=qty,... requested by the scenario's pod-network pods (TKE VPC-CNI: tke.cloud.tencent.com/eni-ip=1)")
	flagSidecarImages  = flag.String("sidecar-images", "", "kubeconfig without Istio: HAPROXY_REF,INIT_REF of the emulated sidecar's images in a registry the cluster pulls from")
)

// openKube opens a Kubernetes provider: nskube (a cluster brought up here, or -cluster), kubeconfig
// (-kubeconfig or $KUBECONFIG) or kind. Bad input (flags, a missing or unreadable kubeconfig) is
// a usageError; what this machine lacks (root for nskube, docker for kind) skips every scenario.
func openKube(ctx context.Context, name string, scenarios []topo.Spec, work string) (provider.Provider, string, error) {
	o, err := kubeOptions()
	if err != nil {
		return nil, "", usageError{err}
	}
	var k *kube.Kube
	switch name {
	case "nskube":
		k, err = kube.OpenNSKube(ctx, kube.NSKubeConfig{Cluster: *flagCluster, Scenarios: scenarios, WorkDir: work, Options: o})
	case "kind":
		k, err = kube.OpenKind(ctx, kube.KindConfig{WorkDir: work, Scenarios: scenarios, Options: o})
	case "kubeconfig":
		path := ""
		if f := flag.Lookup("kubeconfig"); f != nil {
			path = f.Value.String()
		}
		k, err = kube.OpenKubeconfig(ctx, kube.KubeconfigPath(path), o)
	}
	switch {
	case provider.IsSkip(err):
		return nil, err.Error(), nil
	case kube.IsConfigError(err):
		return nil, "", usageError{err}
	case err != nil:
		return nil, "", err
	}
	k.HandleSignals(exitOnSignal)
	return k, "", nil
}

// kubeOptions turns the flags into the realisation's options.
func kubeOptions() (kube.Options, error) {
	var o kube.Options
	var err error
	if o.PodAnnotations, err = kube.ParseKV(*flagPodAnnotations); err != nil {
		return o, fmt.Errorf("-pod-annotations: %w", err)
	}
	if o.PodResources, err = kube.ParseResources(*flagPodResources); err != nil {
		return o, fmt.Errorf("-pod-resources: %w", err)
	}
	if *flagNodePort < 30000 || *flagNodePort > 32767 {
		return o, fmt.Errorf("-nodeport %d: want 30000-32767 (the default NodePort range)", *flagNodePort)
	}
	o.NodePort = int32(*flagNodePort)
	o.Image, o.Keep = *flagImage, *flagKeep
	if *flagImage != "" && *flagProvider != "kubeconfig" {
		return o, errors.New("-image is for -provider kubeconfig (nskube and kind build and load the image)")
	}
	if *flagCluster != "" && *flagProvider != "nskube" {
		return o, errors.New("-cluster is for -provider nskube")
	}
	if *flagSidecarImages != "" {
		refs := strings.Split(*flagSidecarImages, ",")
		if len(refs) != 2 || refs[0] == "" || refs[1] == "" {
			return o, fmt.Errorf("-sidecar-images %q: want HAPROXY_REF,INIT_REF", *flagSidecarImages)
		}
		o.Sidecar = &sidecar.Emulated{HAProxyImage: refs[0], InitImage: refs[1]}
	}
	return o, nil
}

// Flags of -provider ssh and -provider vm.
var (
	flagHosts      = flag.String("hosts", "", "-provider ssh: client=USER@HOST[:PORT],server=USER@HOST[,forwarder=USER@HOST] (forwarder for nodeport), or a YAML hosts file (see README)")
	flagSSHKey     = flag.String("ssh-key", "", "-provider ssh: private key file (without passphrase; keys in ssh-agent are used too)")
	flagKnownHosts = flag.String("ssh-known-hosts", "", "-provider ssh: known_hosts file (default ~/.ssh/known_hosts)")
	flagInsecure   = flag.Bool("ssh-insecure", false, "-provider ssh: accept any host key (throwaway VMs only)")
	flagSSHKeep    = flag.Bool("ssh-keep", false, "-provider ssh: leave the staged tcpload on the hosts, so the next run copies nothing")
	flagVMCache    = flag.String("vm-cache", vm.DefaultCacheDir, "-provider vm: image cache directory")
	flagVMMemory   = flag.String("vm-memory", "1024M", "-provider vm: memory per VM")
	flagVMHyper    = flag.String("vm-hypervisor", "auto", "-provider vm: auto (QEMU with KVM where KVM runs a stock kernel, else User-Mode Linux), uml, kvm, or tcg (QEMU emulated: slow, runs anywhere)")
)

// openSSH reads -hosts and the key flags; hosts are contacted only when a scenario needs them.
func openSSH(work string) (provider.Provider, string, error) {
	if *flagHosts == "" {
		return nil, "", usageError{fmt.Errorf("-provider ssh needs -hosts client=USER@HOST,server=USER@HOST[,forwarder=USER@HOST] or a hosts file")}
	}
	hosts, err := ssh.ParseHosts(*flagHosts)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("-hosts: %w", err)}
	}
	bin, err := buildTCPLoad(work)
	if err != nil {
		return nil, "", err
	}
	p, err := ssh.New(ssh.Config{Hosts: hosts, Binary: bin, KeyFile: *flagSSHKey, KnownHosts: *flagKnownHosts, Insecure: *flagInsecure, Keep: *flagSSHKeep})
	if err != nil {
		return nil, "", usageError{err}
	}
	closeOnSignal(p)
	return p, "", nil
}

// openVM checks that this machine can build and boot the VMs (else every scenario skips, saying
// what is missing); the image is built and the VMs booted on the first scenario.
func openVM(work string) (provider.Provider, string, error) {
	hv, err := vm.ParseHypervisor(*flagVMHyper)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("-vm-hypervisor: %w", err)}
	}
	if err := vm.Requirements(hv); err != nil {
		return nil, err.Error(), nil
	}
	bin, err := buildTCPLoad(work)
	if err != nil {
		return nil, "", err
	}
	p := vm.New(vm.Config{Binary: bin, CacheDir: *flagVMCache, Memory: *flagVMMemory, Hypervisor: hv})
	closeOnSignal(p)
	return p, "", nil
}
