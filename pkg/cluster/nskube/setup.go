package nskube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pathcost/pathcost/pkg/image"
)

// writePKI creates the cluster's CAs, certificates and kubeconfigs under pki/ (and each node's).
func (s *State) writePKI() error {
	dir := filepath.Join(s.Dir, "pki")
	root, err := newCA("pathcost-nskube-ca")
	if err != nil {
		return err
	}
	front, err := newCA("pathcost-nskube-front-proxy-ca")
	if err != nil {
		return err
	}
	rootKey, err := root.keyPEM()
	if err != nil {
		return err
	}
	if err := writePair(dir, "ca", root.certPEM(), rootKey); err != nil {
		return err
	}
	frontKey, err := front.keyPEM()
	if err != nil {
		return err
	}
	if err := writePair(dir, "front-proxy-ca", front.certPEM(), frontKey); err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	skb, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: skb}), 0o600); err != nil {
		return err
	}
	type certSpec struct {
		file, cn string
		orgs     []string
		hosts    []string
		ca       *ca
	}
	specs := []certSpec{
		{"apiserver", "kube-apiserver", nil, []string{vpcGateway, "127.0.0.1", serviceAPI, "localhost", "kubernetes",
			"kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, root},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, root},
		{"front-proxy-client", "front-proxy-client", nil, nil, front},
		{"admin", "pathcost-admin", []string{"system:masters"}, nil, root},
		{"controller-manager", "system:kube-controller-manager", nil, nil, root},
		{"scheduler", "system:kube-scheduler", nil, nil, root},
		{"kube-proxy", "system:kube-proxy", nil, nil, root},
	}
	pems := map[string][2][]byte{}
	for _, c := range specs {
		cert, key, err := c.ca.issue(c.cn, c.orgs, c.hosts)
		if err != nil {
			return err
		}
		pems[c.file] = [2][]byte{cert, key}
		if err := writePair(dir, c.file, cert, key); err != nil {
			return err
		}
	}
	inVPC := fmt.Sprintf("https://%s:%d", vpcGateway, apiPort)
	local := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	caPEM := root.certPEM()
	for _, k := range []struct{ file, server, user string }{
		{"controller-manager", local, "system:kube-controller-manager"},
		{"scheduler", local, "system:kube-scheduler"},
	} {
		p := pems[k.file]
		if err := os.WriteFile(filepath.Join(dir, k.file+".kubeconfig"), kubeconfig(s.Name, k.server, caPEM, p[0], p[1], k.user), 0o600); err != nil {
			return err
		}
	}
	// The host's kubeconfig goes through the loopback forwarder.
	adm := pems["admin"]
	if err := os.WriteFile(filepath.Join(s.Dir, "kubeconfig"), kubeconfig(s.Name, fmt.Sprintf("https://127.0.0.1:%d", s.APIPort), caPEM, adm[0], adm[1], "pathcost-admin"), 0o600); err != nil {
		return err
	}
	// Inside the VPC (for tools run under nsenter into the VPC namespace).
	if err := os.WriteFile(filepath.Join(s.Dir, "kubeconfig.vpc"), kubeconfig(s.Name, inVPC, caPEM, adm[0], adm[1], "pathcost-admin"), 0o600); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return err
		}
		cert, key, err := root.issue("system:node:"+n.Name, []string{"system:nodes"}, []string{n.IP, n.Name})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "kubelet.kubeconfig"), kubeconfig(s.Name, inVPC, caPEM, cert, key, "system:node:"+n.Name), 0o600); err != nil {
			return err
		}
		kp := pems["kube-proxy"]
		if err := os.WriteFile(filepath.Join(n.Dir, "kube-proxy.kubeconfig"), kubeconfig(s.Name, inVPC, caPEM, kp[0], kp[1], "system:kube-proxy"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pauseImage returns the pause image archive (built once into the cache).
func pauseImage(ctx context.Context) (string, error) {
	return image.PauseArchive(ctx, filepath.Join(CacheRoot(), "images"), SandboxImage)
}

// ImportArchive imports an image tarball into the containerd listening on socket (namespace k8s.io,
// where the kubelet's CRI looks).
func ImportArchive(ctx context.Context, socket, archive string) error {
	ctx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", "--address", socket, "--namespace", "k8s.io", "images", "import", archive)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return fmt.Errorf("ctr images import %s: %w\n%s", archive, err, out)
	}
	return nil
}

// importTimeout bounds one `ctr images import` (a hung containerd must not hang the caller).
const importTimeout = 3 * time.Minute

// RESTConfig is the admin rest.Config of the cluster (through the loopback forwarder).
func (s *State) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
}

// waitNodes waits for every node to register, sets its pod CIDR, and waits for it to be Ready.
func (s *State) waitNodes(ctx context.Context, d time.Duration) error {
	rc, err := s.RESTConfig()
	if err != nil {
		return err
	}
	rc.Timeout = 10 * time.Second // per request: a stuck API server or forwarder must not hang the wait
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	patched := map[string]bool{}
	for {
		ready := 0
		var waiting []string
		for _, n := range s.Nodes {
			node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				waiting = append(waiting, n.Name+": not registered")
				continue
			}
			if node.Spec.PodCIDR == "" && !patched[n.Name] {
				patch := fmt.Sprintf(`{"spec":{"podCIDR":%q,"podCIDRs":[%q]}}`, n.PodCIDR, n.PodCIDR)
				if _, err := cs.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
					return fmt.Errorf("set pod CIDR of %s: %w", n.Name, err)
				}
				patched[n.Name] = true
			}
			ok := false
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					ok = c.Status == corev1.ConditionTrue
					if !ok {
						waiting = append(waiting, n.Name+": "+c.Reason+" "+c.Message)
					}
				}
			}
			if ok {
				ready++
			}
		}
		if ready == len(s.Nodes) {
			return nil
		}
		for _, p := range s.Procs {
			if (p.Name == "kubelet" || p.Name == "containerd" || p.Name == "kube-apiserver") && !running(p.PID) {
				return fmt.Errorf("%s of %s exited; see %s", p.Name, p.Node, p.Log)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes not Ready after %s: %s (logs in %s)", d, strings.Join(waiting, "; "), s.Dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
