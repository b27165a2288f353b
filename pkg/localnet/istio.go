package localnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/sidecar"
)

// sidecarReady bounds the wait for a proxy to listen.
const sidecarReady = 10 * time.Second

// istio adds istio-iptables capture rules to both pods and starts the two
// sidecars with mutual TLS between them (pkg/sidecar: rules, configuration,
// certificates).
func (b *builder) istio() {
	if b.err != nil {
		return
	}
	dir := filepath.Join(b.e.StateDir, "istio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.fail(fmt.Errorf("istio state dir: %w", err))
		return
	}
	pki, err := sidecar.NewPKI("default")
	if err != nil {
		b.fail(err)
		return
	}
	files, err := pki.WriteFiles(dir, ProxyUID, ProxyUID)
	if err != nil {
		b.fail(err)
		return
	}
	ver, err := haproxyVersion(b)
	if err != nil {
		b.fail(err)
		return
	}
	rules, err := sidecar.Rules(b.e.Spec.ServerPort)
	if err != nil {
		b.fail(err)
		return
	}
	b.iptablesRestore(b.e.Client.NetNS, rules)
	b.iptablesRestore(b.e.Server.NetNS, rules)

	th := b.e.Spec.SidecarThreads
	for _, side := range []struct {
		name, cert string
		port       int
		pod        Host
	}{
		{provider.ClientSide, files.ClientSide, OutboundCapturePort, b.e.Client},
		{provider.ServerSide, files.ServerSide, InboundCapturePort, b.e.Server},
	} {
		cfg, err := sidecar.HAProxyConfig(sidecar.ProxyConfig{
			Side: side.name, Threads: th, AppPort: b.e.Spec.ServerPort,
			CAFile: files.CA, CertFile: side.cert, ServerName: pki.ServerName,
		})
		if err != nil {
			b.fail(err)
			return
		}
		b.startSidecar(side.name, side.pod, dir, cfg, side.port, ver)
	}

	b.note(fmt.Sprintf("istio: the sidecar is emulated: %s in TCP mode as uid %d, NOT Envoy (Envoy is not packaged for Debian); %s", ver, ProxyUID, sidecar.MTLSNote()))
	b.note("istio: " + sidecar.RulesNote(b.e.Spec.ServerPort))
	b.note(fmt.Sprintf("istio: path: client app -> REDIRECT -> client-side proxy :%d -> original destination %s recovered with SO_ORIGINAL_DST (haproxy `server 0.0.0.0`) -> TLS over the pod network -> server pod PREROUTING REDIRECT -> server-side proxy :%d (TLS terminated) -> 127.0.0.1:%d -> server app, which sees its peer as 127.0.0.1 (Istio before 1.10; later versions connect to the pod IP from 127.0.0.6)", OutboundCapturePort, b.e.Target, InboundCapturePort, b.e.Spec.ServerPort))
	b.note("istio: " + sidecar.TuningNote(th))
	if len(b.e.Spec.SidecarEnv) > 0 {
		b.note(fmt.Sprintf("istio: SELF-TEST: the proxies run with %s added to their environment", strings.Join(b.e.Spec.SidecarEnv, " ")))
	}
}

// haproxyVersion returns e.g. "haproxy 2.6.12-1+deb12u4 (emulating Envoy)".
func haproxyVersion(b *builder) (string, error) {
	out, err := run(b.ctx, "", toolPath(toolHAProxy), "-v")
	if err != nil {
		return "", fmt.Errorf("haproxy version: %w", err)
	}
	return sidecar.ParseHAProxyVersion(out)
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
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, b.e.Spec.SidecarEnv...)
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
