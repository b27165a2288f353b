package image

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HostFiles returns what an image needs to run dynamically linked programs of this machine: each
// of paths (programs, or shared objects a program loads at run time with dlopen, such as iptables'
// xtables modules) at its own path, and every shared library ldd lists for any of them, the
// dynamic loader included, at the path ldd prints (which the loader searches without an
// ld.so.cache). Symlinks are followed: the image gets the files' contents. The map goes to
// Spec.Files.
func HostFiles(ctx context.Context, paths ...string) (map[string]string, error) {
	files := map[string]string{}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("host files: %q is not an absolute path", p)
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("host files: %w", err)
		}
		files[filepath.Clean(p)] = p
		libs, err := SharedLibraries(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			files[l] = l
		}
	}
	return files, nil
}

// SharedLibraries returns the absolute paths of the shared libraries ldd lists for the ELF file
// at path (the dynamic loader included, the kernel's vDSO left out); nil for a static binary. A
// library ldd cannot find is an error naming it.
func SharedLibraries(ctx context.Context, path string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", path).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return parseLdd(path, string(out))
}

// parseLdd reads ldd's output: "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
// "\t/lib64/ld-linux-x86-64.so.2 (0x...)", "\tlinux-vdso.so.1 (0x...)", "\tlibfoo.so => not found".
func parseLdd(path, out string) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.Contains(line, "statically linked") {
			continue
		}
		name, target, arrow := strings.Cut(line, "=>")
		if arrow {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("ldd %s: %s not found", path, strings.TrimSpace(name))
			}
		} else {
			target = line
		}
		f := strings.Fields(target)
		if len(f) == 0 || !strings.HasPrefix(f[0], "/") {
			continue // the vDSO, or a library without a path
		}
		libs = append(libs, filepath.Clean(f[0]))
	}
	return libs, sc.Err()
}
