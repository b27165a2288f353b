package image

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "img.tar")
	if err := WriteArchive(TCPLoad(bin, ""), archive); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(TCPLoadRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/usr/local/bin/tcpload" {
		t.Fatalf("config: os %s arch %s entrypoint %v", cf.OS, cf.Architecture, cf.Config.Entrypoint)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "usr/local/bin/tcpload" {
			found = h.Mode&0o111 != 0
		}
	}
	if !found {
		t.Fatal("usr/local/bin/tcpload (executable) not in the layer")
	}
	// Same input, same digest: images are reproducible.
	d1, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(TCPLoad(bin, ""))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := again.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("digests differ: %s %s", d1, d2)
	}
}

// TestPush pushes to an in-memory registry on 127.0.0.1 and reads the image back.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/pathcost/tcpload:test"
	if err := Push(context.Background(), TCPLoad(bin, ""), ref, true); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Entrypoint[0] != "/usr/local/bin/tcpload" {
		t.Errorf("entrypoint %v", cf.Config.Entrypoint)
	}
}

// TestWriteArchiveTemp: the archive is written through a temporary file of its own that does not
// stay behind, and an existing archive is replaced whole.
func TestWriteArchiveTemp(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "out", "img.tar")
	// A stale fixed-name temporary file (what an old writer used) must not be used or removed.
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive+".tmp", []byte("other writer"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := WriteArchive(TCPLoad(bin, ""), archive); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Dir(archive))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "img.tar,img.tar.tmp" {
		t.Errorf("files beside the archive: %v", names)
	}
	if b, err := os.ReadFile(archive + ".tmp"); err != nil || string(b) != "other writer" {
		t.Errorf("another writer's file touched: %q %v", b, err)
	}
	if _, err := tarball.ImageFromPath(archive, nil); err != nil {
		t.Errorf("archive unreadable: %v", err)
	}
}

// TestPauseArchiveName: the cached pause archive is keyed by its reference.
func TestPauseArchiveName(t *testing.T) {
	a, b := PauseArchiveName("registry.k8s.io/pause:3.10"), PauseArchiveName("registry.k8s.io/pause:3.9")
	if a == b {
		t.Fatalf("two references, one cache file %s", a)
	}
	if a != PauseArchiveName("registry.k8s.io/pause:3.10") {
		t.Fatal("not deterministic")
	}
	for _, n := range []string{a, b, PauseArchiveName("../../x/y:z")} {
		if strings.ContainsAny(n, "/:") || !strings.HasPrefix(n, "pause-") || !strings.HasSuffix(n, ".tar") {
			t.Errorf("bad file name %q", n)
		}
	}
}

// TestPushBadReference: the error says which reference could not be parsed.
func TestPushBadReference(t *testing.T) {
	err := Push(context.Background(), TCPLoad(os.Args[0], ""), "Bad Ref::", true)
	if err == nil || !strings.Contains(err.Error(), `"Bad Ref::"`) {
		t.Fatalf("error %v does not name the reference", err)
	}
}
