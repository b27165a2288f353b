package usage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// ReadCgroupCPU returns the cumulative CPU seconds used by the tasks of the cgroup directory
// dir: usage_usec from cpu.stat on cgroup v2, else cpuacct.usage (nanoseconds) on a cgroup v1
// cpuacct hierarchy. A v1 "cpu" directory that is not also a cpuacct one has a cpu.stat
// without usage_usec and no cpuacct.usage: it is an error, pass the cpuacct directory
// (ProcCgroupCPUDir finds it).
func ReadCgroupCPU(dir string) (float64, error) {
	statPath := filepath.Join(dir, "cpu.stat")
	data, statErr := os.ReadFile(statPath)
	if statErr == nil {
		usec, ok, err := parseKeyedUint(data, "usage_usec")
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", statPath, err)
		}
		if ok {
			return float64(usec) / 1e6, nil
		}
	}
	acctPath := filepath.Join(dir, "cpuacct.usage")
	data, acctErr := os.ReadFile(acctPath)
	if acctErr == nil {
		ns, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w: %w", acctPath, procfs.ErrFileParse, err)
		}
		return float64(ns) / 1e9, nil
	}
	if statErr == nil {
		statErr = errors.New("no usage_usec (a cgroup v1 cpu directory? use the cpuacct hierarchy)")
	}
	return 0, fmt.Errorf("read cgroup cpu usage of %s: cpu.stat: %w; cpuacct.usage: %w", dir, statErr, acctErr)
}

// parseKeyedUint finds "key value" in a flat-keyed cgroup file such as cpu.stat.
func parseKeyedUint(data []byte, key string) (uint64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%w: %s: %w", procfs.ErrFileParse, key, err)
		}
		return n, true, nil
	}
	return 0, false, sc.Err()
}

// ProcCgroupCPUDir returns the cgroup directory whose CPU usage covers process pid (0 means
// the calling process), for ReadCgroupCPU. On a machine with cgroup v1 hierarchies (including
// hybrid machines that also mount a controller-less cgroup2 "unified" tree) it is the
// process's directory in the cpuacct hierarchy, since container runtimes there place
// containers in v1 cgroups only; otherwise it is the directory in the cgroup2 hierarchy.
// Mount points are taken from the calling process's mountinfo, so the path is valid here.
func ProcCgroupCPUDir(pid int) (string, error) {
	f, err := Default()
	if err != nil {
		return "", err
	}
	return f.ProcCgroupCPUDir(pid)
}

// ProcCgroupCPUDir is the package-level ProcCgroupCPUDir reading below f's proc root.
func (f *FS) ProcCgroupCPUDir(pid int) (string, error) {
	cgPath := f.procPath(pid, "cgroup")
	p, err := f.proc(pid)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", cgPath, err)
	}
	cgs, err := safely(p.Cgroups)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", cgPath, err)
	}
	miPath := filepath.Join(f.root, "self", "mountinfo")
	mounts, err := safely(f.fs.GetMounts)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", miPath, err)
	}

	var v1Path, v2Path string
	var haveV1, haveV2 bool
	for _, cg := range cgs {
		switch {
		case slices.Contains(cg.Controllers, "cpuacct"):
			v1Path, haveV1 = cg.Path, true
		case cg.HierarchyID == 0 && len(cg.Controllers) == 0:
			v2Path, haveV2 = cg.Path, true
		}
	}
	if haveV1 {
		for _, m := range mounts {
			if m.FSType != "cgroup" {
				continue
			}
			if _, ok := m.SuperOptions["cpuacct"]; !ok {
				continue
			}
			if dir, ok := under(m, v1Path); ok {
				return dir, nil
			}
		}
	}
	if haveV2 {
		for _, m := range mounts {
			if m.FSType != "cgroup2" {
				continue
			}
			if dir, ok := under(m, v2Path); ok {
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("cgroup cpu directory of %s: no mounted cpuacct (v1) or cgroup2 hierarchy holds it (cgroup file %s, mounts %s)",
		f.procPath(pid), cgPath, miPath)
}

// under maps a cgroup path (as in /proc/PID/cgroup) to a directory below mount m, whose Root
// is the cgroup path the mount shows (not "/" when a sub-tree is bind-mounted, e.g. in a
// container without its own cgroup namespace).
func under(m *procfs.MountInfo, cgPath string) (string, bool) {
	root := m.Root
	if root == "" {
		root = "/"
	}
	rel, err := filepath.Rel(root, cgPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Join(m.MountPoint, rel), true
}
