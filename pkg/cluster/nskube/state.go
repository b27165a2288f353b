package nskube

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/pathcost/pathcost/pkg/interrupt"
	"github.com/pathcost/pathcost/pkg/jsonfile"
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

	// onSignal is the provider's signal handler (WithSignalHandler); Up does not use it.
	onSignal interrupt.Handler
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
func (s *State) save() error                { return jsonfile.Write(filepath.Join(s.Dir, "cluster.json"), s) }
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
