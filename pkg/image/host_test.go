package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLdd(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n" +
		"\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f9c)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f9c)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f9c)\n"
	libs, err := parseLdd("/usr/sbin/haproxy", out)
	require.NoError(t, err)
	assert.Equal(t, []string{"/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}, libs)

	_, err = parseLdd("/usr/sbin/x", "\tlibgone.so.1 => not found\n")
	assert.ErrorContains(t, err, "libgone.so.1 not found")

	libs, err = parseLdd("/x", "\tstatically linked\n")
	require.NoError(t, err)
	assert.Empty(t, libs)
}

func TestHostFiles(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	files, err := HostFiles(context.Background(), sh)
	require.NoError(t, err)
	assert.Equal(t, sh, files[sh])
	assert.Greater(t, len(files), 1, "a dynamically linked shell brings its libraries: %v", files)
	_, err = HostFiles(context.Background(), "relative/path")
	assert.Error(t, err)
	_, err = HostFiles(context.Background(), "/nonexistent/prog")
	assert.Error(t, err)
}

func TestLayerSymlinksAndData(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "multi")
	require.NoError(t, os.WriteFile(bin, []byte("x"), 0o755))
	s := Spec{
		Ref:      "pathcost/test:dev",
		Files:    map[string]string{"/usr/sbin/multi": bin},
		Symlinks: map[string]string{"/usr/sbin/alias": "multi"},
		Data:     map[string][]byte{"/etc/passwd": []byte("root:x:0:0::/:/bin/false\n")},
		User:     "1337:1337",
	}
	b, err := layerTar(s)
	require.NoError(t, err)
	got := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got[h.Name] = h
	}
	require.Contains(t, got, "usr/sbin/alias")
	assert.Equal(t, byte(tar.TypeSymlink), got["usr/sbin/alias"].Typeflag)
	assert.Equal(t, "multi", got["usr/sbin/alias"].Linkname)
	assert.Equal(t, int64(0o755), got["usr/sbin/multi"].Mode)
	assert.Equal(t, int64(0o644), got["etc/passwd"].Mode)
	assert.Contains(t, got, "etc/")
	assert.Equal(t, int64(0o1777), got["tmp/"].Mode)

	img, err := Build(s)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "1337:1337", cf.Config.User)

	s.Data["/usr/sbin/multi"] = []byte("dup")
	_, err = layerTar(s)
	assert.ErrorContains(t, err, "given twice")
	delete(s.Data, "/usr/sbin/multi")
	s.Symlinks["/etc/passwd/x"] = "y"
	_, err = layerTar(s)
	assert.ErrorContains(t, err, "both a file and a directory")
}
