package nskube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options describe a cluster.
type Options struct {
	Name      string    // cluster name: prefix of node names and cgroups (default "pathcost")
	Nodes     int       // number of nodes (default 2)
	Version   string    // Kubernetes version (default DefaultVersion)
	CNI       string    // CNIBridge (default) or CNIPTP
	StateRoot string    // where clusters keep their files (default $PATHCOST_STATE or /tmp/pathcost-nskube)
	BinDir    string    // where the binaries are (default BinDir(Version), built there if missing)
	Roles     []string  // value of the tcprole label per node (default client,server / client,forward,server)
	Out       io.Writer // progress (default os.Stderr)

	// beforeStart, if set, runs once the cluster's directory exists and before its first process
	// starts (the provider starts its reaper there).
	beforeStart func(*State) error
}

func (o *Options) defaults() {
	if o.Name == "" {
		o.Name = "pathcost"
	}
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.CNI == "" {
		o.CNI = CNIBridge
	}
	if o.StateRoot == "" {
		o.StateRoot = StateRoot()
	}
	if o.BinDir == "" {
		o.BinDir = BinDir(o.Version)
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if len(o.Roles) == 0 {
		o.Roles = DefaultRoles(o.Nodes)
	}
}

// DefaultRoles gives the tcprole label of each node: client, [forward...], server.
func DefaultRoles(n int) []string {
	roles := make([]string, n)
	for i := range roles {
		switch {
		case i == 0:
			roles[i] = "client"
		case i == n-1:
			roles[i] = "server"
		default:
			roles[i] = "forward"
		}
	}
	return roles
}

// RoleLabel is the node label carrying the role given by Options.Roles.
const RoleLabel = "tcprole"

// SandboxImage is the pause image name the nodes' containerd is configured with.
const SandboxImage = "registry.k8s.io/pause:3.10"

// StateRoot is the default directory holding the clusters' files: $PATHCOST_STATE or /tmp/pathcost-nskube.
func StateRoot() string {
	if d := os.Getenv("PATHCOST_STATE"); d != "" {
		return d
	}
	return "/tmp/pathcost-nskube"
}

// State is what a running cluster is made of; saved as cluster.json in its directory so that another
// process (tcpload cluster down, the reaper) can tear it down.
type State struct {
	Name       string      `json:"name"`
	Dir        string      `json:"dir"`
	Version    string      `json:"version"`
	CNI        string      `json:"cni"`
	BinDir     string      `json:"bin_dir"`
	APIPort    int         `json:"api_port"`
	Kubeconfig string      `json:"kubeconfig"`
	VPC        int         `json:"vpc_holder_pid"`
	Nodes      []NodeState `json:"nodes"`
	Procs      []Proc      `json:"procs"`
	CreatedAt  time.Time   `json:"created_at"`
	UpSeconds  float64     `json:"up_seconds"`
	// Owner is the process whose cluster this is (the provider's test process; none for
	// `tcpload cluster up`, whose cluster outlives it), Reaper its reaper. When both are gone the
	// next Up under the same state root tears the cluster down (sweepStale).
	Owner  *ProcRef `json:"owner,omitempty"`
	Reaper *ProcRef `json:"reaper,omitempty"`

	root string // the state root Dir was made under (set by Up and Down): guards the removal of Dir
}

// NodeState is one node.
type NodeState struct {
	Name    string `json:"name"`
	IP      string `json:"ip"`
	PodCIDR string `json:"pod_cidr"`
	Role    string `json:"role"`
	Dir     string `json:"dir"`
	Socket  string `json:"containerd_socket"`
	Holder  int    `json:"holder_pid"`
}

// Proc is one process the provider started.
type Proc struct {
	Name   string `json:"name"`
	Node   string `json:"node,omitempty"`
	PID    int    `json:"pid"`
	Cgroup string `json:"cgroup"`
	Log    string `json:"log"`
}

func (s *State) vpcCgroup() string          { return s.Name + "-vpc" }
func nodeName(cluster string, i int) string { return fmt.Sprintf("%s-node%d", cluster, i) }
func (s *State) save() error                { return writeJSON(filepath.Join(s.Dir, "cluster.json"), s) }
func (s *State) pki(f string) string        { return filepath.Join(s.Dir, "pki", f) }
func (s *State) nsNet(pid int) string       { return fmt.Sprintf("--net=/proc/%d/ns/net", pid) }
func (s *State) nsMnt(pid int) string       { return fmt.Sprintf("--mount=/proc/%d/ns/mnt", pid) }
func (s *State) joinScript() string         { return filepath.Join(s.Dir, "join.sh") }
func (s *State) node(name string) *NodeState {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// writeJSON writes v to path atomically: a temporary file in the same directory, then a rename, so
// a reader (tcpload cluster down, the reaper) never sees a half-written file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// MaxNameLen bounds a cluster name: node names (NAME-nodeN) must stay valid Kubernetes node and
// host names, and cgroup and directory names stay short.
const MaxNameLen = 40

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidName checks a cluster name: it becomes a directory under the state root, cgroup names
// (/NAME-vpc, /NAME-nodeN) and node names, so it must be a plain DNS label: lower-case letters,
// digits and '-', not starting or ending with '-', at most MaxNameLen characters. "", ".." or
// "a/b" would make the cluster's directory the state root itself or a path outside it.
func ValidName(name string) error {
	if len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("nskube: invalid cluster name %q: want lower-case letters, digits and '-' (not first or last), at most %d characters", name, MaxNameLen)
	}
	return nil
}

// LoadState reads the state of cluster name under root ("" = StateRoot()).
func LoadState(root, name string) (*State, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if root == "" {
		root = StateRoot()
	}
	file := filepath.Join(root, name, "cluster.json")
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err // *PathError: names the file
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if s.Name != name || filepath.Clean(s.Dir) != filepath.Join(root, name) {
		return nil, fmt.Errorf("%s: state of cluster %q in %s, not of %q in %s", file, s.Name, s.Dir, name, filepath.Join(root, name))
	}
	s.root = root
	return &s, nil
}

// Requirements lists what is missing on this machine to run a cluster (empty: nothing).
func Requirements() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network, mount and cgroup namespaces)")
	}
	for cmd, pkg := range map[string]string{
		"containerd": "containerd", "ctr": "containerd", "runc": "runc", "iptables": "iptables",
		"conntrack": "conntrack", "socat": "socat", "nsenter": "util-linux", "unshare": "util-linux", "ip": "iproute2",
	} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", cmd, pkg))
		}
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "ptp", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			missing = append(missing, fmt.Sprintf("%s/%s (Debian package containernetworking-plugins)", CNIBinDir, p))
		}
	}
	return missing
}

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
	if miss := Requirements(); len(miss) > 0 {
		return nil, fmt.Errorf("nskube: missing: %s (apt-get install -y %s)", strings.Join(miss, ", "), strings.Join(AptPackages, " "))
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitNetns(pid int) error {
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; i < 100; i++ {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && l != self {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("process %d did not enter a new network namespace", pid)
}

func waitFile(ctx context.Context, path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start runs argv (prefixed by the namespace-entering command pre) in cgroup cg, output to
// logs/NAME.log, in its own process group so a terminal's Ctrl-C does not reach it.
func (s *State) start(ctx context.Context, name, node, cg string, pre []string, argv ...string) (Proc, error) {
	logDir := filepath.Join(s.Dir, "logs")
	if node != "" {
		logDir = filepath.Join(s.Dir, node, "logs")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return Proc{}, err
	}
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer lf.Close()
	full := append(append(append([]string{}, pre...), "sh", s.joinScript(), cg), argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap it if it dies while we live
	p := Proc{Name: name, Node: node, PID: cmd.Process.Pid, Cgroup: cg, Log: logPath}
	s.Procs = append(s.Procs, p) // recorded before the check: teardown finds it by PID either way
	// Teardown finds processes through their cgroups: one that is not in its cgroup is invisible
	// to it. The join script exits (status 125) when it joined no hierarchy; wait until the
	// process is in cg, or fail.
	deadline := time.Now().Add(10 * time.Second)
	for !s.owns(p) {
		select {
		case <-exited:
			if code := cmd.ProcessState.ExitCode(); code == joinFailed {
				return p, fmt.Errorf("%s could not join cgroup /%s in any hierarchy (see %s)", name, cg, logPath)
			}
			return p, fmt.Errorf("%s exited at once (%v; see %s)", name, cmd.ProcessState, logPath)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return p, fmt.Errorf("%s (pid %d) not in cgroup /%s after 10s (see %s)", name, p.PID, cg, logPath)
		}
	}
	return p, nil
}

// inNetStdin runs argv in the network namespace of pid with stdin (e.g. "ip -batch -").
func (s *State) inNetStdin(ctx context.Context, pid int, stdin string, argv ...string) error {
	full := append([]string{s.nsNet(pid), "--"}, argv...)
	ctx, cancel := context.WithTimeout(ctx, nsenterTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.WaitDelay = time.Second
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nsenter %s: %w: %s\n%s", strings.Join(full, " "), err, out, stdin)
	}
	return nil
}

// nsenterTimeout bounds one configuration command run in a namespace (ip, sysctl writes).
const nsenterTimeout = 30 * time.Second

func vpcBatch() string {
	return fmt.Sprintf("link set lo up\nlink add br0 type bridge\naddr add %s/%d dev br0\nlink set br0 up\n", vpcGateway, vpcPrefix)
}

// setSysctl writes a per-network-namespace sysctl inside pid's namespace.
func (s *State) setSysctl(ctx context.Context, pid int, kv ...string) error {
	var sh strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&sh, "echo %s > /proc/sys/%s\n", kv[i+1], strings.ReplaceAll(kv[i], ".", "/"))
	}
	return s.inNetStdin(ctx, pid, "", "sh", "-ec", sh.String())
}

func (s *State) startControlPlane(ctx context.Context) error {
	if err := s.setSysctl(ctx, s.VPC, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	cp := filepath.Join(s.Dir, "cp")
	if err := os.MkdirAll(cp, 0o755); err != nil {
		return err
	}
	pre := []string{"nsenter", s.nsNet(s.VPC), "--"}
	bin := func(b string) string { return filepath.Join(s.BinDir, b) }
	cg := s.vpcCgroup()
	if _, err := s.start(ctx, "etcd", "", cg, pre, bin("etcd"), "--name=nskube", "--data-dir="+filepath.Join(cp, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=nskube=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return err
	}
	p := s.pki
	if _, err := s.start(ctx, "kube-apiserver", "", cg, pre, bin("kube-apiserver"),
		"--advertise-address="+vpcGateway, "--bind-address=0.0.0.0", "--secure-port="+strconv.Itoa(apiPort),
		"--etcd-servers=http://127.0.0.1:2379",
		"--service-cluster-ip-range="+serviceCIDR, "--service-node-port-range=30000-32767",
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.key"), "--service-account-signing-key-file="+p("sa.key"),
		"--authorization-mode=Node,RBAC", "--allow-privileged=true", "--enable-admission-plugins=NodeRestriction",
		"--requestheader-client-ca-file="+p("front-proxy-ca.crt"), "--requestheader-allowed-names=front-proxy-client",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--proxy-client-cert-file="+p("front-proxy-client.crt"), "--proxy-client-key-file="+p("front-proxy-client.key"),
		"--cert-dir="+filepath.Join(cp, "certs"), "--profiling=false", "--v=1"); err != nil {
		return err
	}
	return nil
}

// startControllers starts the controller-manager and the scheduler, once the API server is ready
// (before that, their RBAC roles may not exist yet and they exit).
func (s *State) startControllers(ctx context.Context) error {
	pre := []string{"nsenter", s.nsNet(s.VPC), "--"}
	bin := func(b string) string { return filepath.Join(s.BinDir, b) }
	cg := s.vpcCgroup()
	p := s.pki
	if _, err := s.start(ctx, "kube-controller-manager", "", cg, pre, bin("kube-controller-manager"),
		"--kubeconfig="+p("controller-manager.kubeconfig"), "--authentication-kubeconfig="+p("controller-manager.kubeconfig"),
		"--authorization-kubeconfig="+p("controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--use-service-account-credentials=true",
		"--root-ca-file="+p("ca.crt"), "--service-account-private-key-file="+p("sa.key"),
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--allocate-node-cidrs=false", "--service-cluster-ip-range="+serviceCIDR, "--cluster-name="+s.Name,
		"--profiling=false", "--v=1"); err != nil {
		return err
	}
	_, err := s.start(ctx, "kube-scheduler", "", cg, pre, bin("kube-scheduler"),
		"--kubeconfig="+p("scheduler.kubeconfig"), "--authentication-kubeconfig="+p("scheduler.kubeconfig"),
		"--authorization-kubeconfig="+p("scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false", "--v=1")
	return err
}

// startForwarder listens on 127.0.0.1:APIPort in the host's network namespace and forwards each
// connection to the API server inside the VPC namespace (socat; one nsenter per connection). A
// loopback listener is the only thing the host's namespace gets: no interface, route or rule.
func (s *State) startForwarder(ctx context.Context) (Proc, error) {
	script := filepath.Join(s.Dir, "forward.sh")
	body := fmt.Sprintf("#!/bin/sh\nexec nsenter %s -- socat STDIO TCP:%s:%d\n", s.nsNet(s.VPC), vpcGateway, apiPort)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return Proc{}, err
	}
	return s.start(ctx, "api-forwarder", "", s.vpcCgroup(), nil, "socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", s.APIPort), "EXEC:"+script)
}

func (s *State) startNodeNamespaces(ctx context.Context, i int) error {
	n := &s.Nodes[i]
	for _, d := range []string{"cni", "logs", "containerd"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := createCgroup(n.Name, "system"); err != nil {
		return err
	}
	ms := filepath.Join(n.Dir, "mounts.sh")
	if err := os.WriteFile(ms, mountScript(n.Dir), 0o755); err != nil {
		return err
	}
	h, err := s.start(ctx, "holder", n.Name, n.Name+"/system",
		[]string{"unshare", "--net", "--mount", "--propagation", "private", "--"}, "sh", ms)
	if err != nil {
		return err
	}
	n.Holder = h.PID
	if err := s.save(); err != nil {
		return err
	}
	if err := waitFile(ctx, filepath.Join(n.Dir, "mounted"), 20*time.Second); err != nil {
		return fmt.Errorf("node %s mounts (see %s): %w", n.Name, h.Log, err)
	}
	veth := fmt.Sprintf("veth%d", i+1)
	vb := fmt.Sprintf("link add %s type veth peer name eth0 netns %d\nlink set %s master br0 up\n", veth, n.Holder, veth)
	if err := s.inNetStdin(ctx, s.VPC, vb, "ip", "-batch", "-"); err != nil {
		return err
	}
	nb := fmt.Sprintf("link set lo up\naddr add %s/%d dev eth0\nlink set eth0 up\nroute add default via %s\n", n.IP, vpcPrefix, vpcGateway)
	if err := s.inNetStdin(ctx, n.Holder, nb, "ip", "-batch", "-"); err != nil {
		return err
	}
	kv := []string{"net.ipv4.ip_forward", "1"}
	if s.CNI == CNIPTP {
		// The node answers ARP for its pods' VPC addresses, as an ENI owns its secondary IPs.
		kv = append(kv, "net.ipv4.conf.eth0.proxy_arp", "1", "net.ipv4.neigh.eth0.proxy_delay", "0")
	}
	if err := s.setSysctl(ctx, n.Holder, kv...); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "cni", "10-pathcost.conflist"), cniConfig(s.CNI, i+1), 0o644)
}

// routes: in bridge mode each node's pod CIDR is routed to it from the VPC and from every other
// node (host-gw, a Global Router route table). In ptp mode pod addresses are in the VPC subnet.
func (s *State) routes(ctx context.Context) error {
	if s.CNI != CNIBridge {
		return nil
	}
	var vpc strings.Builder
	for i, n := range s.Nodes {
		fmt.Fprintf(&vpc, "route add %s via %s\n", n.PodCIDR, n.IP)
		var b strings.Builder
		for j, m := range s.Nodes {
			if j != i {
				fmt.Fprintf(&b, "route add %s via %s\n", m.PodCIDR, m.IP)
			}
		}
		if b.Len() > 0 {
			if err := s.inNetStdin(ctx, n.Holder, b.String(), "ip", "-batch", "-"); err != nil {
				return err
			}
		}
	}
	return s.inNetStdin(ctx, s.VPC, vpc.String(), "ip", "-batch", "-")
}

func (s *State) nodePre(n *NodeState) []string {
	return []string{"nsenter", s.nsNet(n.Holder), s.nsMnt(n.Holder), "--"}
}

func (s *State) startContainerd(ctx context.Context, i int) error {
	n := &s.Nodes[i]
	cfg := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(cfg, render(containerdTmpl, map[string]string{
		"Node": n.Name, "Dir": n.Dir, "Socket": n.Socket, "SandboxImage": SandboxImage, "CNIBin": CNIBinDir,
	}), 0o644); err != nil {
		return err
	}
	_, err := s.start(ctx, "containerd", n.Name, n.Name+"/system", s.nodePre(n), "containerd", "--config", cfg)
	return err
}

func (s *State) startKubelet(ctx context.Context, i int) error {
	n := &s.Nodes[i]
	data := map[string]string{
		"Node": n.Name, "IP": n.IP, "Dir": n.Dir, "PKI": filepath.Join(s.Dir, "pki"), "Socket": n.Socket,
		"Cgroup": n.Name, "PodCIDR": n.PodCIDR, "ClusterCIDR": clusterCIDR(s.CNI), "VPC": vpcCIDR,
	}
	kc := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(kc, render(kubeletTmpl, data), 0o644); err != nil {
		return err
	}
	kp := filepath.Join(n.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(kp, render(kubeProxyTmpl, data), 0o644); err != nil {
		return err
	}
	labels := fmt.Sprintf("%s=%s,pathcost.io/cni=%s,pathcost.io/node-index=%d", RoleLabel, n.Role, s.CNI, i+1)
	if _, err := s.start(ctx, "kubelet", n.Name, n.Name+"/system", s.nodePre(n), filepath.Join(s.BinDir, "kubelet"),
		"--config="+kc, "--kubeconfig="+filepath.Join(n.Dir, "kubelet.kubeconfig"),
		"--hostname-override="+n.Name, "--node-ip="+n.IP, "--node-labels="+labels, "--v=1"); err != nil {
		return err
	}
	_, err := s.start(ctx, "kube-proxy", n.Name, n.Name+"/system", s.nodePre(n), filepath.Join(s.BinDir, "kube-proxy"),
		"--config="+kp, "--v=1")
	return err
}

// adminHTTP is an HTTP client with the admin credentials, through the loopback forwarder.
func (s *State) adminHTTP() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(s.pki("admin.crt"), s.pki("admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(s.pki("ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}}, nil
}

func (s *State) waitAPI(ctx context.Context, d time.Duration) error {
	c, err := s.adminHTTP()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.APIPort)
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		if !s.alive("kube-apiserver") || !s.alive("etcd") {
			return fmt.Errorf("control plane died; see %s/logs", s.Dir)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("API server not ready after %s: %s (logs in %s/logs)", d, last, s.Dir)
}

func (s *State) alive(name string) bool {
	for _, p := range s.Procs {
		if p.Name == name && !isZombie(p.PID) {
			return true
		}
	}
	return false
}

// ProcRef identifies a process across PID reuse: its PID and its start time (clock ticks after
// boot, field 22 of /proc/PID/stat).
type ProcRef struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procRef returns the ProcRef of a running process (nil if it is gone).
func procRef(pid int) *ProcRef {
	st, ok := procStart(pid)
	if !ok {
		return nil
	}
	return &ProcRef{PID: pid, Start: st}
}

func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// Alive says whether the process is still running (the same one, not a reuse of its PID).
func (r *ProcRef) Alive() bool {
	if r == nil {
		return false
	}
	st, ok := procStart(r.PID)
	return ok && st == r.Start
}

// sweepStale tears down every cluster under root that has an owner (made by the provider) when
// its owner and its reaper are both gone. Clusters of `tcpload cluster up` have no owner and are
// never swept.
func sweepStale(ctx context.Context, root string, out io.Writer) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || ValidName(e.Name()) != nil {
			continue
		}
		st, err := LoadState(root, e.Name())
		if err != nil || st.Owner == nil || st.Owner.Alive() || st.Reaper.Alive() {
			continue
		}
		fmt.Fprintf(out, "nskube: cluster %s: its process (pid %d) and reaper are gone; tearing it down\n", st.Name, st.Owner.PID)
		if err := DownState(ctx, st, out); err != nil {
			fmt.Fprintf(out, "nskube: stale cluster %s: %v\n", st.Name, err)
		}
	}
}
