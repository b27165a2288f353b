package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cluster subcommand's command line: bad input exits 2 naming the problem and removes
// nothing; status of a cluster that does not exist says so.
func TestClusterCommandLine(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "keep"), 0o755))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cluster"}, 2, "usage: tcpload cluster SUBCOMMAND"},
		{[]string{"cluster", "bogus", "--state", root}, 2, `unknown subcommand "bogus"`},
		{[]string{"cluster", "down", "--state", root, "--name", ".."}, 2, "invalid cluster name"},
		{[]string{"cluster", "down", "--state", root, "--name", ""}, 2, "invalid cluster name"},
		{[]string{"cluster", "up", "--nodes"}, 2, "flag needs an argument"},
		{[]string{"cluster", "status", "--state", root, "--name", "none", "extra"}, 2, `unexpected argument "extra"`},
	} {
		code, _, stderr := runTool(t, tc.args...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, tc.args)
	}
	code, out, stderr := runTool(t, "cluster", "status", "--state", root, "--name", "none")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "cluster none: not running, nothing left on the host")
	code, out, _ = runTool(t, "cluster", "help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "subcommands:")
	_, err := os.Stat(filepath.Join(root, "keep"))
	assert.NoError(t, err, "bad names removed nothing")
}
