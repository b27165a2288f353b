package nskube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// The reaper: Provider.Create re-executes the current binary with these variables; the program
// calls RunReaperIfAsked first thing in main (or TestMain), which turns that process into a
// watcher that tears the cluster down when its parent dies without Destroy.
const (
	reapEnvDir    = "PATHCOST_NSKUBE_REAP_DIR"
	reapEnvParent = "PATHCOST_NSKUBE_REAP_PARENT"
)

// reaperAsked records that this program calls RunReaperIfAsked: only then can Create re-execute
// it as a reaper.
var reaperAsked atomic.Bool

// errNoReaperCall is Create's error in a program that never called RunReaperIfAsked.
var errNoReaperCall = errors.New("nskube: call nskube.RunReaperIfAsked() first in main (or TestMain): Create re-executes this program as the cluster's reaper")

// RunReaperIfAsked must be the first call in the main (or TestMain) of every program that uses
// Provider.Create. In a process started as a cluster's reaper it watches the parent process,
// tears the cluster down once that process is gone without Destroy, and returns true with the
// teardown's error: the caller then exits (status 0 on nil, else 1). Anywhere else it returns
// false and nil at once.
//
//	if reaper, err := nskube.RunReaperIfAsked(); reaper {
//		if err != nil {
//			os.Exit(1)
//		}
//		os.Exit(0)
//	}
func RunReaperIfAsked() (bool, error) {
	reaperAsked.Store(true)
	dir := os.Getenv(reapEnvDir)
	if dir == "" {
		return false, nil
	}
	parent, _ := strconv.Atoi(os.Getenv(reapEnvParent))
	for os.Getppid() == parent {
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "nskube reaper: process %d is gone without Destroy; tearing down %s\n", parent, dir)
	err := Down(context.Background(), filepath.Dir(dir), filepath.Base(dir), os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nskube reaper:", err)
	}
	return true, err
}

// startReaper starts this program again as the reaper of the cluster in dir; its output goes
// to dir/logs/reaper.log.
func (p *Provider) startReaper(dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "logs", "reaper.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), reapEnvDir+"="+dir, reapEnvParent+"="+strconv.Itoa(os.Getpid()))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.reaper = cmd.Process
	return nil
}

// Runner is what a test binary's TestMain runs (*testing.M).
type Runner interface{ Run() int }

// RunTests is the whole TestMain of a test binary that brings up nskube clusters: it serves as
// the reaper when this process is one (RunReaperIfAsked), and otherwise runs the tests. It
// returns the exit status: func TestMain(m *testing.M) { os.Exit(nskube.RunTests(m)) }.
func RunTests(m Runner) int {
	if reaper, err := RunReaperIfAsked(); reaper {
		if err != nil {
			return 1
		}
		return 0
	}
	return m.Run()
}
