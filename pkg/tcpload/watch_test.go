package tcpload

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseWatchTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want WatchTarget
		err  string
	}{
		{"1234", WatchTarget{PID: 1234}, ""},
		{"comm:envoy", WatchTarget{Comm: "envoy"}, ""},
		{"comm:", WatchTarget{}, "comm:PROCNAME"},
		{"0", WatchTarget{}, "PID"},
		{"envoy", WatchTarget{}, "comm:PROCNAME"},
	} {
		got, err := ParseWatchTarget(tc.in)
		if tc.err != "" {
			require.Error(t, err, tc.in)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

func TestFindComm(t *testing.T) {
	root := t.TempDir()
	for pid, comm := range map[int]string{10: "envoy", 11: "haproxy", 12: "envoy", 13: "averyverylongpr", os.Getpid(): "envoy"} {
		dir := filepath.Join(root, strconv.Itoa(pid))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "self"), 0o755))
	pids, err := FindComm(root, "envoy")
	require.NoError(t, err)
	assert.Equal(t, []int{10, 12}, pids, "several matches, this process left out")
	pids, err = FindComm(root, "averyverylongprocessname")
	require.NoError(t, err)
	assert.Equal(t, []int{13}, pids, "compared on the kernel's 15 characters")
	_, err = FindComm(root, "nginx")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nginx"`)
}
