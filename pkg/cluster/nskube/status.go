package nskube

import (
	"errors"
	"fmt"
	"os"
)

// ClusterStatus is what Status finds of a cluster on this machine.
type ClusterStatus struct {
	// Name is the cluster's name.
	Name string
	// State is the cluster's saved state; nil when it has none (not running, or a bring-up
	// that died before saving it).
	State *State
	// Procs are the processes State records, in start order, each with whether it still runs.
	Procs []ProcStatus
	// KubeconfigMissing is true when State names a kubeconfig that is not there.
	KubeconfigMissing bool
	// Leftovers lists what of the cluster is still on the host when it has no State (empty:
	// nothing).
	Leftovers []string
}

// ProcStatus is one recorded process of a cluster.
type ProcStatus struct {
	Proc
	// Running is true while the PID is still the process the cluster started (in its cgroup).
	Running bool
}

// Healthy says whether the cluster runs: it has state, every recorded process runs and its
// kubeconfig exists.
func (c ClusterStatus) Healthy() bool {
	if c.State == nil || c.KubeconfigMissing {
		return false
	}
	for _, p := range c.Procs {
		if !p.Running {
			return false
		}
	}
	return true
}

// Status looks up cluster name under root ("" = StateRoot()): its state and processes, or,
// when it has no state, what of it is left on the host. The error is about reading (a bad name,
// a corrupt state file, a host that could not be searched), not about the cluster's health.
func Status(root, name string) (ClusterStatus, error) {
	if err := ValidName(name); err != nil {
		return ClusterStatus{}, err
	}
	c := ClusterStatus{Name: name}
	st, err := LoadState(root, name)
	if errors.Is(err, os.ErrNotExist) {
		c.Leftovers, err = Leftovers(root, name)
		return c, err
	}
	if err != nil {
		return c, err
	}
	c.State = st
	for _, p := range st.Procs {
		c.Procs = append(c.Procs, ProcStatus{Proc: p, Running: st.owns(p)})
	}
	if _, err := os.Stat(st.Kubeconfig); err != nil {
		c.KubeconfigMissing = true
	}
	return c, nil
}

// InternalAPI is the API server's URL inside the VPC namespace (the kubeconfig on the host uses
// the loopback forwarder instead).
func (s *State) InternalAPI() string { return fmt.Sprintf("https://%s:%d", vpcGateway, apiPort) }
