package localnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pathcost/pathcost/pkg/interrupt"
	"github.com/pathcost/pathcost/pkg/usage"
)

// prefixRE is the shape of a run prefix: "pc" and 6 hex digits.
var prefixRE = regexp.MustCompile(`^pc[0-9a-f]{6}$`)

// markerRE finds a run's state directory, or one of its named namespaces, in a process's command
// line: a sidecar names its state directory, and a command started with Command is nsenter
// naming the namespace until it has entered it and exec'd the program.
var markerRE = regexp.MustCompile(regexp.QuoteMeta(StateRoot) + `/(pc[0-9a-f]{6})(?:/|$| )|` +
	regexp.QuoteMeta(NetnsDir) + `/(pc[0-9a-f]{6})-`)

// markedPrefix returns the run prefix a command line names, if any.
func markedPrefix(cmdline string) (string, bool) {
	m := markerRE.FindStringSubmatch(cmdline)
	switch {
	case m == nil:
		return "", false
	case m[1] != "":
		return m[1], true
	default:
		return m[2], true
	}
}

// ownerFile names the file in a state dir that records the owning process.
const ownerFile = "owner"

// newOwnerGrace is how long a state dir without an owner file is assumed to
// be in creation.
const newOwnerGrace = 30 * time.Second

// checkPrefix validates a prefix argument ("" means any pathcost prefix).
func checkPrefix(prefix string) error {
	if prefix != "" && !prefixRE.MatchString(prefix) {
		return fmt.Errorf("localnet: prefix %q is not a pathcost prefix (want \"pc\" and 6 hex digits, or \"\")", prefix)
	}
	return nil
}

// prefixOfName returns the prefix of a namespace name "pcXXXXXX-role".
func prefixOfName(name string) (string, bool) {
	p, _, ok := strings.Cut(name, "-")
	if !ok || !prefixRE.MatchString(p) {
		return "", false
	}
	return p, true
}

// claimPrefix picks an unused prefix and creates its state directory with
// the owner record, before anything else of the run exists.
func claimPrefix() (string, string, error) {
	if err := os.MkdirAll(StateRoot, 0o755); err != nil {
		return "", "", fmt.Errorf("localnet: create %s: %w", StateRoot, err)
	}
	_ = os.Chmod(filepath.Dir(StateRoot), 0o755)
	_ = os.Chmod(StateRoot, 0o755)
	start, err := usage.ProcStart(os.Getpid())
	if err != nil {
		return "", "", fmt.Errorf("localnet: own start time: %w", err)
	}
	nss, err := listNetns()
	if err != nil {
		return "", "", fmt.Errorf("localnet: %w", err)
	}
	for range 16 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", fmt.Errorf("localnet: random prefix: %w", err)
		}
		prefix := "pc" + hex.EncodeToString(b[:])
		taken := false
		for _, n := range nss {
			if p, ok := prefixOfName(n); ok && p == prefix {
				taken = true
			}
		}
		if taken {
			continue
		}
		dir := filepath.Join(StateRoot, prefix)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return "", "", fmt.Errorf("localnet: create state dir: %w", err)
		}
		owner := fmt.Sprintf("%d %d\n", os.Getpid(), start)
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
			_ = os.RemoveAll(dir)
			return "", "", fmt.Errorf("localnet: write owner record: %w", err)
		}
		return prefix, dir, nil
	}
	return "", "", errors.New("localnet: no free prefix after 16 tries")
}

// live holds the envs of this process that are up (or being built), with the
// cancel function of an Up in progress.
var live struct {
	sync.Mutex
	envs map[*Env]context.CancelFunc
}

func register(e *Env, cancel context.CancelFunc) {
	live.Lock()
	defer live.Unlock()
	if live.envs == nil {
		live.envs = map[*Env]context.CancelFunc{}
	}
	live.envs[e] = cancel
}

func unregister(e *Env) {
	live.Lock()
	defer live.Unlock()
	delete(live.envs, e)
}

// liveHere reports whether this process holds a live env with the prefix.
func liveHere(prefix string) bool {
	live.Lock()
	defer live.Unlock()
	for e := range live.envs {
		if e.Prefix == prefix {
			return true
		}
	}
	return false
}

