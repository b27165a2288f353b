package nskube

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const k8sGoModSample = `module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
	k8s.io/api v0.0.0
	github.com/x/y v1.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	github.com/x/y => github.com/x/y v1.0.1
)
`

func TestParseStagingAndBuildModule(t *testing.T) {
	mods, goVer, err := parseStaging(strings.NewReader(k8sGoModSample))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(mods, ",") != "k8s.io/api,k8s.io/client-go" || goVer != "1.24.0" {
		t.Fatalf("mods %v go %q", mods, goVer)
	}
	dir := t.TempDir()
	if err := writeBuildModule(dir, "v1.34.4", mods, goVer); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"require k8s.io/kubernetes v1.34.4", "k8s.io/api => k8s.io/api v0.34.4",
		"k8s.io/client-go => k8s.io/client-go v0.34.4", "godebug default=go1.24", "\ngo 1.24.0\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "github.com/x/y") {
		t.Errorf("non-staging replace copied:\n%s", b)
	}
	if _, _, err := parseStaging(strings.NewReader("module x\n")); err == nil {
		t.Error("no staging replaces: want an error")
	}
}

func TestVersionLDFlags(t *testing.T) {
	ld := versionLDFlags("v1.34.4")
	for _, want := range []string{"k8s.io/component-base/version.gitVersion=v1.34.4", "k8s.io/client-go/pkg/version.gitMinor=34", "gitMajor=1"} {
		if !strings.Contains(ld, want) {
			t.Errorf("ldflags lack %q: %s", want, ld)
		}
	}
}

func TestCNIConfigs(t *testing.T) {
	for _, mode := range []string{CNIBridge, CNIPTP} {
		var conf struct {
			Plugins []struct {
				Type string
				IPAM struct {
					Ranges [][]map[string]string
				}
			}
		}
		b := cniConfig(mode, 2)
		if err := json.Unmarshal(b, &conf); err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, b)
		}
		if conf.Plugins[0].Type != mode || conf.Plugins[1].Type != "portmap" {
			t.Fatalf("%s: plugins %+v", mode, conf.Plugins)
		}
		r := conf.Plugins[0].IPAM.Ranges[0][0]
		switch mode {
		case CNIBridge:
			if r["subnet"] != "10.244.2.0/24" {
				t.Errorf("bridge range %v", r)
			}
		case CNIPTP:
			// pod addresses come from the VPC subnet; the gateway must not be the VPC's own.
			if r["subnet"] != vpcCIDR || r["rangeStart"] != "10.200.2.2" || r["gateway"] != "10.200.2.1" {
				t.Errorf("ptp range %v", r)
			}
		}
	}
}

func TestTemplatesAndRoles(t *testing.T) {
	data := map[string]string{"Node": "c-node1", "IP": "10.200.0.11", "Dir": "/s/c-node1", "PKI": "/s/pki", "Socket": "/s/c-node1/containerd.sock",
		"Cgroup": "c-node1", "PodCIDR": "10.244.1.0/24", "ClusterCIDR": podCIDRAll, "VPC": vpcCIDR, "SandboxImage": SandboxImage, "CNIBin": CNIBinDir}
	k := string(render(kubeletTmpl, data))
	for _, want := range []string{"cgroupRoot: /c-node1", "failCgroupV1: false", "cgroupDriver: cgroupfs", "unix:///s/c-node1/containerd.sock"} {
		if !strings.Contains(k, want) {
			t.Errorf("kubelet config lacks %q", want)
		}
	}
	p := string(render(kubeProxyTmpl, data))
	if !strings.Contains(p, "maxPerCore: 0") || !strings.Contains(p, "hostnameOverride: c-node1") {
		t.Errorf("kube-proxy config:\n%s", p)
	}
	c := string(render(containerdTmpl, data))
	if !strings.Contains(c, "restrict_oom_score_adj = true") || !strings.Contains(c, `sandbox_image = "`+SandboxImage) {
		t.Errorf("containerd config:\n%s", c)
	}
	m := string(mountScript("/s/c-node1"))
	for _, want := range []string{"lowerdir=/$m", "/proc/sys/vm/overcommit_memory", "/proc/sys/kernel/panic_on_oops", "exec sleep infinity"} {
		if !strings.Contains(m, want) {
			t.Errorf("mount script lacks %q", want)
		}
	}
	if got := strings.Join(DefaultRoles(3), ","); got != "client,forward,server" {
		t.Errorf("roles %s", got)
	}
	if got := strings.Join(DefaultRoles(2), ","); got != "client,server" {
		t.Errorf("roles %s", got)
	}
}

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	st := &State{Name: "t", Dir: dir, APIPort: 40000, Nodes: []NodeState{{Name: "t-node1", IP: nodeIP(1), Dir: filepath.Join(dir, "t-node1")}}}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st.writePKI(); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(st.pki("ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	b, _ := os.ReadFile(st.pki("apiserver.crt"))
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", vpcGateway, serviceAPI, "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("apiserver cert for %s: %v", host, err)
		}
	}
	for _, f := range []string{"kubeconfig", "kubeconfig.vpc", "t-node1/kubelet.kubeconfig", "t-node1/kube-proxy.kubeconfig", "pki/scheduler.kubeconfig", "pki/sa.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	kc, _ := os.ReadFile(filepath.Join(dir, "kubeconfig"))
	if !strings.Contains(string(kc), "https://127.0.0.1:40000") {
		t.Errorf("host kubeconfig:\n%s", kc)
	}
}

func TestHostSnapshotDiff(t *testing.T) {
	a := HostSnapshot{"x": "1", "y": "2"}
	if d := a.Diff(HostSnapshot{"x": "1", "y": "2"}, nil); len(d) != 0 {
		t.Errorf("equal snapshots differ: %v", d)
	}
	if d := a.Diff(HostSnapshot{"x": "1", "y": "3"}, nil); strings.Join(d, ",") != "y: + 3,y: - 2" {
		t.Errorf("diff %v", d)
	}
	m := HostSnapshot{"mounts": "/ ext4", "netns": ""}
	n := HostSnapshot{"mounts": "/ ext4\n/run/netns/other nsfs", "netns": "other"}
	if d := m.Diff(n, OthersNetns); len(d) != 0 {
		t.Errorf("others' namespaces not ignored: %v", d)
	}
	if d := m.Diff(HostSnapshot{"mounts": "/ ext4\n/var overlay", "netns": ""}, OthersNetns); len(d) != 1 {
		t.Errorf("a new mount must show: %v", d)
	}
}

// TestBinariesCached checks the cached binaries, when they are built: each is an executable
// file and kubectl reports the version it was built as. Without them it skips (building takes
// about 30 min on 2 cores: tcpload cluster build); the real cluster is exercised by the tests
// of the nskube tag and by e2e/smoke.
func TestBinariesCached(t *testing.T) {
	dir := BinDir(DefaultVersion)
	if miss := MissingBinaries(dir); len(miss) > 0 {
		t.Skipf("Kubernetes %s binaries not built (missing %v): run `tcpload cluster build` (about 30 min on 2 cores)", DefaultVersion, miss)
	}
	for _, b := range Binaries {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			t.Errorf("%s: not an executable file (%v)", b, err)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "kubectl"), "version", "--client", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl version: %v", err)
	}
	var v struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("kubectl version output: %v\n%s", err, out)
	}
	if v.ClientVersion.GitVersion != DefaultVersion {
		t.Errorf("kubectl in %s reports %q, want %s", dir, v.ClientVersion.GitVersion, DefaultVersion)
	}
}
