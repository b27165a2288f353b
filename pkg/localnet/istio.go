package localnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Sidecar tuning, chosen for throughput and documented in Env.Notes.
const (
	sidecarBufSize = 65536 // tune.bufsize: bytes per stream buffer
	sidecarMaxConn = 4096  // global and per-frontend maxconn
	sidecarTimeout = "1h"  // client/server inactivity timeouts (runs are minutes)
	// sidecarReady bounds the wait for a proxy to listen.
	sidecarReady = 10 * time.Second
	// serverIdentity is the DNS name in the server sidecar's certificate,
	// which the client sidecar verifies.
	serverIdentity = "tcpload.default.svc.cluster.local"
)

// istio adds istio-iptables capture rules to both pods and starts the two
// sidecars with mutual TLS between them.
func (b *builder) istio() {
	if b.err != nil {
		return
	}
	dir := filepath.Join(b.e.StateDir, "istio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.fail(fmt.Errorf("istio state dir: %w", err))
		return
	}
	pki, err := writePKI(dir, ProxyUID, ProxyUID)
	if err != nil {
		b.fail(err)
		return
	}
	ver, err := haproxyVersion(b)
	if err != nil {
		b.fail(err)
		return
	}
	rules := istioRules(b.e.Spec.ServerPort)
	b.iptablesRestore(b.e.Client.NetNS, rules)
	b.iptablesRestore(b.e.Server.NetNS, rules)

	th := b.e.Spec.SidecarThreads
	clientCfg := haproxyGlobal(th) + fmt.Sprintf(`
frontend outbound_capture
    bind 0.0.0.0:%d
    default_backend outbound_mtls

backend outbound_mtls
    # 0.0.0.0 with no port: connect to the connection's original destination
    # (SO_ORIGINAL_DST of the REDIRECTed socket), like Envoy's
    # original_dst listener filter.
    server original_dst 0.0.0.0 ssl crt %s ca-file %s verify required verifyhost %s alpn istio
`, OutboundCapturePort, pki.client, pki.ca, serverIdentity)
	serverCfg := haproxyGlobal(th) + fmt.Sprintf(`
frontend inbound_capture
    bind 0.0.0.0:%d ssl crt %s ca-file %s verify required alpn istio
    default_backend inbound_app

backend inbound_app
    server app 127.0.0.1:%d
`, InboundCapturePort, pki.server, pki.ca, b.e.Spec.ServerPort)

	b.startSidecar("client-side", b.e.Client, dir, clientCfg, OutboundCapturePort, ver)
	b.startSidecar("server-side", b.e.Server, dir, serverCfg, InboundCapturePort, ver)

	b.note(fmt.Sprintf("istio: the sidecar is emulated: %s in TCP mode as uid %d, NOT Envoy (Envoy is not packaged for Debian); mutual TLS between the sidecars (TLS 1.3, ECDSA P-256 certificates from a per-run CA with SPIFFE URI SANs, client verifies the server's identity, server requires a client certificate)", ver, ProxyUID))
	b.note(fmt.Sprintf("istio: istio-iptables nat rules in both pods: OUTPUT -> ISTIO_OUTPUT (uid/gid %d RETURN, loopback RETURN, else ISTIO_REDIRECT: REDIRECT to %d); PREROUTING -> ISTIO_INBOUND (tcp dport %d -> ISTIO_IN_REDIRECT: REDIRECT to %d)", ProxyUID, OutboundCapturePort, b.e.Spec.ServerPort, InboundCapturePort))
	b.note(fmt.Sprintf("istio: path: client app -> REDIRECT -> client-side proxy :%d -> original destination %s recovered with SO_ORIGINAL_DST (haproxy `server 0.0.0.0`) -> TLS over the pod network -> server pod PREROUTING REDIRECT -> server-side proxy :%d (TLS terminated) -> 127.0.0.1:%d -> server app, which sees its peer as 127.0.0.1 (Istio before 1.10; later versions connect to the pod IP from 127.0.0.6)", OutboundCapturePort, b.e.Target, InboundCapturePort, b.e.Spec.ServerPort))
	b.note(fmt.Sprintf("istio: proxy tuning: nbthread %d (Istio's default sidecar concurrency is 2 Envoy workers; a connection is served by one worker either way), tune.bufsize %d, maxconn %d, timeouts client/server %s, connect 5s", th, sidecarBufSize, sidecarMaxConn, sidecarTimeout))
}

// haproxyGlobal renders the global and defaults sections of a sidecar.
func haproxyGlobal(threads int) string {
	return fmt.Sprintf(`# pathcost localnet sidecar (emulating an Istio/Envoy sidecar)
global
    nbthread %d
    maxconn %d
    tune.bufsize %d
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-server-options ssl-min-ver TLSv1.2

defaults
    mode tcp
    maxconn %d
    timeout connect 5s
    timeout client %s
    timeout server %s
`, threads, sidecarMaxConn, sidecarBufSize, sidecarMaxConn, sidecarTimeout, sidecarTimeout)
}

