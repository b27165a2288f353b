// Package image builds container images from static binaries without a container engine, using
// go-containerregistry: one layer holding the files, a config with the entrypoint, os and
// architecture set. The same image can be written as a docker/OCI tarball (for `ctr images import`,
// `kind load image-archive` or `docker load`) or pushed to a registry.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Spec describes an image made of a few files.
type Spec struct {
	Ref        string            // e.g. "pathcost/tcpload:dev"
	Files      map[string]string // path in the image -> file on the host (mode kept)
	Entrypoint []string
	Cmd        []string
	Env        []string
	OS         string // default "linux"
	Arch       string // default runtime.GOARCH
}

// epoch keeps layers reproducible: the same binaries give the same digest.
var epoch = time.Unix(0, 0)

// Build assembles the image described by s.
func Build(s Spec) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		b, err := layerTar(s.Files)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = s.OS
	if cf.OS == "" {
		cf.OS = "linux"
	}
	cf.Architecture = s.Arch
	if cf.Architecture == "" {
		cf.Architecture = runtime.GOARCH
	}
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = s.Entrypoint
	cf.Config.Cmd = s.Cmd
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.Env...)
	return mutate.ConfigFile(img, cf)
}

func layerTar(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// /tmp is useful to most programs; create it even if no file goes there.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch}); err != nil {
		return nil, err
	}
	for _, dst := range keys {
		src := files[dst]
		dst = path.Clean("/" + dst)[1:]
		for d := path.Dir(dst); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		_ = st
	}
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl) // parents before children
	for _, d := range dl {
		if d == "tmp" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, dst := range keys {
		src := files[dst]
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		st, _ := os.Stat(src)
		h := &tar.Header{Typeflag: tar.TypeReg, Name: path.Clean("/" + dst)[1:], Mode: int64(st.Mode().Perm()), Size: int64(len(b)), ModTime: epoch}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteArchive builds s and writes it as a docker-format tarball (manifest.json + OCI-compatible
// blobs) at file, tagged s.Ref.
func WriteArchive(s Spec, file string) error {
	img, err := Build(s)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(s.Ref)
	if err != nil {
		return fmt.Errorf("image ref %q: %w", s.Ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	// A unique temporary name in the same directory, then a rename: concurrent writers of the same
	// archive never write into one file, and a reader never sees a half-written one.
	f, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = tarball.Write(ref, img, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write image archive %s: %w", file, err)
	}
	return nil
}

// Push builds s and pushes it to ref (a registry reference such as registry.example:5000/tcpload:v1),
// with credentials from the docker config if any.
func Push(ctx context.Context, s Spec, ref string, insecure bool) error {
	img, err := Build(s)
	if err != nil {
		return err
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return fmt.Errorf("push: image reference %q: %w", ref, err)
	}
	return remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
}

// GoBuildStatic builds the Go package pkg (run from dir, "" = current) into out as a static binary.
func GoBuildStatic(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// TCPLoad is the spec of the tcpload image from a static tcpload binary.
func TCPLoad(binary, ref string) Spec {
	if ref == "" {
		ref = TCPLoadRef
	}
	return Spec{Ref: ref, Files: map[string]string{"/usr/local/bin/tcpload": binary}, Entrypoint: []string{"/usr/local/bin/tcpload"}}
}

// TCPLoadRef is the default name of the tcpload image.
const TCPLoadRef = "pathcost/tcpload:dev"
