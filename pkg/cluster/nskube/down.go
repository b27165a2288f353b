package nskube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down tears down cluster name under root ("" = StateRoot()): by the PIDs it recorded, then every
// process left in its cgroups, then the cgroups and its directory. It works from the saved state
// and, if that is missing, from the cgroup names alone. Nothing else on the host is touched.
func Down(ctx context.Context, root, name string, out io.Writer) error {
	if root == "" {
		root = StateRoot()
	}
	st, err := LoadState(root, name)
	if err != nil {
		st = &State{Name: name, Dir: filepath.Join(root, name)}
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
	// 5. the cluster's directory.
	if st.Dir != "" && strings.HasPrefix(filepath.Base(st.Dir), st.Name) {
		if err := os.RemoveAll(st.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	fmt.Fprintf(out, "nskube: cluster %s torn down in %.1fs\n", st.Name, time.Since(t0).Seconds())
	if left := st.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
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
		for !isZombie(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !isZombie(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// owns says whether p.PID is still the process the provider started: in its cgroup.
func (s *State) owns(p Proc) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cgroup")
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(":/"+p.Cgroup))
}

// Leftovers lists whatever of the cluster still exists on the host: processes in its cgroups or
// naming its directory, its cgroups, its directory. Empty after a clean Destroy.
func (s *State) Leftovers() []string {
	var left []string
	groups := []string{s.vpcCgroup()}
	for _, n := range s.Nodes {
		groups = append(groups, n.Name)
	}
	for _, h := range cgroupHierarchies() {
		ms, _ := filepath.Glob(filepath.Join(h, s.Name+"-node*"))
		for _, m := range ms {
			groups = append(groups, filepath.Base(m))
		}
	}
	seen := map[string]bool{}
	for _, g := range groups {
		if seen[g] {
			continue
		}
		seen[g] = true
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
		if pids := procsMentioning(s.Dir); len(pids) > 0 {
			left = append(left, fmt.Sprintf("processes %v mentioning %s", pids, s.Dir))
		}
		if m := mountsMentioning(s.Dir); len(m) > 0 {
			left = append(left, "mounts "+strings.Join(m, ", "))
		}
	}
	return left
}

func procsMentioning(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func mountsMentioning(s string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// Leftovers is State.Leftovers for a cluster known only by name.
func Leftovers(root, name string) []string {
	if root == "" {
		root = StateRoot()
	}
	st, err := LoadState(root, name)
	if err != nil {
		st = &State{Name: name, Dir: filepath.Join(root, name)}
	}
	return st.Leftovers()
}
