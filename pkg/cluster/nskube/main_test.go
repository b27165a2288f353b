package nskube

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pathcost/pathcost/pkg/jsonfile"
)

// TestMain: the provider's tests (tag nskube) start reapers, which re-execute this test binary.
func TestMain(m *testing.M) { os.Exit(RunTests(m)) }

// TestStatus: a cluster with state reports each recorded process and is healthy only when all
// run and the kubeconfig exists; one without state reports what is left of it.
func TestStatus(t *testing.T) {
	root := t.TempDir()
	c, err := Status(root, "none")
	if err != nil || c.State != nil || len(c.Leftovers) != 0 || c.Healthy() {
		t.Fatalf("no cluster: %+v %v", c, err)
	}
	dir := filepath.Join(root, "half")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err = Status(root, "half")
	if err != nil || c.State != nil || len(c.Leftovers) != 1 || c.Leftovers[0] != "directory "+dir {
		t.Fatalf("a directory without state: %+v %v", c, err)
	}
	kc := filepath.Join(dir, "kubeconfig")
	st := &State{Name: "half", Dir: dir, Kubeconfig: kc, Procs: []Proc{{Name: "gone", PID: 1 << 30, Cgroup: "half-vpc"}}}
	if err := jsonfile.Write(filepath.Join(dir, "cluster.json"), st); err != nil {
		t.Fatal(err)
	}
	c, err = Status(root, "half")
	if err != nil || c.State == nil || len(c.Procs) != 1 || c.Procs[0].Running || !c.KubeconfigMissing || c.Healthy() {
		t.Fatalf("state with a dead process: %+v %v", c, err)
	}
	if err := Down(context.Background(), root, "half", nil); err != nil {
		t.Fatal(err)
	}
	if left, err := Leftovers(root, "half"); err != nil || len(left) != 0 {
		t.Fatalf("after Down: %v %v", left, err)
	}
}

type exitWith int

func (e exitWith) Run() int { return int(e) }

// TestRunTests: outside a reaper RunTests runs the tests and returns their status.
func TestRunTests(t *testing.T) {
	if got := RunTests(exitWith(3)); got != 3 {
		t.Fatalf("RunTests = %d, want the tests' 3", got)
	}
}
