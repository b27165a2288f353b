package nskube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// HostSnapshot records what of the host a cluster must not change: the root namespace's iptables
// rules, links, routes and named network namespaces, the mount table, the global sysctls the
// kubelet and kube-proxy like to write, and the top-level cgroups. Compare two with Diff.
type HostSnapshot map[string]string

// TakeHostSnapshot reads the host's state (read-only). It fails if a part cannot be read: a
// snapshot with a hole would hide a change.
func TakeHostSnapshot() (HostSnapshot, error) {
	s := HostSnapshot{}
	var errs []error
	run := func(key string, name string, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("host snapshot: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String())))
			return
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
				continue // iptables-save's dated comments
			}
			// packet/byte counters change with traffic, not with configuration
			if i := strings.Index(l, " ["); strings.HasPrefix(l, ":") && i > 0 {
				l = l[:i]
			}
			keep = append(keep, l)
		}
		s[key] = strings.Join(keep, "\n")
	}
	run("iptables", "iptables-save")
	run("ip6tables", "ip6tables-save")
	run("links", "ip", "-o", "link", "show")
	run("routes", "ip", "route", "show", "table", "all")
	run("netns", "ip", "netns", "list")
	if b, err := os.ReadFile("/proc/self/mountinfo"); err != nil {
		errs = append(errs, fmt.Errorf("host snapshot: %w", err))
	} else {
		var mps []string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				mps = append(mps, f[4]+" "+f[len(f)-3])
			}
		}
		sort.Strings(mps)
		s["mounts"] = strings.Join(mps, "\n")
	}
	keys := append(sortedKeys(kubeletSysctls), "net/ipv4/ip_forward", "net/netfilter/nf_conntrack_max",
		"net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables")
	for _, k := range keys {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil && !os.IsNotExist(err) { // absent (module not loaded) is a state, recorded as ""
			errs = append(errs, fmt.Errorf("host snapshot: %w", err))
		}
		s["sysctl "+k] = strings.TrimSpace(string(b))
	}
	for _, h := range cgroupHierarchies() {
		ents, err := os.ReadDir(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("host snapshot: %w", err))
		}
		var names []string
		for _, e := range ents {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
		s["cgroups "+filepath.Base(h)] = strings.Join(names, " ")
	}
	return s, errors.Join(errs...)
}

// Diff lists what differs between two snapshots, line by line ("key: + line" for a line that
// appeared, "key: - line" for one that went); empty: unchanged. Lines for which ignore(key, line)
// is true are skipped (nil: none), e.g. other programs' named network namespaces on a shared machine.
func (a HostSnapshot) Diff(b HostSnapshot, ignore func(key, line string) bool) []string {
	var d []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	for _, k := range sortedKeys(keys) {
		if a[k] == b[k] {
			continue
		}
		before, after := count(a[k]), count(b[k])
		for _, l := range sortedKeys(after) {
			if after[l] > before[l] && (ignore == nil || !ignore(k, l)) {
				d = append(d, fmt.Sprintf("%s: + %s", k, clip(l)))
			}
		}
		for _, l := range sortedKeys(before) {
			if before[l] > after[l] && (ignore == nil || !ignore(k, l)) {
				d = append(d, fmt.Sprintf("%s: - %s", k, clip(l)))
			}
		}
	}
	return d
}

// OthersNetns ignores named network namespaces (and their /run/netns mounts): nskube never makes
// one (its namespaces are held by its processes), so on a shared machine they belong to others.
func OthersNetns(key, line string) bool {
	return key == "netns" || (key == "mounts" && strings.HasPrefix(line, "/run/netns/"))
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