// haproxyVersion returns e.g. "haproxy 2.6.12-1+deb12u4 (emulating Envoy)".
func haproxyVersion(b *builder) (string, error) {
	out, err := run(b.ctx, "", toolPath(toolHAProxy), "-v")
	if err != nil {
		return "", fmt.Errorf("haproxy version: %w", err)
	}
	first, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(first) // HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/
	if len(f) < 3 {
		return "", fmt.Errorf("haproxy version: unexpected output %q", first)
	}
	return "haproxy " + f[2] + " (emulating Envoy)", nil
}

// startSidecar writes a proxy config and starts HAProxy in the pod's
// namespace as uid/gid ProxyUID, in the foreground (-db), with Pdeathsig
// SIGKILL and its own process group, then waits until it listens on port.
func (b *builder) startSidecar(name string, pod Host, dir, cfg string, port int, ver string) {
	if b.err != nil {
		return
	}
	cfgPath := filepath.Join(dir, name+".cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		b.fail(fmt.Errorf("sidecar %s config: %w", name, err))
		return
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.fail(fmt.Errorf("sidecar %s log: %w", name, err))
		return
	}
	defer logf.Close()
	cmd := exec.Command(toolPath(toolHAProxy), "-db", "-f", cfgPath)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: ProxyUID, Gid: ProxyUID, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	if err := startInNetns(pod.NetNS, cmd); err != nil {
		b.fail(fmt.Errorf("start sidecar %s: %w", name, err))
		return
	}
	p := &proc{name: "sidecar " + name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	b.e.procs = append(b.e.procs, p)
	pid := cmd.Process.Pid
	deadline := time.Now().Add(sidecarReady)
	for !listening(pid, port) {
		select {
		case <-p.done:
			b.fail(fmt.Errorf("sidecar %s exited (%v) before listening on %d: %s", name, p.err, port, tail(logPath)))
			return
		case <-b.ctx.Done():
			b.fail(fmt.Errorf("sidecar %s: %w", name, b.ctx.Err()))
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.fail(fmt.Errorf("sidecar %s not listening on %d after %v: %s", name, port, sidecarReady, tail(logPath)))
			return
		}
	}
	b.e.Sidecars = append(b.e.Sidecars, Sidecar{Name: name, Host: pod, PID: pid, Proxy: ver})
}

// tail returns the end of a log file for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "..." + s[len(s)-1500:]
	}
	if s == "" {
		return "(empty log)"
	}
	return s
}

// pkiFiles are the paths of a run's mesh credentials.
type pkiFiles struct {
	ca     string // CA certificate (PEM)
	client string // client-side sidecar: certificate + key (PEM)
	server string // server-side sidecar: certificate + key (PEM)
}

// writePKI creates a CA and one certificate per sidecar (ECDSA P-256, SPIFFE
// URI SAN as Istio issues, plus a DNS SAN HAProxy can verify), readable only
// by uid:gid.
func writePKI(dir string, uid, gid int) (pkiFiles, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pkiFiles{}, fmt.Errorf("pki: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}, CommonName: "pathcost localnet mesh CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return pkiFiles{}, fmt.Errorf("pki: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return pkiFiles{}, fmt.Errorf("pki: parse CA: %w", err)
	}
	files := pkiFiles{
		ca:     filepath.Join(dir, "ca.pem"),
		client: filepath.Join(dir, "client-side.pem"),
		server: filepath.Join(dir, "server-side.pem"),
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := writeOwned(files.ca, caPEM, uid, gid); err != nil {
		return pkiFiles{}, err
	}
	leaf := func(path, sa, dns string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("pki: %s key: %w", sa, err)
		}
		spiffe, err := url.Parse("spiffe://cluster.local/ns/default/sa/" + sa)
		if err != nil {
			return fmt.Errorf("pki: %s SAN: %w", sa, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{Organization: []string{"cluster.local"}, CommonName: dns},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			DNSNames:     []string{dns},
			URIs:         []*url.URL{spiffe},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("pki: %s certificate: %w", sa, err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("pki: %s key encoding: %w", sa, err)
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
		return writeOwned(path, out, uid, gid)
	}
	if err := leaf(files.client, "tcpload-client", "tcpload-client.default.svc.cluster.local"); err != nil {
		return pkiFiles{}, err
	}
	if err := leaf(files.server, "tcpload", serverIdentity); err != nil {
		return pkiFiles{}, err
	}
	return files, nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// writeOwned writes a 0600 file owned by uid:gid.
func writeOwned(path string, data []byte, uid, gid int) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pki: chown %s: %w", path, err)
	}
	return nil
}
