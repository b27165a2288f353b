package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/image"
)

func TestImagePushAndArchive(t *testing.T) {
	static := filepath.Join(t.TempDir(), "tcpload")
	build := exec.Command("go", "build", "-o", static, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/pathcost/tcpload:test"
	code, stdout, stderr := runTool(t, "image", "push", ref, "--binary", static, "--insecure")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "pushed "+ref)
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	img, err := remote.Image(r)
	require.NoError(t, err, "the pushed image is in the registry")
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"/usr/local/bin/tcpload"}, cf.Config.Entrypoint)

	archive := filepath.Join(t.TempDir(), "tcpload.tar")
	code, _, stderr = runTool(t, "image", "archive", archive, "--binary", static, "--ref", "pathcost/tcpload:x")
	require.Equal(t, 0, code, stderr)
	tag, err := name.NewTag("pathcost/tcpload:x")
	require.NoError(t, err)
	_, err = tarball.ImageFromPath(archive, &tag)
	assert.NoError(t, err, "the archive holds the tagged image")
}

func TestImageBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image"}, "usage: tcpload image push"},
		{[]string{"image", "pull"}, `unknown subcommand "pull"`},
		{[]string{"image", "push"}, "want exactly one REF"},
		{[]string{"image", "push", "a", "b"}, "want exactly one REF"},
		{[]string{"image", "push", "reg/x:1", "--binary", "/etc/hostname"}, "/etc/hostname is not a static binary"},
	} {
		code, _, stderr := runTool(t, tc.args...)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
	if !image.IsStatic(bin) {
		code, _, stderr := runTool(t, "image", "push", "reg/x:1")
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "not a static binary")
	}
}
