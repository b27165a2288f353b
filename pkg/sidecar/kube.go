package sidecar

import (
	"fmt"
	"path"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pathcost/pathcost/pkg/provider"
)

// Paths and names in a pod the sidecar is injected into.
const (
	// ConfigPath is the proxy's configuration in its container.
	ConfigPath = "/etc/istio-proxy/haproxy.cfg"
	// CertDir holds CAFile and the side's CertFile in the proxy's container.
	CertDir = "/etc/istio-certs"
	// RulesPath is the istio-iptables rules file in the init container.
	RulesPath = "/etc/istio-iptables/rules"
	// InitContainer and ProxyContainer are the injected containers' names, as Istio names them.
	InitContainer  = "istio-init"
	ProxyContainer = "istio-proxy"
	// DefaultName names a run's Secret and ConfigMap when Emulated.Name is empty.
	DefaultName = "pathcost-sidecar"

	rulesKey = "istio-iptables.rules"
)

// Volumes Inject adds to a pod.
const (
	rulesVolume  = "istio-iptables"
	configVolume = "istio-proxy-config"
	certsVolume  = "istio-certs"
)

// Emulated injects the emulated sidecar into pods on a Kubernetes cluster without Istio: an init
// container applying Rules with only CAP_NET_ADMIN (not privileged), then HAProxy as a native
// sidecar (an init container with restartPolicy Always, so a pod whose app exits completes) running
// as uid ProxyUID with the side's HAProxyConfig and the run's certificates. Create Secret(ns) and
// ConfigMap(ns) in the pods' namespace before the pods. Use one Emulated per run: it holds the
// run's certificates. The zero value of every field but ServerPort is usable.
type Emulated struct {
	// HAProxyImage and InitImage are the images (BuildImages); "" means HAProxyRef, InitRef.
	HAProxyImage string
	InitImage    string
	// PullPolicy of both images; "" means IfNotPresent (images loaded into the nodes).
	PullPolicy corev1.PullPolicy
	// ServerPort is the server app's port: captured inbound and the server side's backend.
	ServerPort int
	// Threads is HAProxy's nbthread per sidecar; 0 means 1.
	Threads int
	// Name names the run's Secret (NAME-certs) and ConfigMap (NAME-config); "" means DefaultName.
	Name string
	// Legacy applies the rules with iptables-legacy-restore, which also needs CAP_NET_RAW, instead
	// of iptables-nft-restore (nf_tables, CAP_NET_ADMIN only).
	Legacy bool
	// Proxy names the proxy and version (Images.Proxy), for Sidecar and Notes; "" means "haproxy".
	Proxy string

	mu  sync.Mutex
	pki map[string]*PKI // by namespace
}

// SecretName is the name of the run's certificates Secret.
func (e *Emulated) SecretName() string { return e.name() + "-certs" }

// ConfigMapName is the name of the run's ConfigMap (proxy configurations and rules).
func (e *Emulated) ConfigMapName() string { return e.name() + "-config" }

func (e *Emulated) name() string {
	if e.Name == "" {
		return DefaultName
	}
	return e.Name
}

// PKI returns the run's credentials for namespace ns, created on first use.
func (e *Emulated) PKI(ns string) (*PKI, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.pki[ns]; ok {
		return p, nil
	}
	p, err := NewPKI(ns)
	if err != nil {
		return nil, err
	}
	if e.pki == nil {
		e.pki = map[string]*PKI{}
	}
	e.pki[ns] = p
	return p, nil
}

func meta(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
		"app.kubernetes.io/part-of":    "pathcost",
		"app.kubernetes.io/component":  "emulated-sidecar",
		"app.kubernetes.io/managed-by": "pathcost",
	}}
}

// Secret is the run's certificates for pods in namespace ns: CAFile and each side's CertFile.
func (e *Emulated) Secret(ns string) (*corev1.Secret, error) {
	p, err := e.PKI(ns)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: meta(e.SecretName(), ns),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			CAFile:                        p.CA,
			CertFile(provider.ClientSide): p.ClientSide,
			CertFile(provider.ServerSide): p.ServerSide,
		},
	}, nil
}

// ConfigMap holds, for pods in namespace ns, both sides' HAProxy configurations (CLIENT-SIDE.cfg,
// SERVER-SIDE.cfg, with the health frontend on HealthPort and one log line per closed connection
// on the proxy container's log: ParseConnLog) and the istio-iptables rules.
func (e *Emulated) ConfigMap(ns string) (*corev1.ConfigMap, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	p, err := e.PKI(ns)
	if err != nil {
		return nil, err
	}
	rules, err := Rules(e.ServerPort)
	if err != nil {
		return nil, err
	}
	data := map[string]string{rulesKey: rules}
	for _, side := range []string{provider.ClientSide, provider.ServerSide} {
		cfg, err := HAProxyConfig(ProxyConfig{
			Side: side, Threads: e.Threads, AppPort: e.ServerPort,
			CAFile: CertDir + "/" + CAFile, CertFile: CertDir + "/" + CertFile(side),
			ServerName: p.ServerName, HealthPort: HealthPort, LogConnections: true,
		})
		if err != nil {
			return nil, err
		}
		data[configKey(side)] = cfg
	}
	return &corev1.ConfigMap{ObjectMeta: meta(e.ConfigMapName(), ns), Data: data}, nil
}

