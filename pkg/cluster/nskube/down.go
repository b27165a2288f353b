package nskube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down tears down cluster name under root ("" = StateRoot()): by the PIDs it recorded, then every
// process left in its cgroups, then the cgroups and its directory. It works from the saved state
// and, if that is missing, from the cgroup names alone. Nothing else on the host is touched.
func Down(ctx context.Context, root, name string, out io.Writer) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if root == "" {
		root = StateRoot()
	}
	st, err := LoadState(root, name)
	if err != nil {
		st = &State{Name: name, Dir: filepath.Join(root, name), root: root}
		// Find nodes from the cgroups a crashed bring-up may have left.
		for _, h := range cgroupHierarchies() {
			ms, _ := filepath.Glob(filepath.Join(h, name+"-node*"))
			for _, m := range ms {
				if st.node(filepath.Base(m)) == nil {
					st.Nodes = append(st.Nodes, NodeState{Name: filepath.Base(m)})
				}
			}
		}
	}
	return DownState(ctx, st, out)
}

// DownState tears down the cluster described by st.
func DownState(ctx context.Context, st *State, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	if err := ValidName(st.Name); err != nil {
		return err
	}
	t0 := time.Now()
	var errs []error
	// 1. kube-proxy and kubelet, by PID, politely.
	st.stopProcs(func(p Proc) bool { return p.Name == "kube-proxy" || p.Name == "kubelet" }, 5*time.Second)
	// 2. every container (everything under NODE/kubepods), then containerd and the shims and the
	//    holder (everything left under NODE).
	for _, n := range st.Nodes {
		killCgroup(n.Name+"/kubepods", syscall.SIGKILL, 10*time.Second)
	}
	st.stopProcs(func(p Proc) bool { return p.Name == "containerd" }, 5*time.Second)
	for _, n := range st.Nodes {
		if left := killCgroup(n.Name, syscall.SIGKILL, 10*time.Second); len(left) > 0 {
			errs = append(errs, fmt.Errorf("node %s: processes %v survive SIGKILL", n.Name, left))
		}
	}
	// 3. the control plane, the forwarder and the VPC holder.
	st.stopProcs(func(p Proc) bool { return p.Node == "" && p.Name != "vpc-holder" }, 5*time.Second)
	if left := killCgroup(st.vpcCgroup(), syscall.SIGKILL, 10*time.Second); len(left) > 0 {
		errs = append(errs, fmt.Errorf("VPC: processes %v survive SIGKILL", left))
	}
	// 4. cgroups (the kubelets' subtrees too). The namespaces and every mount in them went with
	//    their last process.
	for _, n := range st.Nodes {
		if err := removeCgroup(n.Name); err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", n.Name, err))
		}
	}
	if err := removeCgroup(st.vpcCgroup()); err != nil {
		errs = append(errs, fmt.Errorf("cgroup %s: %w", st.vpcCgroup(), err))
	}
	// 5. the cluster's directory: only ROOT/NAME itself, never the root or a path outside it.
	if dir, ok := st.ownDir(); ok {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	} else if st.Dir != "" {
		errs = append(errs, fmt.Errorf("not removing %s: not the directory of cluster %s under %s", st.Dir, st.Name, st.root))
	}
	fmt.Fprintf(out, "nskube: cluster %s torn down in %.1fs\n", st.Name, time.Since(t0).Seconds())
	left, err := st.Leftovers()
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
	}
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stopProcs sends SIGTERM to the selected recorded processes that are still the program they
// were (a PID may have been reused), waits up to d, then SIGKILLs the rest.
func (s *State) stopProcs(sel func(Proc) bool, d time.Duration) {
	var pids []int
	for _, p := range s.Procs {
		if sel(p) && s.owns(p) {
			_ = syscall.Kill(p.PID, syscall.SIGTERM)
			pids = append(pids, p.PID)
		}
	}
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if running(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ownDir returns the cluster's directory if it is exactly ROOT/NAME for a valid name (root: the
// state root it was made or loaded under; without one, the parent of Dir).
func (s *State) ownDir() (string, bool) {
	if s.Dir == "" || ValidName(s.Name) != nil {
		return "", false
	}
	root := s.root
	if root == "" {
		root = filepath.Dir(filepath.Clean(s.Dir))
	}
	want := filepath.Join(root, s.Name)
	return want, filepath.Clean(s.Dir) == want
}

// owns says whether p.PID is still the process the provider started: in its cgroup (or below it)
// in some hierarchy.
func (s *State) owns(p Proc) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cgroup")
	if err != nil {
		return false
	}
	want := "/" + p.Cgroup
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && (f[2] == want || strings.HasPrefix(f[2], want+"/")) {
			return true
		}
	}
	return false
}

