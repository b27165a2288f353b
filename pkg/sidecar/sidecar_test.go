package sidecar

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/pathcost/pathcost/pkg/provider"
)

// wantRules is what istio-iptables (Istio before 1.10's inbound path, includeInboundPorts=50012,
// proxy uid/gid 1337) writes into a pod's nat table, as iptables-save prints it.
const wantRules = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 50012 -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`

func TestRules(t *testing.T) {
	r, err := Rules(50012)
	require.NoError(t, err)
	assert.Equal(t, wantRules, r)
	for _, bad := range []int{0, -1, 65536, OutboundPort, InboundPort, HealthPort} {
		_, err := Rules(bad)
		assert.Error(t, err, "port %d", bad)
	}
	assert.Contains(t, RulesNote(50012), "REDIRECT to 15001")
}

func TestHAProxyConfig(t *testing.T) {
	base := ProxyConfig{CAFile: "/c/ca.pem", CertFile: "/c/x.pem", ServerName: "tcpload.ns.svc.cluster.local", AppPort: 50012}
	c := base
	c.Side = provider.ClientSide
	cfg, err := HAProxyConfig(c)
	require.NoError(t, err)
	assert.Contains(t, cfg, "nbthread 1\n")
	assert.Contains(t, cfg, "tune.bufsize 65536\n")
	assert.Contains(t, cfg, "bind 0.0.0.0:15001\n")
	assert.Contains(t, cfg, "server original_dst 0.0.0.0 ssl crt /c/x.pem ca-file /c/ca.pem verify required verifyhost tcpload.ns.svc.cluster.local alpn istio\n")
	assert.NotContains(t, cfg, "frontend health")

	s := base
	s.Side, s.Threads, s.HealthPort = provider.ServerSide, 2, HealthPort
	cfg, err = HAProxyConfig(s)
	require.NoError(t, err)
	assert.Contains(t, cfg, "nbthread 2\n")
	assert.Contains(t, cfg, "tune.bufsize 65536\n")
	assert.Contains(t, cfg, "bind 0.0.0.0:15006 ssl crt /c/x.pem ca-file /c/ca.pem verify required alpn istio\n")
	assert.Contains(t, cfg, "server app 127.0.0.1:50012\n")
	assert.Contains(t, cfg, "bind 0.0.0.0:15021\n")
	assert.Contains(t, cfg, "monitor-uri /healthz/ready\n")

	for name, bad := range map[string]ProxyConfig{
		"side":        {Side: "middle", CAFile: "a", CertFile: "b", ServerName: "s", AppPort: 1},
		"threads":     {Side: provider.ClientSide, Threads: 65, CAFile: "a", CertFile: "b", ServerName: "s"},
		"no CA":       {Side: provider.ClientSide, CertFile: "b", ServerName: "s"},
		"no name":     {Side: provider.ClientSide, CAFile: "a", CertFile: "b"},
		"space":       {Side: provider.ClientSide, CAFile: "a b", CertFile: "b", ServerName: "s"},
		"app port":    {Side: provider.ServerSide, CAFile: "a", CertFile: "b"},
		"health port": {Side: provider.ServerSide, CAFile: "a", CertFile: "b", AppPort: 80, HealthPort: 80},
	} {
		_, err := HAProxyConfig(bad)
		assert.Error(t, err, name)
	}
}

// TestHAProxyConfigValid checks both generated configurations with `haproxy -c` when HAProxy is
// installed.
func TestHAProxyConfigValid(t *testing.T) {
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Skipf("haproxy not installed (apt-get install haproxy): %v", err)
	}
	dir := t.TempDir()
	p, err := NewPKI("default")
	require.NoError(t, err)
	f, err := p.WriteFiles(dir, os.Getuid(), os.Getgid())
	require.NoError(t, err)
	for _, side := range []string{provider.ClientSide, provider.ServerSide} {
		for _, logging := range []bool{false, true} {
			cert := f.ClientSide
			if side == provider.ServerSide {
				cert = f.ServerSide
			}
			cfg, err := HAProxyConfig(ProxyConfig{Side: side, AppPort: 50012, CAFile: f.CA, CertFile: cert, ServerName: p.ServerName, HealthPort: HealthPort, LogConnections: logging})
			require.NoError(t, err)
			path := filepath.Join(dir, side+".cfg")
			require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
			out, err := exec.Command(haproxyBin, "-c", "-f", path).CombinedOutput()
			require.NoError(t, err, "%s\n%s", out, cfg)
			assert.NotContains(t, string(out), "WARNING", "%s, logging %v", side, logging)
		}
	}
}

func TestPKI(t *testing.T) {
	p, err := NewPKI("bench")
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(p.CA))
	assert.Equal(t, "tcpload.bench.svc.cluster.local", p.ServerName)
	for side, want := range map[string]string{
		provider.ClientSide: "spiffe://cluster.local/ns/bench/sa/tcpload-client",
		provider.ServerSide: "spiffe://cluster.local/ns/bench/sa/tcpload",
	} {
		data, err := p.Cert(side)
		require.NoError(t, err)
		pair, err := tls.X509KeyPair(data, data)
		require.NoError(t, err, "%s: certificate and key match", side)
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		require.NoError(t, err)
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
		require.NoError(t, err, "%s verifies against the CA", side)
		require.Len(t, leaf.URIs, 1)
		assert.Equal(t, want, leaf.URIs[0].String())
	}
	srv, _ := pem.Decode(p.ServerSide)
	leaf, err := x509.ParseCertificate(srv.Bytes)
	require.NoError(t, err)
	require.NoError(t, leaf.VerifyHostname(p.ServerName))

	other, err := NewPKI("bench")
	require.NoError(t, err)
	otherRoots := x509.NewCertPool()
	require.True(t, otherRoots.AppendCertsFromPEM(other.CA))
	_, err = leaf.Verify(x509.VerifyOptions{Roots: otherRoots})
	assert.Error(t, err, "another run's CA does not verify this run's certificates")

	_, err = NewPKI("")
	assert.Error(t, err)
	_, err = p.Cert("middle")
	assert.Error(t, err)
}

func TestNote(t *testing.T) {
	assert.Contains(t, Note(true), "emulated sidecar (HAProxy, not Envoy)")
	assert.Equal(t, "Istio sidecar (Envoy)", Note(false))
}

func TestParseHAProxyVersion(t *testing.T) {
	v, err := ParseHAProxyVersion("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\nStatus: ...\n")
	require.NoError(t, err)
	assert.Equal(t, "haproxy 2.6.12-1+deb12u4 (emulating Envoy)", v)
	_, err = ParseHAProxyVersion("bash: haproxy: not found")
	assert.Error(t, err)
}

func TestEmulatedObjects(t *testing.T) {
	e := &Emulated{HAProxyImage: "h:1", InitImage: "i:1", ServerPort: 50012, Name: "run1", Proxy: "haproxy 2.6.12"}
	sec, err := e.Secret("bench")
	require.NoError(t, err)
	assert.Equal(t, "run1-certs", sec.Name)
	assert.Equal(t, "bench", sec.Namespace)
	again, err := e.Secret("bench")
	require.NoError(t, err)
	assert.Equal(t, sec.Data, again.Data, "one run, one set of certificates")
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(sec.Data[CAFile]))
	for _, side := range []string{provider.ClientSide, provider.ServerSide} {
		pair, err := tls.X509KeyPair(sec.Data[CertFile(side)], sec.Data[CertFile(side)])
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		require.NoError(t, err)
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		require.NoError(t, err, side)
	}

	cm, err := e.ConfigMap("bench")
	require.NoError(t, err)
	assert.Equal(t, "run1-config", cm.Name)
	assert.Equal(t, wantRules, cm.Data[rulesKey])
	assert.Contains(t, cm.Data["client-side.cfg"], "verifyhost tcpload.bench.svc.cluster.local")
	assert.Contains(t, cm.Data["client-side.cfg"], "crt /etc/istio-certs/client-side.pem ca-file /etc/istio-certs/ca.pem")
	assert.Contains(t, cm.Data["server-side.cfg"], "crt /etc/istio-certs/server-side.pem ca-file /etc/istio-certs/ca.pem")
	assert.Contains(t, cm.Data["server-side.cfg"], "bind 0.0.0.0:15021")

	for _, side := range []string{provider.ClientSide, provider.ServerSide} {
		spec := corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "prepare"}},
			Containers:     []corev1.Container{{Name: "tcpload", Image: "t:1"}},
		}
		require.NoError(t, e.Inject(&spec, side))
		require.Len(t, spec.InitContainers, 3)
		ic, pc := spec.InitContainers[0], spec.InitContainers[1]
		assert.Equal(t, "prepare", spec.InitContainers[2].Name, "the pod's own init containers run after the sidecar's")

		assert.Equal(t, InitContainer, ic.Name)
		assert.Equal(t, "i:1", ic.Image)
		assert.Equal(t, []string{"/usr/sbin/iptables-nft-restore", RulesPath}, ic.Command)
		require.NotNil(t, ic.SecurityContext)
		assert.False(t, *ic.SecurityContext.Privileged, "not privileged")
		assert.False(t, *ic.SecurityContext.AllowPrivilegeEscalation)
		assert.Equal(t, []corev1.Capability{"NET_ADMIN"}, ic.SecurityContext.Capabilities.Add, "only NET_ADMIN")
		assert.Equal(t, []corev1.Capability{"ALL"}, ic.SecurityContext.Capabilities.Drop)
		assert.Nil(t, ic.RestartPolicy, "the init container runs once")

		assert.Equal(t, ProxyContainer, pc.Name)
		assert.Equal(t, "h:1", pc.Image)
		require.NotNil(t, pc.RestartPolicy)
		assert.Equal(t, corev1.ContainerRestartPolicyAlways, *pc.RestartPolicy, "a native sidecar")
		assert.Equal(t, int64(ProxyUID), *pc.SecurityContext.RunAsUser)
		assert.Equal(t, int64(ProxyUID), *pc.SecurityContext.RunAsGroup)
		assert.False(t, *pc.SecurityContext.Privileged)
		assert.Empty(t, pc.SecurityContext.Capabilities.Add)
		assert.Equal(t, []corev1.Capability{"ALL"}, pc.SecurityContext.Capabilities.Drop)
		assert.Equal(t, HealthPath, pc.StartupProbe.HTTPGet.Path)
		assert.Equal(t, int32(HealthPort), pc.StartupProbe.HTTPGet.Port.IntVal)
		assert.Equal(t, []string{"-f", ConfigPath}, pc.Args)

		require.NotNil(t, spec.ShareProcessNamespace)
		assert.True(t, *spec.ShareProcessNamespace, "tcpload finds the proxy by comm")
		vols := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			vols[v.Name] = v
		}
		require.Len(t, vols, 3)
		assert.Equal(t, "run1-config", vols[configVolume].ConfigMap.Name)
		assert.Equal(t, side+".cfg", vols[configVolume].ConfigMap.Items[0].Key, "the side's own configuration")
		assert.Equal(t, "run1-certs", vols[certsVolume].Secret.SecretName)
		var keys []string
		for _, it := range vols[certsVolume].Secret.Items {
			keys = append(keys, it.Key)
		}
		assert.ElementsMatch(t, []string{CAFile, CertFile(side)}, keys, "only the side's own key")
		mounts := map[string]string{}
		for _, m := range pc.VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		assert.Equal(t, filepath.Dir(ConfigPath), mounts[configVolume])
		assert.Equal(t, CertDir, mounts[certsVolume])
		assert.Equal(t, filepath.Dir(RulesPath), ic.VolumeMounts[0].MountPath)

		assert.Error(t, e.Inject(&spec, side), "a second injection is refused")
		sc := e.Sidecar(side, nil)
		assert.Equal(t, WatchEmulated, sc.Watch)
		assert.True(t, sc.Emulated)
		assert.Equal(t, "haproxy 2.6.12", sc.Proxy)
	}

	legacy := &Emulated{ServerPort: 50012, Legacy: true}
	var spec corev1.PodSpec
	require.NoError(t, legacy.Inject(&spec, provider.ServerSide))
	assert.Equal(t, []corev1.Capability{"NET_ADMIN", "NET_RAW"}, spec.InitContainers[0].SecurityContext.Capabilities.Add)
	assert.Equal(t, "/usr/sbin/iptables-legacy-restore", spec.InitContainers[0].Command[0])
	assert.Equal(t, InitRef, spec.InitContainers[0].Image)
	assert.Equal(t, HAProxyRef, spec.InitContainers[1].Image)
	assert.Equal(t, "pathcost-sidecar-certs", legacy.SecretName())
	assert.True(t, strings.Contains(strings.Join(legacy.Notes(), "\n"), "NET_RAW"))

	assert.Error(t, (&Emulated{}).Inject(&corev1.PodSpec{}, provider.ClientSide), "no server port")
	assert.Error(t, e.Inject(&corev1.PodSpec{}, "middle"))
	assert.Error(t, e.Inject(nil, provider.ClientSide))
	_, err = (&Emulated{}).ConfigMap("x")
	assert.Error(t, err)
}

func TestParseConnLog(t *testing.T) {
	log := "[NOTICE]   (1) : haproxy starting\n" +
		"pathcost-conn frontend=outbound_capture backend=outbound_mtls dst=10.244.2.5:50012 bytes_down=230303744 bytes_up=36 ms=9120 term=--\n" +
		"<134>pathcost-conn frontend=inbound_capture backend=inbound_app dst=127.0.0.1:50012 bytes_down=5 bytes_up=36 ms=1 term=SD\n"
	cl, err := ParseConnLog(log)
	require.NoError(t, err)
	require.Len(t, cl, 2)
	assert.Equal(t, ConnLog{Frontend: "outbound_capture", Backend: "outbound_mtls", Dst: "10.244.2.5:50012", BytesDown: 230303744, BytesUp: 36, Term: "--"}, cl[0])
	assert.Equal(t, "SD", cl[1].Term)
	_, err = ParseConnLog("pathcost-conn bytes_down=x\n")
	assert.Error(t, err)
}
