package sidecar

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pathcost/pathcost/pkg/image"
)

// Default references of the two images.
const (
	HAProxyRef = "pathcost/sidecar-haproxy:dev"
	InitRef    = "pathcost/sidecar-init:dev"
)

// Paths inside the images.
const (
	haproxyBin     = "/usr/sbin/haproxy"
	nftMulti       = "/usr/sbin/xtables-nft-multi"
	legacyMulti    = "/usr/sbin/xtables-legacy-multi"
	nftRestore     = "/usr/sbin/iptables-nft-restore"
	legacyRestore  = "/usr/sbin/iptables-legacy-restore"
	defaultRestore = "/usr/sbin/iptables-restore"
)

// Debian packages the images are made from.
const (
	haproxyPackage  = "haproxy"
	iptablesPackage = "iptables"
)

// Images are the two images of the emulated sidecar, written as docker-format archives.
type Images struct {
	// HAProxyRef and InitRef are the images' references (Emulated.HAProxyImage, .InitImage).
	HAProxyRef string
	InitRef    string
	// HAProxyArchive and InitArchive are the archive files, for `ctr images import`,
	// `kind load image-archive` or `tcpload cluster load`.
	HAProxyArchive string
	InitArchive    string
	// Proxy names the proxy in the image and its version: "haproxy 2.6.12-1+deb12u4 (emulating
	// Envoy)", for provider.Sidecar.Proxy.
	Proxy string
}

// BuildImages writes the HAProxy image (HAProxyRef) and the init image (InitRef) as
// sidecar-haproxy.tar and sidecar-init.tar into dir, from this machine's Debian packages haproxy
// and iptables (apt-get install haproxy iptables) and the shared libraries they load.
func BuildImages(ctx context.Context, dir string) (*Images, error) {
	hs, proxy, err := HAProxyImage(ctx, HAProxyRef)
	if err != nil {
		return nil, err
	}
	is, err := InitImage(ctx, InitRef)
	if err != nil {
		return nil, err
	}
	imgs := &Images{
		HAProxyRef: hs.Ref, InitRef: is.Ref, Proxy: proxy,
		HAProxyArchive: filepath.Join(dir, "sidecar-haproxy.tar"),
		InitArchive:    filepath.Join(dir, "sidecar-init.tar"),
	}
	if err := image.WriteArchive(hs, imgs.HAProxyArchive); err != nil {
		return nil, fmt.Errorf("sidecar image: %w", err)
	}
	if err := image.WriteArchive(is, imgs.InitArchive); err != nil {
		return nil, fmt.Errorf("sidecar init image: %w", err)
	}
	return imgs, nil
}

// HAProxyImage is the spec of the proxy image tagged ref: this machine's /usr/sbin/haproxy (Debian
// package haproxy) with its shared libraries, /etc/passwd and /etc/group naming uid/gid ProxyUID
// istio-proxy, running as ProxyUID with entrypoint `haproxy -db` (foreground, logs to stderr) and
// default arguments `-f ConfigPath`. It also returns the proxy's name and version.
func HAProxyImage(ctx context.Context, ref string) (image.Spec, string, error) {
	files, err := packageFiles(ctx, haproxyPackage)
	if err != nil {
		return image.Spec{}, "", err
	}
	if !slices.Contains(files, haproxyBin) {
		return image.Spec{}, "", fmt.Errorf("sidecar image: package %s has no %s", haproxyPackage, haproxyBin)
	}
	out, err := exec.CommandContext(ctx, haproxyBin, "-v").CombinedOutput()
	if err != nil {
		return image.Spec{}, "", fmt.Errorf("sidecar image: %s -v: %w: %s", haproxyBin, err, out)
	}
	proxy, err := ParseHAProxyVersion(string(out))
	if err != nil {
		return image.Spec{}, "", err
	}
	hf, err := image.HostFiles(ctx, haproxyBin)
	if err != nil {
		return image.Spec{}, "", fmt.Errorf("sidecar image: %w", err)
	}
	uid := fmt.Sprint(ProxyUID)
	return image.Spec{
		Ref:   ref,
		Files: hf,
		Data: map[string][]byte{
			"/etc/passwd": []byte("root:x:0:0:root:/:/usr/sbin/nologin\nistio-proxy:x:" + uid + ":" + uid + "::/:/usr/sbin/nologin\n"),
			"/etc/group":  []byte("root:x:0:\nistio-proxy:x:" + uid + ":\n"),
		},
		Entrypoint: []string{haproxyBin, "-db"},
		Cmd:        []string{"-f", ConfigPath},
		User:       uid + ":" + uid,
		Labels:     map[string]string{"org.pathcost.proxy": proxy},
	}, proxy, nil
}

// InitImage is the spec of the init image tagged ref: iptables-restore (Debian package iptables)
// with both backends — iptables-nft-restore (nf_tables over netlink: needs only CAP_NET_ADMIN) and
// iptables-legacy-restore (the x_tables socket interface: also needs CAP_NET_RAW) — their shared
// libraries, and the xtables extension modules they dlopen with theirs. The entrypoint is
// iptables-restore, the nft backend.
func InitImage(ctx context.Context, ref string) (image.Spec, error) {
	files, err := packageFiles(ctx, iptablesPackage)
	if err != nil {
		return image.Spec{}, err
	}
	progs := []string{nftMulti, legacyMulti}
	for _, p := range progs {
		if !slices.Contains(files, p) {
			return image.Spec{}, fmt.Errorf("sidecar init image: package %s has no %s", iptablesPackage, p)
		}
	}
	var modules []string
	for _, f := range files {
		if path.Base(path.Dir(f)) == "xtables" && strings.HasSuffix(f, ".so") {
			modules = append(modules, f)
		}
	}
	if len(modules) == 0 {
		return image.Spec{}, fmt.Errorf("sidecar init image: package %s lists no xtables modules", iptablesPackage)
	}
	hf, err := image.HostFiles(ctx, append(progs, modules...)...)
	if err != nil {
		return image.Spec{}, fmt.Errorf("sidecar init image: %w", err)
	}
	links := map[string]string{}
	for _, name := range []string{"iptables-nft-restore", "iptables-nft-save", "iptables-nft", "iptables-restore", "iptables-save", "iptables"} {
		links["/usr/sbin/"+name] = path.Base(nftMulti)
	}
	for _, name := range []string{"iptables-legacy-restore", "iptables-legacy-save", "iptables-legacy"} {
		links["/usr/sbin/"+name] = path.Base(legacyMulti)
	}
	return image.Spec{
		Ref:        ref,
		Files:      hf,
		Symlinks:   links,
		Data:       map[string][]byte{"/run/.keep": nil}, // iptables-legacy's lock lives in /run
		Entrypoint: []string{defaultRestore},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}, nil
}

// packageFiles lists the files a Debian package installed (dpkg-query -L).
func packageFiles(ctx context.Context, pkg string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-L", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("sidecar image: files of the Debian package %s (apt-get install %s): %w", pkg, pkg, err)
	}
	var files []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.TrimSpace(sc.Text())
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	return files, sc.Err()
}

// ParseHAProxyVersion reads `haproxy -v` output and returns e.g. "haproxy 2.6.12-1+deb12u4
// (emulating Envoy)".
func ParseHAProxyVersion(out string) (string, error) {
	first, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(first) // HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/
	if len(f) < 3 || f[0] != "HAProxy" || f[1] != "version" {
		return "", fmt.Errorf("haproxy version: unexpected output %q", first)
	}
	return "haproxy " + f[2] + " (emulating Envoy)", nil
}