// Leftovers lists whatever of the cluster still exists on the host: processes in its cgroups or
// naming its directory, its cgroups, its directory, mounts below it. Empty after a clean
// Destroy; an error when the host could not be searched (the list then holds what was found).
func (s *State) Leftovers() ([]string, error) {
	var left []string
	var errs []error
	hierarchies, err := readCgroupHierarchies()
	if err != nil {
		errs = append(errs, err)
	}
	groups := []string{s.vpcCgroup()}
	for _, n := range s.Nodes {
		groups = append(groups, n.Name)
	}
	for _, h := range hierarchies {
		ms, _ := filepath.Glob(filepath.Join(h, s.Name+"-node*"))
		for _, m := range ms {
			groups = append(groups, filepath.Base(m))
		}
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		if pids := cgroupPIDs(g); len(pids) > 0 {
			left = append(left, fmt.Sprintf("processes %v in cgroup /%s", pids, g))
		}
		if dirs := cgroupExists(g); len(dirs) > 0 {
			left = append(left, fmt.Sprintf("cgroup /%s (%d hierarchies)", g, len(dirs)))
		}
	}
	if s.Dir != "" {
		if _, err := os.Stat(s.Dir); err == nil {
			left = append(left, "directory "+s.Dir)
		}
		pids, err := procsMentioning(s.Dir)
		if err != nil {
			errs = append(errs, err)
		}
		if len(pids) > 0 {
			left = append(left, fmt.Sprintf("processes %v mentioning %s", pids, s.Dir))
		}
		m, err := mountsMentioning(s.Dir)
		if err != nil {
			errs = append(errs, err)
		}
		if len(m) > 0 {
			left = append(left, "mounts "+strings.Join(m, ", "))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return left, fmt.Errorf("nskube: leftovers of %s: %w", s.Name, err)
	}
	return left, nil
}

// procsMentioning lists the live processes (but this one) whose command line names path s.
func procsMentioning(s string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && mentionsPath(string(b), s) && running(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// mountsMentioning lists this mount namespace's mounts (mountinfo lines) naming path s.
func mountsMentioning(s string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if mentionsPath(l, s) {
			out = append(out, l)
		}
	}
	return out, nil
}

// mentionsPath says whether text names dir or a path below it: dir must be a whole path, not a
// piece of a longer one (/tmp/x/a does not mention /tmp/x/ab nor /y/tmp/x/a).
func mentionsPath(text, dir string) bool {
	dir = filepath.Clean(dir)
	if dir == "" || dir == "/" || dir == "." {
		return false
	}
	nameChar := func(c byte) bool {
		return c != '/' && c != 0 && c != ' ' && c != '\t' && c != '\n' && c != '=' && c != ':' && c != ',' && c != '"' && c != '\''
	}
	for i := 0; ; {
		j := strings.Index(text[i:], dir)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(dir)
		before := start == 0 || (!nameChar(text[start-1]) && text[start-1] != '/')
		after := end == len(text) || !nameChar(text[end])
		if before && after {
			return true
		}
		i = start + 1
	}
}

// Leftovers is State.Leftovers for a cluster known only by name (under root; "" = StateRoot()).
func Leftovers(root, name string) ([]string, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if root == "" {
		root = StateRoot()
	}
	st, err := LoadState(root, name)
	if err != nil {
		st = &State{Name: name, Dir: filepath.Join(root, name), root: root}
	}
	return st.Leftovers()
}