func configKey(side string) string { return side + ".cfg" }

func (e *Emulated) check() error {
	if e.ServerPort < 1 || e.ServerPort > 65535 {
		return fmt.Errorf("sidecar: server port %d out of range 1-65535", e.ServerPort)
	}
	return nil
}

// Inject adds the side's sidecar (provider.ClientSide or provider.ServerSide) to a pod spec:
// the init container InitContainer (iptables-restore of Rules as root with capabilities NET_ADMIN
// — and NET_RAW with Legacy — only, every other capability dropped, not privileged), the native
// sidecar ProxyContainer (HAProxy as ProxyUID:ProxyUID, no capabilities, no privilege escalation,
// a startup probe on HealthPort so the app starts once the proxy listens), both before any init
// container the pod already has, their volumes (the ConfigMap and the side's items of the
// Secret), and shareProcessNamespace, so that tcpload in the app container finds the proxy with
// `--watch sidecar=` WatchEmulated.
func (e *Emulated) Inject(spec *corev1.PodSpec, side string) error {
	if spec == nil {
		return fmt.Errorf("sidecar inject: nil pod spec")
	}
	if err := checkSide(side); err != nil {
		return err
	}
	if err := e.check(); err != nil {
		return err
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == InitContainer || c.Name == ProxyContainer {
			return fmt.Errorf("sidecar inject: the pod already has a container %q", c.Name)
		}
	}
	for _, v := range spec.Volumes {
		switch v.Name {
		case rulesVolume, configVolume, certsVolume:
			return fmt.Errorf("sidecar inject: the pod already has a volume %q", v.Name)
		}
	}
	pull := e.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	restore := []string{nftRestore, RulesPath}
	caps := []corev1.Capability{"NET_ADMIN"}
	if e.Legacy {
		restore = []string{legacyRestore, "-w", "5", RulesPath}
		caps = append(caps, "NET_RAW")
	}
	initC := corev1.Container{
		Name:            InitContainer,
		Image:           orDefault(e.InitImage, InitRef),
		ImagePullPolicy: pull,
		Command:         restore,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr(int64(0)),
			RunAsGroup:               ptr(int64(0)),
			RunAsNonRoot:             ptr(false),
			Privileged:               ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Add: caps, Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: rulesVolume, MountPath: path.Dir(RulesPath), ReadOnly: true}},
	}
	proxyC := corev1.Container{
		Name:            ProxyContainer,
		Image:           orDefault(e.HAProxyImage, HAProxyRef),
		ImagePullPolicy: pull,
		Command:         []string{haproxyBin, "-db"},
		Args:            []string{"-f", ConfigPath},
		RestartPolicy:   ptr(corev1.ContainerRestartPolicyAlways),
		Ports:           []corev1.ContainerPort{{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP}},
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: HealthPath, Port: intstr.FromInt32(HealthPort)}},
			PeriodSeconds:    1,
			TimeoutSeconds:   1,
			FailureThreshold: 60,
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr(int64(ProxyUID)),
			RunAsGroup:               ptr(int64(ProxyUID)),
			RunAsNonRoot:             ptr(true),
			Privileged:               ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: configVolume, MountPath: path.Dir(ConfigPath), ReadOnly: true},
			{Name: certsVolume, MountPath: CertDir, ReadOnly: true},
		},
	}
	spec.InitContainers = append([]corev1.Container{initC, proxyC}, spec.InitContainers...)
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: rulesVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: e.ConfigMapName()},
			Items:                []corev1.KeyToPath{{Key: rulesKey, Path: path.Base(RulesPath)}},
		}}},
		corev1.Volume{Name: configVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: e.ConfigMapName()},
			Items:                []corev1.KeyToPath{{Key: configKey(side), Path: path.Base(ConfigPath)}},
		}}},
		corev1.Volume{Name: certsVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: e.SecretName(),
			Items: []corev1.KeyToPath{
				{Key: CAFile, Path: CAFile},
				{Key: CertFile(side), Path: CertFile(side)},
			},
			DefaultMode: ptr(int32(0o444)),
		}}},
	)
	spec.ShareProcessNamespace = ptr(true)
	return nil
}

// Sidecar describes the side's injected proxy in the pod host for a provider.Path.
func (e *Emulated) Sidecar(side string, host provider.Host) provider.Sidecar {
	return provider.Sidecar{Side: side, Host: host, Watch: WatchEmulated, Proxy: orDefault(e.Proxy, "haproxy"), Emulated: true}
}

// Notes say what the emulated sidecar is, for a path's notes.
func (e *Emulated) Notes() []string {
	backend := "iptables-nft-restore, capabilities NET_ADMIN only"
	if e.Legacy {
		backend = "iptables-legacy-restore, capabilities NET_ADMIN and NET_RAW"
	}
	return []string{
		fmt.Sprintf("istio: %s: %s as a native sidecar running as uid %d, NOT Envoy (Istio is not installed); %s", Note(true), orDefault(e.Proxy, "haproxy"), ProxyUID, MTLSNote()),
		fmt.Sprintf("istio: init container %s (%s, not privileged): %s", InitContainer, backend, RulesNote(e.ServerPort)),
		"istio: " + TuningNote(e.Threads),
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ptr[T any](v T) *T { return &v }
