package nskube

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pathcost/pathcost/pkg/jsonfile"
)

// TestValidName: a cluster name becomes a directory under the state root, cgroup and node names;
// anything but a short DNS label is refused everywhere a name enters.
func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"pathcost", true},
		{"a", true},
		{"0", true},
		{"nsk-test-2", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"../../sys/fs/cgroup", false},
		{"a/b", false},
		{"/abs", false},
		{"-a", false},
		{"a-", false},
		{"A", false},
		{"a_b", false},
		{"a.b", false},
		{"a b", false},
		{"a\x00", false},
	} {
		err := ValidName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if tc.ok || tc.name == "" { // Up and Create default "" to "pathcost": they would start it
			continue
		}
		// Every entry point refuses it before touching anything.
		if _, err := Up(context.Background(), Options{Name: tc.name, Nodes: 2, StateRoot: t.TempDir(), Out: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "invalid cluster name") {
			t.Errorf("Up(%q): %v", tc.name, err)
		}
		if err := Down(context.Background(), t.TempDir(), tc.name, nil); err == nil {
			t.Errorf("Down(%q) accepted", tc.name)
		}
		if _, err := LoadState(t.TempDir(), tc.name); err == nil {
			t.Errorf("LoadState(%q) accepted", tc.name)
		}
		p := NewProvider(WithStateRoot(t.TempDir()))
		p.SetDefaults().WithName(tc.name)
		if _, err := p.Create(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid cluster name") {
			t.Errorf("Create(%q): %v", tc.name, err)
		}
	}
	// Down and LoadState do not default "": they refuse it.
	if err := Down(context.Background(), t.TempDir(), "", nil); err == nil {
		t.Error(`Down("") accepted`)
	}
	if _, err := LoadState(t.TempDir(), ""); err == nil {
		t.Error(`LoadState("") accepted`)
	}
}

