package sidecar

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/provider"
)

// TestImagesRun builds both images from this machine's packages, unpacks each into a directory
// and runs its programs chrooted there as root: the images hold everything the binaries load.
func TestImagesRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot")
	}
	for _, p := range []string{haproxyBin, nftMulti, legacyMulti} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs apt-get install haproxy iptables: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	imgs, err := BuildImages(ctx, dir)
	require.NoError(t, err)
	assert.Contains(t, imgs.Proxy, "haproxy 2.")

	hroot := unpack(t, imgs.HAProxyArchive, imgs.HAProxyRef)
	out := chrooted(t, hroot, 0, haproxyBin, "-vv")
	assert.Contains(t, out, "HAProxy version")
	assert.Contains(t, out, "OpenSSL")
	t.Logf("haproxy image: %s", firstLine(out))

	// Both sides' configurations, with this run's certificates, pass HAProxy's own check inside
	// the image as the proxy's uid: OpenSSL loads the keys and the CA there.
	e := &Emulated{ServerPort: 50012}
	cm, err := e.ConfigMap("default")
	require.NoError(t, err)
	sec, err := e.Secret("default")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(hroot, CertDir), 0o755))
	for k, v := range sec.Data {
		require.NoError(t, os.WriteFile(filepath.Join(hroot, CertDir, k), v, 0o444))
	}
	for _, side := range []string{provider.ClientSide, provider.ServerSide} {
		cfg := filepath.Join("/etc", side+".cfg")
		require.NoError(t, os.WriteFile(filepath.Join(hroot, cfg), []byte(cm.Data[configKey(side)]), 0o444))
		out := chrooted(t, hroot, ProxyUID, haproxyBin, "-c", "-f", cfg)
		assert.Contains(t, out, "Configuration file is valid", side)
	}

	iroot := unpack(t, imgs.InitArchive, imgs.InitRef)
	out = chrooted(t, iroot, 0, "/usr/sbin/iptables-restore", "--version")
	assert.Contains(t, out, "nf_tables")
	t.Logf("init image: %s", firstLine(out))
	out = chrooted(t, iroot, 0, legacyRestore, "--version")
	assert.Contains(t, out, "legacy")

	// The rules load with each backend in a fresh network namespace and read back as written.
	rules, err := Rules(50012)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(iroot, "rules"), []byte(rules), 0o644))
	for _, backend := range []string{"nft", "legacy"} {
		holder := exec.CommandContext(ctx, "sleep", "60")
		holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		require.NoError(t, holder.Start())
		ns := "--net=/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
		run := func(args ...string) string {
			out, err := exec.CommandContext(ctx, "nsenter", append([]string{ns, "--root=" + iroot}, args...)...).CombinedOutput()
			require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
			return string(out)
		}
		run("/usr/sbin/iptables-"+backend+"-restore", "/rules")
		saved := run("/usr/sbin/iptables-"+backend+"-save", "-t", "nat")
		_ = holder.Process.Kill()
		_ = holder.Wait()
		assert.Equal(t, ruleLines(rules), ruleLines(saved), backend)
	}
}

// ruleLines keeps the chain and rule lines of iptables-restore input or iptables-save output.
func ruleLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "-A ") || strings.HasPrefix(l, ":ISTIO") {
			out = append(out, l)
		}
	}
	return out
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// chrooted runs argv chrooted in root as uid:uid, with an empty environment but PATH, and
// returns its combined output.
func chrooted(t *testing.T, root string, uid int, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s in %s: %s", strings.Join(argv, " "), root, out)
	return string(out)
}

// unpack extracts an image archive's file system into a new directory.
func unpack(t *testing.T, archive, ref string) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	require.NoError(t, err)
	img, err := tarball.ImageFromPath(archive, &tag)
	require.NoError(t, err)
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(p, 0o755))
			require.NoError(t, os.Chmod(p, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)))
		case tar.TypeSymlink:
			require.NoError(t, os.Symlink(h.Linkname, p))
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode&0o777))
			require.NoError(t, err)
			_, err = io.Copy(f, tr)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		default:
			t.Fatalf("unexpected entry %s (type %c) in %s", h.Name, h.Typeflag, ref)
		}
	}
	return root
}

func modeBits(m int64) os.FileMode {
	if m&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
