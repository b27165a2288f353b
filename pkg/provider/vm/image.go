package vm

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	_ "embed" // the image build script
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

//go:embed build.sh
var buildScript string

// buildTimeout bounds building an image (debootstrap downloads about 100 MB of packages).
const buildTimeout = 30 * time.Minute

// image is a built VM image in the cache: base.img (ext4, booted copy-on-write), the root
// login key and the image's ssh host key; for QEMU also vmlinuz and initrd.img beside it.
type image struct {
	dir  string
	base string
	// kernelVersion is the QEMU guest kernel's version ("" for UML).
	kernelVersion string
	signer        xssh.Signer
	hostKey       xssh.PublicKey
	// built is how long building took; 0 when the image came from the cache.
	built time.Duration
}

// release is what the image is built from: the Debian suite and mirror, and the guest kernel
// ("uml" and the UML kernel's version, or "qemu" for Debian's stock kernel inside the image).
type release struct {
	suite, mirror, kernel string
}

// qemuKernel is release.kernel for QEMU images: Debian's current linux-image-amd64, installed in
// the image (its version is read back from the image: kernel.version).
const qemuKernel = "qemu"

// hypervisorArg is build.sh's HYPERVISOR argument for the release's kernel.
func (r release) hypervisorArg() string {
	if r.kernel == qemuKernel {
		return "qemu"
	}
	return "uml"
}

// cacheDir is the image's directory: keyed by the build script, the release, the mirror and
// the kernel, so a change to any of them builds a new image.
func (r release) cacheDir(root string) string {
	h := sha256.New()
	for _, s := range []string{buildScript, r.suite, r.mirror, r.kernel, subnet, macPrefix, fmt.Sprint(maxVMs)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return filepath.Join(root, r.suite+"-"+r.kernel+"-"+hex.EncodeToString(h.Sum(nil))[:12])
}

// ensureImage returns the cached image for r, building it first if needed. A lock file
// beside the directory keeps two runs from building the same image at once.
func ensureImage(ctx context.Context, root string, r release, log io.Writer) (*image, error) {
	dir := r.cacheDir(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("vm image cache: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vm image cache lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("vm image cache lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = unix.Flock(int(lock.Fd()), unix.LOCK_UN) }()

	img := &image{dir: dir, base: filepath.Join(dir, "base.img")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vm image cache: %w", err)
	}
	if img.signer, err = loadOrMakeKey(filepath.Join(dir, "id_ed25519")); err != nil {
		return nil, err
	}
	if _, err := os.Stat(img.base); errors.Is(err, os.ErrNotExist) {
		start := time.Now()
		if err := build(ctx, dir, r, img.signer.PublicKey(), log); err != nil {
			return nil, err
		}
		img.built = time.Since(start)
	}
	data, err := os.ReadFile(filepath.Join(dir, "host_ed25519_key.pub"))
	if err != nil {
		return nil, fmt.Errorf("vm image %s: host key: %w", dir, err)
	}
	if img.hostKey, _, _, _, err = xssh.ParseAuthorizedKey(data); err != nil {
		return nil, fmt.Errorf("vm image %s: host key: %w", dir, err)
	}
	if r.kernel == qemuKernel {
		v, err := os.ReadFile(filepath.Join(dir, "kernel.version"))
		if err != nil {
			return nil, fmt.Errorf("vm image %s: kernel: %w", dir, err)
		}
		img.kernelVersion = strings.TrimSpace(string(v))
	}
	return img, nil
}

// loadOrMakeKey reads the cache's root login key, generating it the first time.
func loadOrMakeKey(file string) (xssh.Signer, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := xssh.MarshalPrivateKey(priv, "pathcost vm")
		if err != nil {
			return nil, err
		}
		data = pem.EncodeToMemory(block)
		if err := os.WriteFile(file, data, 0o600); err != nil {
			return nil, fmt.Errorf("vm key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("vm key: %w", err)
	}
	s, err := xssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("vm key %s: %w", file, err)
	}
	return s, nil
}

// build runs build.sh into dir, its output to dir/build.log and to log (prefixed).
func build(ctx context.Context, dir string, r release, key xssh.PublicKey, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	logFile, err := os.Create(filepath.Join(dir, "build.log"))
	if err != nil {
		return fmt.Errorf("vm image build log: %w", err)
	}
	defer logFile.Close()
	fmt.Fprintf(log, "vm: building the image in %s (debootstrap %s from %s; a few minutes, once)\n", dir, r.suite, r.mirror)
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, "sh", "-c", buildScript, "build.sh", dir, r.suite, r.mirror,
		strings.TrimSpace(string(xssh.MarshalAuthorizedKey(key))), fmt.Sprint(maxVMs), subnet, macPrefix, r.hypervisorArg())
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if strings.HasPrefix(sc.Text(), "== ") {
				fmt.Fprintln(log, "vm: build: "+strings.TrimPrefix(sc.Text(), "== "))
			}
		}
	}()
	err = cmd.Run()
	_ = pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("vm image build (log: %s): %w", logFile.Name(), err)
	}
	return nil
}

// hostRelease finds this machine's Debian release and the mirror apt uses for it.
func hostRelease() (release, error) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return release{}, err
	}
	var r release
	var id string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_CODENAME":
			r.suite = v
		}
	}
	if id != "debian" || r.suite == "" {
		return release{}, fmt.Errorf("the image is built with debootstrap from this machine's Debian release; this is %q %q", id, r.suite)
	}
	r.mirror = aptMirror(r.suite)
	if r.mirror == "" {
		return release{}, fmt.Errorf("no Debian mirror for %s in /etc/apt/sources.list(.d)", r.suite)
	}
	return r, nil
}

// aptMirror returns the first apt source (one-line or deb822 format) serving suite.
func aptMirror(suite string) string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := mirrorIn(string(data), suite); m != "" {
			return m
		}
	}
	return ""
}

// mirrorIn finds suite's URI in sources text ("deb URI SUITE ..." lines or deb822 stanzas).
func mirrorIn(text, suite string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		var uris, suites []string
		for _, line := range strings.Split(stanza, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[0] == "deb":
				i := 1
				if strings.HasPrefix(f[1], "[") {
					for i < len(f) && !strings.HasSuffix(f[i], "]") {
						i++
					}
					i++
				}
				if i+1 < len(f) && f[i+1] == suite {
					return f[i]
				}
			case len(f) >= 2 && f[0] == "URIs:":
				uris = f[1:]
			case len(f) >= 2 && f[0] == "Suites:":
				suites = f[1:]
			}
		}
		for _, s := range suites {
			if s == suite && len(uris) > 0 {
				return uris[0]
			}
		}
	}
	return ""
}
