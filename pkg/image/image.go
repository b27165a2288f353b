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
	Files      map[string]string // path in the image -> file on the host (mode kept, symlinks followed)
	Symlinks   map[string]string // path in the image -> link target (e.g. "xtables-nft-multi")
	Data       map[string][]byte // path in the image -> contents of a 0644 file (e.g. /etc/passwd)
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string            // the user the entrypoint runs as, e.g. "1337:1337"; "" is root
	Labels     map[string]string // image config labels
	OS         string            // default "linux"
	Arch       string            // default runtime.GOARCH
}

// epoch keeps layers reproducible: the same binaries give the same digest.
var epoch = time.Unix(0, 0)

// Build assembles the image described by s.
func Build(s Spec) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		b, err := layerTar(s)
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
	cf.Config.User = s.User
	cf.Config.Labels = s.Labels
	return mutate.ConfigFile(img, cf)
}

// layerTar writes the spec's files, data files and symlinks, with every parent directory, as one
// reproducible tar layer (sorted, epoch times, root-owned).
func layerTar(s Spec) ([]byte, error) {
	type entry struct {
		src  string // host file (Files)
		data []byte // contents (Data)
		link string // target (Symlinks)
		kind byte
	}
	entries := map[string]entry{}
	add := func(p string, e entry) error {
		p = path.Clean("/" + p)[1:]
		if p == "" || p == "." {
			return fmt.Errorf("image %s: empty path", s.Ref)
		}
		if _, dup := entries[p]; dup {
			return fmt.Errorf("image %s: %s given twice", s.Ref, p)
		}
		entries[p] = e
		return nil
	}
	for dst, src := range s.Files {
		if err := add(dst, entry{src: src, kind: tar.TypeReg}); err != nil {
			return nil, err
		}
	}
	for dst, b := range s.Data {
		if err := add(dst, entry{data: b, kind: tar.TypeReg}); err != nil {
			return nil, err
		}
	}
	for dst, target := range s.Symlinks {
		if err := add(dst, entry{link: target, kind: tar.TypeSymlink}); err != nil {
			return nil, err
		}
	}
	dirs := map[string]bool{"tmp": true}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
		for d := path.Dir(k); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sort.Strings(keys)
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		if entries[d].kind != 0 {
			return nil, fmt.Errorf("image %s: %s is both a file and a directory", s.Ref, d)
		}
		dl = append(dl, d)
	}
	sort.Strings(dl) // parents before children
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range dl {
		mode := int64(0o755)
		if d == "tmp" { // useful to most programs; sticky and world-writable
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		e := entries[k]
		h := &tar.Header{Typeflag: e.kind, Name: k, Mode: 0o644, ModTime: epoch}
		data := e.data
		switch {
		case e.kind == tar.TypeSymlink:
			h.Linkname, h.Mode = e.link, 0o777
		case e.src != "":
			b, err := os.ReadFile(e.src)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", s.Ref, err)
			}
			st, err := os.Stat(e.src)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", s.Ref, err)
			}
			data, h.Mode = b, int64(st.Mode().Perm())
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
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
