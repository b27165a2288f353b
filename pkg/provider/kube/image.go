package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pathcost/pathcost/pkg/image"
)

// ModuleRoot is the directory of the pathcost module the current directory is in (go env GOMOD).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// BuildImageArchive builds the static tcpload binary from this module into dir and an image
// archive of it tagged ref (docker format: for nskube's nodes and `kind load image-archive`), and
// returns the archive's path.
func BuildImageArchive(ctx context.Context, dir, ref string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("image directory: %w", err)
	}
	bin := filepath.Join(dir, "tcpload")
	if err := image.GoBuildStatic(ctx, root, "./cmd/tcpload", bin); err != nil {
		return "", err
	}
	archive := filepath.Join(dir, "tcpload.tar")
	if err := image.WriteArchive(image.TCPLoad(bin, ref), archive); err != nil {
		return "", fmt.Errorf("tcpload image archive: %w", err)
	}
	return archive, nil
}
