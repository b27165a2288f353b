package nskube

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Requirements reports what this machine lacks to run a cluster: root, and each missing
// program or CNI plugin with the Debian package that provides it. It returns nil when nothing
// is missing.
func Requirements() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network, mount and cgroup namespaces)")
	}
	for _, cmd := range sortedKeys(requiredCommands) {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", cmd, requiredCommands[cmd]))
		}
	}
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			missing = append(missing, fmt.Sprintf("%s/%s (Debian package containernetworking-plugins)", CNIBinDir, p))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("nskube: missing: %s (as root: apt-get install -y %s)", strings.Join(missing, ", "), strings.Join(AptPackages, " "))
}

// requiredCommands maps each program a cluster runs to its Debian package.
var requiredCommands = map[string]string{
	"containerd": "containerd", "ctr": "containerd", "runc": "runc", "iptables": "iptables",
	"conntrack": "conntrack", "socat": "socat", "nsenter": "util-linux", "unshare": "util-linux", "ip": "iproute2",
}

// cniPlugins are the CNI plugins (in CNIBinDir) the nodes' CNI configuration uses.
var cniPlugins = []string{"bridge", "host-local", "portmap", "ptp", "loopback"}

// CNIBinDir is where Debian's containernetworking-plugins puts the plugins.
const CNIBinDir = "/usr/lib/cni"

