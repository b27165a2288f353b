package e2e

// This is the one file of the suite that knows the realisations: it maps -provider to an
// implementation of provider.Provider. Everything else talks to provider.Provider, Path and Host.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pathcost/pathcost/pkg/localnet"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/provider/local"
	"github.com/pathcost/pathcost/pkg/provider/ssh"
	"github.com/pathcost/pathcost/pkg/provider/vm"
	"github.com/pathcost/pathcost/pkg/topo"
)

// providerNames are the -provider values.
var providerNames = []string{"local", "nskube", "kubeconfig", "kind", "ssh", "vm"}

// openProvider returns the provider named by -provider. A non-empty skip says why this machine
// cannot run any scenario with it (the tests then skip with that reason); an error is a broken
// set-up or bad input and ends the run (a usageError: exit 2; otherwise 1). work is a directory
// for the run's own files (the tcpload binary), removed at the end.
func openProvider(ctx context.Context, name string, scenarios []topo.Spec, work string) (p provider.Provider, skip string, err error) {
	switch name {
	case "local":
		return openLocal(scenarios, work)
	case "ssh":
		return openSSH(work)
	case "vm":
		return openVM(work)
	case "nskube", "kubeconfig", "kind":
		return nil, "", usageError{fmt.Errorf("-provider %s is not implemented yet for the scenario suite (local, ssh and vm are); e2e/smoke runs the nskube cluster smoke test", name)}
	default:
		return nil, "", usageError{fmt.Errorf("-provider %q unknown: want one of %s", name, strings.Join(providerNames, ", "))}
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
	var missing []string
	for _, s := range scenarios {
		if err := p.Check(context.Background(), s); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		return nil, "", fmt.Errorf("cannot run the scenarios: %s (make e2e installs what is missing as root on Debian/Ubuntu)", strings.Join(missing, "; "))
	}
	localnet.HandleSignals()
	bin, err := buildTCPLoad(work)
	if err != nil {
		return nil, "", err
	}
	p.Binary = bin
	return p, "", nil
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

// Flags of -provider ssh and -provider vm.
var (
	flagHosts      = flag.String("hosts", "", "-provider ssh: client=USER@HOST[:PORT],server=USER@HOST[,forwarder=USER@HOST] (forwarder for nodeport), or a YAML hosts file (see README)")
	flagSSHKey     = flag.String("ssh-key", "", "-provider ssh: private key file (without passphrase; keys in ssh-agent are used too)")
	flagKnownHosts = flag.String("ssh-known-hosts", "", "-provider ssh: known_hosts file (default ~/.ssh/known_hosts)")
	flagInsecure   = flag.Bool("ssh-insecure", false, "-provider ssh: accept any host key (throwaway VMs only)")
	flagSSHKeep    = flag.Bool("ssh-keep", false, "-provider ssh: leave the staged tcpload on the hosts, so the next run copies nothing")
	flagVMCache    = flag.String("vm-cache", vm.DefaultCacheDir, "-provider vm: image cache directory")
	flagVMMemory   = flag.String("vm-memory", "1024M", "-provider vm: memory per VM")
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
	return p, "", nil
}

// openVM checks that this machine can build and boot the VMs (else every scenario skips, saying
// what is missing); the image is built and the VMs booted on the first scenario.
func openVM(work string) (provider.Provider, string, error) {
	if err := vm.Requirements(); err != nil {
		return nil, err.Error(), nil
	}
	bin, err := buildTCPLoad(work)
	if err != nil {
		return nil, "", err
	}
	return vm.New(vm.Config{Binary: bin, CacheDir: *flagVMCache, Memory: *flagVMMemory}), "", nil
}
