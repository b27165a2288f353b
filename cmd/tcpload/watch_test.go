package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/result"
)

func TestWatchByComm(t *testing.T) {
	// two "sidecars" with the same comm, visible to tcpload as in a pod sharing its PID namespace;
	// a copy of sleep under a name of our own, so no other process matches
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	data, err := os.ReadFile(sleep)
	require.NoError(t, err)
	comm := "pcw" + strconv.Itoa(os.Getpid())
	exe := filepath.Join(t.TempDir(), comm)
	require.NoError(t, os.WriteFile(exe, data, 0o755))
	var sidecars []*exec.Cmd
	for i := 0; i < 2; i++ {
		sc := exec.Command(exe, "30")
		require.NoError(t, sc.Start())
		sidecars = append(sidecars, sc)
	}
	t.Cleanup(func() {
		for _, sc := range sidecars {
			sc.Process.Kill()
			sc.Wait()
		}
	})
	for _, tc := range []struct {
		name, watch string
		code        int
		matched     string
	}{
		{"two matches summed", "sidecar=comm:" + comm, 0, "matched 2 process(es)"},
		{"no match", "sidecar=comm:no-such-proc", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := freePort(t)
			srvJSON, cliJSON := filepath.Join(dir, "s.json"), filepath.Join(dir, "c.json")
			srv := exec.Command(bin, "server", "--listen", addr, "--json", srvJSON, "--quiet", "--accept-timeout", "10s")
			require.NoError(t, srv.Start())
			t.Cleanup(func() { srv.Process.Kill() })
			code, _, stderr := runTool(t, "client", "--connect", addr, "--conns", "2", "--duration", "0.5", "--warmup", "0.1",
				"--json", cliJSON, "--quiet", "--watch", tc.watch)
			waitExit(t, srv, 10*time.Second)
			assert.Equal(t, tc.code, code, stderr)
			rec, err := result.ReadFile(cliJSON)
			require.NoError(t, err)
			if tc.code != 0 {
				assert.Contains(t, rec.Error, "no-such-proc")
				assert.Contains(t, stderr, "no-such-proc")
				return
			}
			require.Contains(t, rec.Watched, "sidecar")
			assert.Len(t, rec.Watched, 1, "the matches are summed under one name")
			notes := strings.Join(rec.Notes, "\n")
			assert.Contains(t, notes, tc.matched)
			assert.Contains(t, notes, strconv.Itoa(sidecars[0].Process.Pid))
		})
	}
}

func TestSelftestBurnIsRecorded(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	srvJSON := filepath.Join(dir, "s.json")
	srv := exec.Command(bin, "server", "--listen", addr, "--json", srvJSON, "--quiet", "--accept-timeout", "10s", "--selftest-burn-per-kb", "100ns")
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Process.Kill() })
	code, _, stderr := runTool(t, "client", "--connect", addr, "--conns", "2", "--duration", "0.3", "--warmup", "0.1", "--quiet")
	require.Equal(t, 0, code, stderr)
	waitExit(t, srv, 10*time.Second)
	rec, err := result.ReadFile(srvJSON)
	require.NoError(t, err)
	assert.Contains(t, rec.Notes, "selftest_burn_ns_per_kb=100: this side burned that much CPU per KB it moved, on purpose (--selftest-burn-per-kb, for testing the gates only)")
	code, _, stderr = runTool(t, "client", "--selftest-burn-per-kb", "-1ns")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--selftest-burn-per-kb -1ns")
}
