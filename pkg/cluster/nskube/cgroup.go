package nskube

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pathcost/pathcost/pkg/usage"
)

const cgroupFS = "/sys/fs/cgroup"

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers and the v2 "unified"
// one); none when the mount table cannot be read (readCgroupHierarchies says why).
func cgroupHierarchies() []string {
	hs, _ := readCgroupHierarchies()
	return hs
}

// readCgroupHierarchies lists the mounted cgroup hierarchies from /proc/self/mounts.
func readCgroupHierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	defer f.Close()
	var hs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && (fs[2] == "cgroup" || fs[2] == "cgroup2") && strings.HasPrefix(fs[1], cgroupFS) {
			hs = append(hs, fs[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: read /proc/self/mounts: %w", err)
	}
	sort.Strings(hs)
	return hs, nil
}

// createCgroup creates /name (and /name/sub...) in every hierarchy, copying the cpuset of the root
// into it (a v1 cpuset cgroup starts empty and refuses tasks until cpus/mems are set).
func createCgroup(name string, subs ...string) error {
	for _, h := range cgroupHierarchies() {
		for _, p := range append([]string{name}, prefixed(name, subs)...) {
			dir := filepath.Join(h, p)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if filepath.Base(h) == "cpuset" {
				parent := filepath.Dir(dir)
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					if v, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
						_ = os.WriteFile(filepath.Join(dir, f), v, 0o644)
					}
				}
			}
		}
	}
	return nil
}

func prefixed(name string, subs []string) []string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = name + "/" + s
	}
	return out
}

// cgroupPIDs returns every process in /name or below it, in any hierarchy.
func cgroupPIDs(name string) []int {
	seen := map[int]bool{}
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, name)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}

// cgroupExists says whether /name exists in any hierarchy.
func cgroupExists(name string) []string {
	var found []string
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, name)); err == nil {
			found = append(found, filepath.Join(h, name))
		}
	}
	return found
}

// killCgroup signals every process under /name (sub, if given, narrows it), repeating until none
// is left or the deadline passes. It returns the processes still alive.
func killCgroup(name string, sig syscall.Signal, wait time.Duration) []int {
	deadline := time.Now().Add(wait)
	for {
		pids := cgroupPIDs(name)
		// Zombies stay in cgroup.procs until reaped; they hold nothing, ignore them.
		alive := pids[:0]
		for _, p := range pids {
			if running(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		for _, p := range alive {
			_ = syscall.Kill(p, sig)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	_, err := usage.ProcStart(pid)
	return err == nil
}

// removeCgroup removes /name and everything below it in every hierarchy, deepest first.
func removeCgroup(name string) error {
	var lastErr error
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, name)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 50; try++ { // a cgroup is busy for a moment after its last task exits
				if err = syscall.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				lastErr = err
			}
		}
	}
	return lastErr
}