// AptPackages are the Debian packages a cluster needs.
var AptPackages = []string{"containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "socat"}

// Up builds what is missing and brings a cluster up; on failure everything it started is torn down.
func Up(ctx context.Context, o Options) (st *State, err error) {
	o.defaults()
	t0 := time.Now()
	if err := ValidName(o.Name); err != nil {
		return nil, err
	}
	if o.CNI != CNIBridge && o.CNI != CNIPTP {
		return nil, fmt.Errorf("nskube: unknown CNI mode %q (bridge or ptp)", o.CNI)
	}
	if o.Nodes < 1 || o.Nodes > 9 {
		return nil, fmt.Errorf("nskube: %d nodes: 1..9 supported", o.Nodes)
	}
	if len(o.Roles) != o.Nodes {
		return nil, fmt.Errorf("nskube: %d roles for %d nodes", len(o.Roles), o.Nodes)
	}
	if err := Requirements(); err != nil {
		return nil, err
	}
	if miss := MissingBinaries(o.BinDir); len(miss) > 0 {
		if o.BinDir != BinDir(o.Version) {
			return nil, fmt.Errorf("nskube: %s lacks %s", o.BinDir, strings.Join(miss, ", "))
		}
		if _, err := Build(ctx, BuildOptions{Version: o.Version, Out: o.Out}); err != nil {
			return nil, err
		}
	}
	// Clusters under this root whose owning process and reaper are both dead (SIGKILL of the
	// process group, a reboot of nothing but a container...) are torn down first.
	sweepStale(ctx, o.StateRoot, o.Out)
	dir := filepath.Join(o.StateRoot, o.Name)
	if _, err := os.Stat(filepath.Join(dir, "cluster.json")); err == nil {
		return nil, fmt.Errorf("nskube: cluster %q already exists (%s); tear it down first (tcpload cluster down --name %s)", o.Name, dir, o.Name)
	}
	// Leftovers of a cluster of this name that died before saving its state.
	_ = Down(ctx, o.StateRoot, o.Name, io.Discard)

	st = &State{Name: o.Name, Dir: dir, Version: o.Version, CNI: o.CNI, BinDir: o.BinDir, CreatedAt: time.Now(), root: o.StateRoot}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// Also on cancellation (Ctrl-C of tcpload cluster up, a signal caught by the provider):
			// the teardown gets a fresh context.
			fmt.Fprintf(o.Out, "nskube: bring-up failed, tearing down: %v\n", err)
			if derr := DownState(context.Background(), st, o.Out); derr != nil {
				fmt.Fprintf(o.Out, "nskube: teardown after failed bring-up: %v\n", derr)
			}
		}
	}()
	if o.beforeStart != nil {
		if err := o.beforeStart(st); err != nil {
			return st, err
		}
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(o.Out, "nskube: [%5.1fs] %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, a...))
	}
	for i := 1; i <= o.Nodes; i++ {
		name := nodeName(o.Name, i)
		st.Nodes = append(st.Nodes, NodeState{
			Name: name, IP: nodeIP(i), PodCIDR: podCIDR(o.CNI, i), Role: o.Roles[i-1],
			Dir: filepath.Join(dir, name), Socket: filepath.Join(dir, name, "containerd.sock"),
		})
	}
	if st.APIPort, err = freePort(); err != nil {
		return st, err
	}
	if err := st.save(); err != nil {
		return st, err
	}
	if err := os.WriteFile(st.joinScript(), []byte(joinScript), 0o755); err != nil {
		return st, err
	}
	if err := st.writePKI(); err != nil {
		return st, err
	}
	pauseTar, err := pauseImage(ctx)
	if err != nil {
		return st, err
	}

	// The VPC: a network namespace with a bridge, and the control plane in it.
	if err := createCgroup(st.vpcCgroup()); err != nil {
		return st, err
	}
	vpc, err := st.start(ctx, "vpc-holder", "", st.vpcCgroup(), []string{"unshare", "--net", "--"}, "sleep", "infinity")
	if err != nil {
		return st, err
	}
	st.VPC = vpc.PID
	if err := waitNetns(vpc.PID); err != nil {
		return st, err
	}
	if err := st.save(); err != nil {
		return st, err
	}
	if err := st.inNetStdin(ctx, vpc.PID, vpcBatch(), "ip", "-batch", "-"); err != nil {
		return st, err
	}
	logf("VPC namespace (holder pid %d), bridge %s", vpc.PID, vpcGateway)

	if err := st.startControlPlane(ctx); err != nil {
		return st, err
	}
	if _, err := st.startForwarder(ctx); err != nil {
		return st, err
	}
	st.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := st.save(); err != nil {
		return st, err
	}

	for i := range st.Nodes {
		if err := st.startNodeNamespaces(ctx, i); err != nil {
			return st, err
		}
		logf("node %s: namespaces (holder pid %d), %s, pods %s (%s)", st.Nodes[i].Name, st.Nodes[i].Holder, st.Nodes[i].IP, st.Nodes[i].PodCIDR, o.CNI)
	}
	if err := st.routes(ctx); err != nil {
		return st, err
	}
	for i := range st.Nodes {
		if err := st.startContainerd(ctx, i); err != nil {
			return st, err
		}
	}
	for i := range st.Nodes {
		if err := waitFile(ctx, st.Nodes[i].Socket, 30*time.Second); err != nil {
			return st, fmt.Errorf("containerd of %s: %w", st.Nodes[i].Name, err)
		}
		if err := ImportArchive(ctx, st.Nodes[i].Socket, pauseTar); err != nil {
			return st, err
		}
	}
	logf("containerd on every node, pause image loaded")
	if err := st.waitAPI(ctx, 90*time.Second); err != nil {
		return st, err
	}
	logf("API server ready at https://127.0.0.1:%d (in the VPC: https://%s:%d)", st.APIPort, vpcGateway, apiPort)
	if err := st.startControllers(ctx); err != nil {
		return st, err
	}
	for i := range st.Nodes {
		if err := st.startKubelet(ctx, i); err != nil {
			return st, err
		}
	}
	if err := st.save(); err != nil {
		return st, err
	}
	if err := st.waitNodes(ctx, 120*time.Second); err != nil {
		return st, err
	}
	st.UpSeconds = time.Since(t0).Seconds()
	logf("%d nodes Ready; kubeconfig %s", len(st.Nodes), st.Kubeconfig)
	return st, st.save()
}
