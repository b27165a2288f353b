package sshtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
	binOut  []byte
)

// Tcpload builds the static tcpload binary once per test binary and returns its path; call
// RemoveTcpload from TestMain after the tests.
func Tcpload(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "pathcost-tcpload-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tcpload")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/pathcost/pathcost/cmd/tcpload")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		binOut, binErr = cmd.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("build tcpload: %v: %s", binErr, binOut)
	}
	return binPath
}

// RemoveTcpload removes the binary Tcpload built.
func RemoveTcpload() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}