// TestDownKeepsOtherClusters: `tcpload cluster down --name ""` (or "..", "../x") is refused and
// removes nothing; a valid name removes only ROOT/NAME.
func TestDownKeepsOtherClusters(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"one", "two"} {
		if err := os.MkdirAll(filepath.Join(root, n, "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"", "..", "../x", "one/..", "."} {
		if err := Down(context.Background(), root, bad, nil); err == nil || !strings.Contains(err.Error(), "invalid cluster name") {
			t.Errorf("Down(%q): %v", bad, err)
		}
		if _, err := Status(root, bad); err == nil {
			t.Errorf("Status(%q) accepted", bad)
		}
		if _, err := Leftovers(root, bad); err == nil {
			t.Errorf("Leftovers(%q) accepted", bad)
		}
	}
	for _, n := range []string{"one", "two"} {
		if _, err := os.Stat(filepath.Join(root, n)); err != nil {
			t.Fatalf("cluster %s's directory removed: %v", n, err)
		}
	}
	if err := Down(context.Background(), root, "one", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "one")); !os.IsNotExist(err) {
		t.Errorf("one not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "two")); err != nil {
		t.Errorf("two removed: %v", err)
	}
}

// TestDownStateRemovesOnlyItsDir: a state whose Dir is not ROOT/NAME (a tampered or foreign
// cluster.json) does not make DownState remove that directory.
func TestDownStateRemovesOnlyItsDir(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, other, filepath.Join(root, "sub", "nsk")} {
		st := &State{Name: "nsk", Dir: dir, root: root}
		if err := DownState(context.Background(), st, nil); err == nil || !strings.Contains(err.Error(), "not removing") {
			t.Errorf("Dir %s: %v", dir, err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("foreign directory removed: %v", err)
	}
	// A cluster.json whose dir points elsewhere is not loaded as that cluster's state.
	if err := os.MkdirAll(filepath.Join(root, "nsk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := jsonfile.Write(filepath.Join(root, "nsk", "cluster.json"), &State{Name: "nsk", Dir: other}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(root, "nsk"); err == nil || !strings.Contains(err.Error(), "cluster.json") {
		t.Errorf("LoadState of a foreign dir: %v", err)
	}
	if err := Down(context.Background(), root, "nsk", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("foreign directory removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "nsk")); !os.IsNotExist(err) {
		t.Errorf("nsk not removed: %v", err)
	}
}

func TestLoadStateErrorsNameFile(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "nsk"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(root, "nsk", "cluster.json")
	if err := os.WriteFile(f, []byte("{half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(root, "nsk"); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("error does not name %s: %v", f, err)
	}
	// writeJSON replaces it atomically, leaving no temporary file.
	st := &State{Name: "nsk", Dir: filepath.Join(root, "nsk")}
	if err := jsonfile.Write(f, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(root, "nsk")
	if err != nil || got.Name != "nsk" {
		t.Fatalf("%v %v", got, err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "nsk"))
	if len(ents) != 1 {
		t.Errorf("files: %v", ents)
	}
}

func TestMentionsPath(t *testing.T) {
	dir := "/tmp/pathcost-nskube/nsk"
	for _, tc := range []struct {
		text string
		want bool
	}{
		{dir, true},
		{dir + "/", true},
		{"--data-dir=" + dir + "/cp/etcd", true},
		{"sh\x00" + dir + "/join.sh\x00x", true},
		{"36 1 0:5 / " + dir + "/node1/ov rw - overlay", true},
		{dir + "2/x", false},
		{dir + "-old", false},
		{"/other" + dir, false},
		{"/tmp/pathcost-nskube/nsk2 /tmp/pathcost-nskube/nskx", false},
		{"/tmp/pathcost-nskube/nsk2 " + dir, true},
		{"", false},
	} {
		if got := mentionsPath(tc.text, dir); got != tc.want {
			t.Errorf("mentionsPath(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestJoinScriptFailsWithoutCgroup(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "join.sh")
	if err := os.WriteFile(js, []byte(joinScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := execCommand("sh", js, "no-such-cgroup-nskube-test", "true")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != joinFailed || !strings.Contains(string(out), "could not join") {
		t.Fatalf("join.sh into a missing cgroup: %v %s", err, out)
	}
}

var execCommand = exec.Command

// TestSweepStale: a cluster whose owning process and reaper are dead is torn down by the next
// Up's sweep; one whose owner lives, or made by `tcpload cluster up` (no owner), is kept.
func TestSweepStale(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dead := procRef(cmd.Process.Pid)
	if dead == nil || !dead.Alive() {
		t.Fatalf("procRef of a running process: %+v", dead)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if dead.Alive() {
		t.Fatal("dead process reported alive")
	}
	if (&ProcRef{PID: os.Getpid(), Start: 1}).Alive() {
		t.Fatal("a reused PID (other start time) reported alive")
	}
	root := t.TempDir()
	for name, owner := range map[string]*ProcRef{"stale": dead, "live": procRef(os.Getpid()), "cli": nil} {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := jsonfile.Write(filepath.Join(dir, "cluster.json"), &State{Name: name, Dir: dir, Owner: owner, Reaper: dead}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	sweepStale(context.Background(), root, &out)
	if _, err := os.Stat(filepath.Join(root, "stale")); !os.IsNotExist(err) {
		t.Errorf("stale cluster not swept: %v\n%s", err, out.String())
	}
	for _, n := range []string{"live", "cli"} {
		if _, err := os.Stat(filepath.Join(root, n, "cluster.json")); err != nil {
			t.Errorf("cluster %s swept: %v", n, err)
		}
	}
}

// TestDestroyKeepsReaperUntilTornDown: a failed teardown leaves the reaper running (it retries
// when the process exits); a complete one stops it.
func TestDestroyKeepsReaperUntilTornDown(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "other")
	if err := os.MkdirAll(filepath.Join(root, "nsk"), 0o755); err != nil {
		t.Fatal(err)
	}
	reaper := exec.Command("sleep", "60")
	if err := reaper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reaper.Process.Kill() }()
	ref := procRef(reaper.Process.Pid)
	p := NewProvider(WithStateRoot(root), WithOutput(io.Discard))
	p.SetDefaults().WithName("nsk")
	p.reaper = reaper.Process
	p.state = &State{Name: "nsk", Dir: other, root: root} // teardown fails: not its directory
	if err := p.Destroy(context.Background()); err == nil {
		t.Fatal("Destroy of a bad state succeeded")
	}
	if !ref.Alive() || p.reaper == nil {
		t.Fatal("reaper stopped after a failed teardown")
	}
	if err := p.Destroy(context.Background()); err != nil { // from the name: ROOT/nsk
		t.Fatal(err)
	}
	if p.reaper != nil {
		t.Fatal("reaper not stopped after a complete teardown")
	}
	if _, err := os.Stat(filepath.Join(root, "nsk")); !os.IsNotExist(err) {
		t.Errorf("ROOT/nsk: %v", err)
	}
}
