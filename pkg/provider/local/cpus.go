package local

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// nodeCPUs is how Separate splits this process's CPUs between the two nodes that run processes:
// the server's node the first half, the client's node the rest.
type nodeCPUs struct {
	all, server, client []int
}

// splitCPUs splits cpus (sorted) between the server's and the client's node; ok is false with
// fewer than two.
func splitCPUs(cpus []int) (nodeCPUs, bool) {
	if len(cpus) < 2 {
		return nodeCPUs{all: cpus}, false
	}
	half := len(cpus) / 2
	return nodeCPUs{all: cpus, server: cpus[:half], client: cpus[half:]}, true
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var out []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// cpuList formats cpus for taskset -c and notes: "0", "2,3".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// pinProcess sets the CPU affinity of every thread of process pid to cpus.
func pinProcess(pid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return fmt.Errorf("pin process %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d of process %d to CPUs %s: %w", tid, pid, cpuList(cpus), err)
		}
	}
	return nil
}

// pinned returns the command line that runs name with args on cpus (taskset execs it: the
// process keeps taskset's pid), or an error when taskset is missing.
func pinned(cpus []int, name string, args ...string) (string, []string, error) {
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return "", nil, fmt.Errorf("separate nodes' CPUs: taskset not found (apt-get install util-linux): %w", err)
	}
	return ts, append([]string{"-c", cpuList(cpus), name}, args...), nil
}
