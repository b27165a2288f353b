package image

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pauseSource is the sandbox ("pause") program: it holds the pod's namespaces, reaps orphans and
// exits on SIGTERM/SIGINT. Built on demand as a static binary; no image needs pulling.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
`

// PauseArchive returns the path of a docker tarball of the pause image tagged ref, building the
// pause binary and the archive into cacheDir if they are not there yet. The cached archive is
// keyed by ref (an archive is tagged with one reference).
func PauseArchive(ctx context.Context, cacheDir, ref string) (string, error) {
	archive := filepath.Join(cacheDir, PauseArchiveName(ref))
	if _, err := os.Stat(archive); err == nil {
		return archive, nil
	}
	src, err := os.MkdirTemp("", "pathcost-pause-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module pathcost.local/pause\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(pauseSource), 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(src, "pause")
	if err := GoBuildStatic(ctx, src, ".", bin); err != nil {
		return "", fmt.Errorf("pause: %w", err)
	}
	spec := Spec{Ref: ref, Files: map[string]string{"/pause": bin}, Entrypoint: []string{"/pause"}}
	return archive, WriteArchive(spec, archive)
}

// PauseArchiveName is the file name of the cached pause archive tagged ref: readable, and unique
// per reference (a hash of it).
func PauseArchiveName(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, ref)
	if len(safe) > 60 {
		safe = safe[:60]
	}
	return fmt.Sprintf("pause-%s-%x.tar", safe, sum[:8])
}
