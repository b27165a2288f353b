package nskube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func vpcBatch() string {
	return fmt.Sprintf("link set lo up\nlink add br0 type bridge\naddr add %s/%d dev br0\nlink set br0 up\n", vpcGateway, vpcPrefix)
}

func (s *State) startControlPlane(ctx context.Context) error {
	if err := s.setSysctl(ctx, s.VPC, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	cp := filepath.Join(s.Dir, "cp")
	if err := os.MkdirAll(cp, 0o755); err != nil {
		return err
	}
	pre := []string{"nsenter", s.nsNet(s.VPC), "--"}
	bin := func(b string) string { return filepath.Join(s.BinDir, b) }
	cg := s.vpcCgroup()
	if _, err := s.start(ctx, "etcd", "", cg, pre, bin("etcd"), "--name=nskube", "--data-dir="+filepath.Join(cp, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=nskube=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return err
	}
	p := s.pki
	if _, err := s.start(ctx, "kube-apiserver", "", cg, pre, bin("kube-apiserver"),
		"--advertise-address="+vpcGateway, "--bind-address=0.0.0.0", "--secure-port="+strconv.Itoa(apiPort),
		"--etcd-servers=http://127.0.0.1:2379",
		"--service-cluster-ip-range="+serviceCIDR, "--service-node-port-range=30000-32767",
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.key"), "--service-account-signing-key-file="+p("sa.key"),
		"--authorization-mode=Node,RBAC", "--allow-privileged=true", "--enable-admission-plugins=NodeRestriction",
		"--requestheader-client-ca-file="+p("front-proxy-ca.crt"), "--requestheader-allowed-names=front-proxy-client",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--proxy-client-cert-file="+p("front-proxy-client.crt"), "--proxy-client-key-file="+p("front-proxy-client.key"),
		"--cert-dir="+filepath.Join(cp, "certs"), "--profiling=false", "--v=1"); err != nil {
		return err
	}
	return nil
}

// startControllers starts the controller-manager and the scheduler, once the API server is ready
// (before that, their RBAC roles may not exist yet and they exit).
func (s *State) startControllers(ctx context.Context) error {
	pre := []string{"nsenter", s.nsNet(s.VPC), "--"}
	bin := func(b string) string { return filepath.Join(s.BinDir, b) }
	cg := s.vpcCgroup()
	p := s.pki
	if _, err := s.start(ctx, "kube-controller-manager", "", cg, pre, bin("kube-controller-manager"),
		"--kubeconfig="+p("controller-manager.kubeconfig"), "--authentication-kubeconfig="+p("controller-manager.kubeconfig"),
		"--authorization-kubeconfig="+p("controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--use-service-account-credentials=true",
		"--root-ca-file="+p("ca.crt"), "--service-account-private-key-file="+p("sa.key"),
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--allocate-node-cidrs=false", "--service-cluster-ip-range="+serviceCIDR, "--cluster-name="+s.Name,
		"--profiling=false", "--v=1"); err != nil {
		return err
	}
	_, err := s.start(ctx, "kube-scheduler", "", cg, pre, bin("kube-scheduler"),
		"--kubeconfig="+p("scheduler.kubeconfig"), "--authentication-kubeconfig="+p("scheduler.kubeconfig"),
		"--authorization-kubeconfig="+p("scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false", "--v=1")
	return err
}

// startForwarder listens on 127.0.0.1:APIPort in the host's network namespace and forwards each
// connection to the API server inside the VPC namespace (socat; one nsenter per connection). A
// loopback listener is the only thing the host's namespace gets: no interface, route or rule.
func (s *State) startForwarder(ctx context.Context) (Proc, error) {
	script := filepath.Join(s.Dir, "forward.sh")
	body := fmt.Sprintf("#!/bin/sh\nexec nsenter %s -- socat STDIO TCP:%s:%d\n", s.nsNet(s.VPC), vpcGateway, apiPort)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return Proc{}, err
	}
	return s.start(ctx, "api-forwarder", "", s.vpcCgroup(), nil, "socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", s.APIPort), "EXEC:"+script)
}

// adminHTTP is an HTTP client with the admin credentials, through the loopback forwarder.
func (s *State) adminHTTP() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(s.pki("admin.crt"), s.pki("admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(s.pki("ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}}, nil
}

func (s *State) waitAPI(ctx context.Context, d time.Duration) error {
	c, err := s.adminHTTP()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.APIPort)
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		if !s.alive("kube-apiserver") || !s.alive("etcd") {
			return fmt.Errorf("control plane died; see %s/logs", s.Dir)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("API server not ready after %s: %s (logs in %s/logs)", d, last, s.Dir)
}
