package nskube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Default versions of what the provider builds. The Kubernetes version can be changed with
// WithVersion / --version; etcd follows the notes' proven pairing.
const (
	DefaultVersion     = "v1.34.4"
	DefaultEtcdVersion = "v3.6.16"
)

// Binaries are the programs the provider builds from the Go module proxy, in build order:
// kube-apiserver first because it compiles most of the shared dependencies.
var Binaries = []string{
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "etcd",
}

// CacheRoot is where built binaries are kept between runs, outside any clone:
// $PATHCOST_CACHE/k8s, or /var/cache/pathcost/k8s.
func CacheRoot() string {
	if d := os.Getenv("PATHCOST_CACHE"); d != "" {
		return filepath.Join(d, "k8s")
	}
	return "/var/cache/pathcost/k8s"
}

// BinDir is the directory holding the binaries of one Kubernetes version.
func BinDir(version string) string { return filepath.Join(CacheRoot(), version, "bin") }

// MissingBinaries lists the binaries absent from dir.
func MissingBinaries(dir string) []string {
	var missing []string
	for _, b := range Binaries {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// BuildOptions say what to build and where progress goes.
type BuildOptions struct {
	Version     string    // Kubernetes version, e.g. v1.34.4
	EtcdVersion string    // etcd version, e.g. v3.6.16
	Out         io.Writer // progress lines (nil: os.Stderr)
	Force       bool      // rebuild even if the binaries are cached
}

// Build builds the missing binaries of opts.Version into BinDir(version) and returns that directory.
// Cached binaries are reused. A cold build on 2 cores takes about half an hour and grows the Go build
// cache by about 5 GB; a warm rebuild takes a minute or two.
func Build(ctx context.Context, opts BuildOptions) (string, error) {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.EtcdVersion == "" {
		opts.EtcdVersion = DefaultEtcdVersion
	}
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	dir := BinDir(opts.Version)
	missing := MissingBinaries(dir)
	if opts.Force {
		missing = Binaries
	}
	if len(missing) == 0 {
		fmt.Fprintf(out, "nskube: Kubernetes %s binaries cached in %s\n", opts.Version, dir)
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	start := time.Now()
	fmt.Fprintf(out, "nskube: building %s (Kubernetes %s, etcd %s) from the Go module proxy into %s\n",
		strings.Join(missing, ", "), opts.Version, opts.EtcdVersion, dir)
	fmt.Fprintf(out, "nskube: a first build takes about 25-35 minutes on 2 cores (kube-apiserver alone ~20 min) and adds ~5 GB to the Go build cache; later runs reuse %s\n", dir)

	work, err := os.MkdirTemp("", "pathcost-k8sbuild-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	var k8s []string
	etcd := false
	for _, b := range missing {
		if b == "etcd" {
			etcd = true
		} else {
			k8s = append(k8s, b)
		}
	}
	if len(k8s) > 0 {
		modDir := filepath.Join(work, "k8s")
		if err := WriteKubernetesBuildModule(ctx, modDir, opts.Version); err != nil {
			return "", err
		}
		ld := versionLDFlags(opts.Version)
		for i, b := range k8s {
			pkg := "k8s.io/kubernetes/cmd/" + b
			if err := goBuild(ctx, out, start, fmt.Sprintf("%s (%d/%d)", b, i+1, len(missing)), modDir, pkg, ld, filepath.Join(dir, b)); err != nil {
				return "", err
			}
		}
	}
	if etcd {
		modDir := filepath.Join(work, "etcd")
		if err := writeEtcdModule(modDir, opts.EtcdVersion); err != nil {
			return "", err
		}
		if err := goCmd(ctx, modDir, nil, "mod", "tidy"); err != nil {
			return "", fmt.Errorf("etcd module: %w", err)
		}
		if err := goBuild(ctx, out, start, fmt.Sprintf("etcd (%d/%d)", len(missing), len(missing)), modDir, ".", "", filepath.Join(dir, "etcd")); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(out, "nskube: [%s] all binaries built in %s\n", elapsed(start), dir)
	return dir, nil
}

func elapsed(start time.Time) string {
	d := time.Since(start).Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func versionLDFlags(version string) string {
	major, minor := "", ""
	if p := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3); len(p) >= 2 {
		major, minor = p[0], p[1]
	}
	var b strings.Builder
	b.WriteString("-s -w")
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean",
			pkg, version, pkg, major, pkg, minor, pkg)
	}
	return b.String()
}

// goBuild builds pkg in modDir into dst (via a temporary name, so an interrupted build leaves no
// half-written binary), printing a progress line every minute.
func goBuild(ctx context.Context, out io.Writer, start time.Time, what, modDir, pkg, ldflags, dst string) error {
	fmt.Fprintf(out, "nskube: [%s] building %s\n", elapsed(start), what)
	t0 := time.Now()
	// A private temporary directory beside dst: two builds of the same binary never write one file.
	tmpDir, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(dst))
	args := []string{"build", "-mod=mod", "-trimpath", "-tags=selinux,notest,grpcnotrace", "-o", tmp}
	if ldflags != "" {
		args = append(args, "-ldflags="+ldflags)
	}
	args = append(args, pkg)
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(time.Minute)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fmt.Fprintf(out, "nskube: [%s] still building %s (%s so far)\n", elapsed(start), what, time.Since(t0).Round(time.Second))
			}
		}
	}()
	err = goCmd(ctx, modDir, []string{"CGO_ENABLED=0"}, args...)
	close(done)
	if err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	fmt.Fprintf(out, "nskube: [%s] built %s in %s\n", elapsed(start), what, time.Since(t0).Round(time.Second))
	return nil
}

func goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off", "GOTOOLCHAIN=local")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 4000 {
			msg = msg[len(msg)-4000:]
		}
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	return nil
}

var buildModTmpl = template.Must(template.New("go.mod").Parse(`// Generated by pathcost (pkg/cluster/nskube): builds Kubernetes {{.Version}} from the Go module proxy.
// k8s.io/kubernetes replaces its staging modules with ./staging paths, which a dependent module cannot
// follow, so each one is replaced here by the published module of the same version.
module pathcost.local/k8sbuild

go {{.Go}}

godebug default=go{{.GoMinor}}

require k8s.io/kubernetes {{.Version}}

replace (
{{- range .Staging}}
	{{.}} => {{.}} {{$.StagingVersion}}
{{- end}}
)
`))

// StagingModules reads the go.mod of k8s.io/kubernetes@version (through the Go module proxy) and
// returns the staging modules it replaces with ./staging paths, and its go directive.
func StagingModules(ctx context.Context, version string) (mods []string, goVersion string, err error) {
	tmp, err := os.MkdirTemp("", "pathcost-k8smod-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module pathcost.local/probe\n\ngo 1.24\n"), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "k8s.io/kubernetes@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local")
	outb, err := cmd.Output()
	var info struct{ GoMod, Error string }
	if jerr := json.Unmarshal(outb, &info); jerr != nil || info.Error != "" || info.GoMod == "" {
		return nil, "", fmt.Errorf("go mod download k8s.io/kubernetes@%s: %v %s", version, err, info.Error)
	}
	f, err := os.Open(info.GoMod)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	return parseStaging(f)
}

func parseStaging(r io.Reader) (mods []string, goVersion string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
		line = strings.TrimPrefix(line, "replace ")
		if l, r, ok := strings.Cut(line, "=>"); ok && strings.HasPrefix(strings.TrimSpace(r), "./staging/") {
			mods = append(mods, strings.Fields(l)[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, "", err
	}
	if len(mods) == 0 {
		return nil, "", errors.New("no ./staging replacements found in the k8s.io/kubernetes go.mod")
	}
	return mods, goVersion, nil
}

// WriteKubernetesBuildModule writes into dir the wrapper module that builds Kubernetes version:
// it requires k8s.io/kubernetes@version and replaces every staging module with v0.MINOR.PATCH.
func WriteKubernetesBuildModule(ctx context.Context, dir, version string) error {
	mods, goVer, err := StagingModules(ctx, version)
	if err != nil {
		return err
	}
	return writeBuildModule(dir, version, mods, goVer)
}

func writeBuildModule(dir, version string, mods []string, goVer string) error {
	if goVer == "" {
		goVer = "1.24.0"
	}
	goMinor := goVer
	if p := strings.Split(goVer, "."); len(p) >= 2 {
		goMinor = p[0] + "." + p[1]
	}
	var buf bytes.Buffer
	err := buildModTmpl.Execute(&buf, map[string]any{
		"Version": version, "StagingVersion": "v0" + strings.TrimPrefix(version, "v1"),
		"Staging": mods, "Go": goVer, "GoMinor": goMinor,
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A package of the module is needed for `go build -mod=mod` to resolve the graph.
	if err := os.WriteFile(filepath.Join(dir, "doc.go"), []byte("// Package k8sbuild only anchors the generated build module.\npackage k8sbuild\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.mod"), buf.Bytes(), 0o644)
}

func writeEtcdModule(dir, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mod := fmt.Sprintf("// Generated by pathcost: etcd %s as a static binary.\nmodule pathcost.local/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n", version, version)
	main := "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644)
}