// DownAll cancels any Up in progress and tears down every live Env of this
// process. It returns the joined errors of the Down calls.
func DownAll() error {
	live.Lock()
	envs := make([]*Env, 0, len(live.envs))
	for e, cancel := range live.envs {
		envs = append(envs, e)
		if cancel != nil {
			cancel()
		}
	}
	live.Unlock()
	var errs []error
	for _, e := range envs {
		errs = append(errs, e.Down())
	}
	return errors.Join(errs...)
}

var signalOnce sync.Once

// HandleSignals starts, once per process (later calls do nothing), catching SIGINT, SIGTERM and
// SIGHUP: on the first it cancels any Up in progress and tears down every live Env (DownAll),
// then calls h with the signal and the teardown's error; a second signal during the teardown
// calls h at once, with an error wrapping interrupt.ErrCutShort (Reap removes the rest later).
// The package never exits: h decides, normally with os.Exit(interrupt.ExitCode(sig)) (130 for
// SIGINT, 143 for SIGTERM). Call it from TestMain or main before the first Up. Sidecar proxies
// die with the process anyway (Pdeathsig); the teardown also removes namespaces and state.
func HandleSignals(h interrupt.Handler) {
	signalOnce.Do(func() {
		interrupt.Watch(DownAll, h, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	})
}

// Down tears the env down: it stops the sidecars (SIGTERM, then SIGKILL after
// 2 s), kills every other process still in the env's namespaces, deletes the
// namespaces (and with them every veth, bridge, route, rule and iptables rule)
// and removes the state directory. It is idempotent and safe on a nil Env; a
// failed Down can be retried.
func (e *Env) Down() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.downLocked()
}

func (e *Env) downLocked() error {
	if e.down {
		return nil
	}
	var errs []error
	for _, p := range e.procs {
		if err := stopProc(p, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	inodes := map[uint64]string{}
	for _, ns := range e.namespaces {
		if ino, err := nsInode(netnsPath(ns)); err == nil {
			inodes[ino] = ns
		}
	}
	if err := killRunProcs(e.Prefix, inodes); err != nil {
		errs = append(errs, err)
	}
	for i := len(e.namespaces) - 1; i >= 0; i-- {
		if err := deleteNetns(e.namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if e.StateDir != "" {
		if err := os.RemoveAll(e.StateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove state dir: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("localnet: down %s: %w", e.Prefix, err)
	}
	e.down = true
	unregister(e)
	return nil
}

// stopProc ends a process the package started: SIGTERM, then SIGKILL.
func stopProc(p *proc, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// killRunProcs kills every process in the given namespaces, and the run's own processes still
// outside them (a sidecar naming the state directory, a command still in nsenter). It repeats
// until a pass finds nothing (at most 5 passes), so a command started during a pass is caught.
func killRunProcs(prefix string, inodes map[uint64]string) error {
	for pass := 0; pass < 5; pass++ {
		procs, err := listProcs()
		if err != nil {
			return err
		}
		var pids []int
		for _, p := range procs {
			if p.pid == os.Getpid() {
				continue
			}
			if _, ok := inodes[p.netIno]; ok && p.netIno != 0 {
				pids = append(pids, p.pid)
				continue
			}
			if p2, ok := markedPrefix(p.cmdline); ok && p2 == prefix && ownProcess(p.comm) {
				pids = append(pids, p.pid)
			}
		}
		if len(pids) == 0 {
			return nil
		}
		if err := killAndWait(pids, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// ownProcess reports whether a process outside the run's namespaces that names the run in its
// command line is one the run started (nsenter on its way in, a sidecar proxy) — not, say, a
// user's `less` of a sidecar log.
func ownProcess(comm string) bool { return comm == "nsenter" || comm == "haproxy" }

// Leftovers lists what still carries the prefix ("" = any pathcost prefix):
// named network namespaces, state directories, and processes that live in
// such a namespace or use such a state directory. An empty list means clean.
func Leftovers(prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	match := func(p string) bool { return prefix == "" || p == prefix }
	var out []string
	inodes := map[uint64]string{}
	nss, err := listNetns()
	if err != nil {
		return nil, fmt.Errorf("localnet: leftovers: %w", err)
	}
	for _, n := range nss {
		if p, ok := prefixOfName(n); ok && match(p) {
			out = append(out, "netns "+n)
			if ino, err := nsInode(netnsPath(n)); err == nil {
				inodes[ino] = n
			}
		}
	}
	dirs, err := stateDirs()
	if err != nil {
		return nil, err
	}
	for _, p := range dirs {
		if match(p) {
			out = append(out, "state dir "+filepath.Join(StateRoot, p))
		}
	}
	procs, err := listProcs()
	if err != nil {
		return nil, fmt.Errorf("localnet: leftovers: %w", err)
	}
	for _, p := range procs {
		if ns, ok := inodes[p.netIno]; ok && p.netIno != 0 {
			out = append(out, fmt.Sprintf("process %d (%s) in netns %s", p.pid, p.comm, ns))
			continue
		}
		if p2, ok := markedPrefix(p.cmdline); ok && match(p2) && ownProcess(p.comm) {
			out = append(out, fmt.Sprintf("process %d (%s) of run %s", p.pid, p.comm, p2))
		}
	}
	return out, nil
}

// stateDirs lists the prefixes that have a state directory.
func stateDirs() ([]string, error) {
	return dirNames(StateRoot, func(e os.DirEntry) bool { return e.IsDir() && prefixRE.MatchString(e.Name()) })
}

// dirNames lists the entries of dir that keep accepts (none when dir does not exist).
func dirNames(dir string, keep func(os.DirEntry) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("localnet: read %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if keep(e) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// ownerAlive reports whether the process that created a run still lives.
// A run of this process counts as alive only while its Env is live.
func ownerAlive(prefix string) bool {
	dir := filepath.Join(StateRoot, prefix)
	st, err := os.Stat(dir)
	if err != nil {
		return false // no state dir: orphaned namespaces (the dir is made first)
	}
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return time.Since(st.ModTime()) < newOwnerGrace
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if pid == os.Getpid() {
		return liveHere(prefix)
	}
	got, err := usage.ProcStart(pid)
	return err == nil && got == start
}

// Reap removes what earlier runs left behind (namespaces, processes, state
// directories) for the prefix ("" = every pathcost prefix), skipping runs
// whose owning process is still alive: it is safe to call while other
// processes run their own envs.
func Reap(prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	match := func(p string) bool { return prefix == "" || p == prefix }
	found := map[string]bool{}
	nss, err := listNetns()
	if err != nil {
		return fmt.Errorf("localnet: reap: %w", err)
	}
	for _, n := range nss {
		if p, ok := prefixOfName(n); ok && match(p) {
			found[p] = true
		}
	}
	dirs, err := stateDirs()
	if err != nil {
		return err
	}
	for _, p := range dirs {
		if match(p) {
			found[p] = true
		}
	}
	procs, err := listProcs()
	if err != nil {
		return fmt.Errorf("localnet: reap: %w", err)
	}
	for _, p := range procs {
		if p2, ok := markedPrefix(p.cmdline); ok && match(p2) && ownProcess(p.comm) {
			found[p2] = true
		}
	}
	prefixes := make([]string, 0, len(found))
	for p := range found {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	var errs []error
	for _, p := range prefixes {
		if ownerAlive(p) {
			continue
		}
		if err := reapPrefix(p, nss); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("localnet: reap: %w", err)
	}
	return nil
}

// reapPrefix removes one dead run.
func reapPrefix(prefix string, nss []string) error {
	var mine []string
	inodes := map[uint64]string{}
	for _, n := range nss {
		if p, ok := prefixOfName(n); ok && p == prefix {
			mine = append(mine, n)
			if ino, err := nsInode(netnsPath(n)); err == nil {
				inodes[ino] = n
			}
		}
	}
	var errs []error
	if err := killRunProcs(prefix, inodes); err != nil {
		errs = append(errs, err)
	}
	for _, n := range mine {
		if err := deleteNetns(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(StateRoot, prefix)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return nil
}

// writeEnvFile records the env in its state dir (env.json), for people and
// tools that inspect a run.
func (e *Env) writeEnvFile() error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// Env's exported fields, and the namespaces it made.
	err := enc.Encode(struct {
		*Env
		Namespaces []string
	}{e, e.namespaces})
	if err != nil {
		return fmt.Errorf("localnet: encode env: %w", err)
	}
	if err := os.WriteFile(filepath.Join(e.StateDir, "env.json"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("localnet: write env.json: %w", err)
	}
	return nil
}
