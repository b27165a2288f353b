package nskube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func (s *State) startNodeNamespaces(ctx context.Context, i int) error {
	n := &s.Nodes[i]
	for _, d := range []string{"cni", "logs", "containerd"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := createCgroup(n.Name, "system"); err != nil {
		return err
	}
	ms := filepath.Join(n.Dir, "mounts.sh")
	if err := os.WriteFile(ms, mountScript(n.Dir), 0o755); err != nil {
		return err
	}
	h, err := s.start(ctx, "holder", n.Name, n.Name+"/system",
		[]string{"unshare", "--net", "--mount", "--propagation", "private", "--"}, "sh", ms)
	if err != nil {
		return err
	}
	n.Holder = h.PID
	if err := s.save(); err != nil {
		return err
	}
	if err := waitFile(ctx, filepath.Join(n.Dir, "mounted"), 20*time.Second); err != nil {
		return fmt.Errorf("node %s mounts (see %s): %w", n.Name, h.Log, err)
	}
	veth := fmt.Sprintf("veth%d", i+1)
	vb := fmt.Sprintf("link add %s type veth peer name eth0 netns %d\nlink set %s master br0 up\n", veth, n.Holder, veth)
	if err := s.inNetStdin(ctx, s.VPC, vb, "ip", "-batch", "-"); err != nil {
		return err
	}
	nb := fmt.Sprintf("link set lo up\naddr add %s/%d dev eth0\nlink set eth0 up\nroute add default via %s\n", n.IP, vpcPrefix, vpcGateway)
	if err := s.inNetStdin(ctx, n.Holder, nb, "ip", "-batch", "-"); err != nil {
		return err
	}
	kv := []string{"net.ipv4.ip_forward", "1"}
	if s.CNI == CNIPTP {
		// The node answers ARP for its pods' VPC addresses, as an ENI owns its secondary IPs.
		kv = append(kv, "net.ipv4.conf.eth0.proxy_arp", "1", "net.ipv4.neigh.eth0.proxy_delay", "0")
	}
	if err := s.setSysctl(ctx, n.Holder, kv...); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "cni", "10-pathcost.conflist"), cniConfig(s.CNI, i+1), 0o644)
}

// routes: in bridge mode each node's pod CIDR is routed to it from the VPC and from every other
// node (host-gw, a Global Router route table). In ptp mode pod addresses are in the VPC subnet.
func (s *State) routes(ctx context.Context) error {
	if s.CNI != CNIBridge {
		return nil
	}
	var vpc strings.Builder
	for i, n := range s.Nodes {
		fmt.Fprintf(&vpc, "route add %s via %s\n", n.PodCIDR, n.IP)
		var b strings.Builder
		for j, m := range s.Nodes {
			if j != i {
				fmt.Fprintf(&b, "route add %s via %s\n", m.PodCIDR, m.IP)
			}
		}
		if b.Len() > 0 {
			if err := s.inNetStdin(ctx, n.Holder, b.String(), "ip", "-batch", "-"); err != nil {
				return err
			}
		}
	}
	return s.inNetStdin(ctx, s.VPC, vpc.String(), "ip", "-batch", "-")
}

func (s *State) nodePre(n *NodeState) []string {
	return []string{"nsenter", s.nsNet(n.Holder), s.nsMnt(n.Holder), "--"}
}

func (s *State) startContainerd(ctx context.Context, i int) error {
	n := &s.Nodes[i]
	cfg := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(cfg, render(containerdTmpl, map[string]string{
		"Node": n.Name, "Dir": n.Dir, "Socket": n.Socket, "SandboxImage": SandboxImage, "CNIBin": CNIBinDir,
	}), 0o644); err != nil {
		return err
	}
	_, err := s.start(ctx, "containerd", n.Name, n.Name+"/system", s.nodePre(n), "containerd", "--config", cfg)
	return err
}

func (s *State) startKubelet(ctx context.Context, i int) error {
	n := &s.Nodes[i]
	data := map[string]string{
		"Node": n.Name, "IP": n.IP, "Dir": n.Dir, "PKI": filepath.Join(s.Dir, "pki"), "Socket": n.Socket,
		"Cgroup": n.Name, "PodCIDR": n.PodCIDR, "ClusterCIDR": clusterCIDR(s.CNI), "VPC": vpcCIDR,
	}
	kc := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(kc, render(kubeletTmpl, data), 0o644); err != nil {
		return err
	}
	kp := filepath.Join(n.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(kp, render(kubeProxyTmpl, data), 0o644); err != nil {
		return err
	}
	labels := fmt.Sprintf("%s=%s,pathcost.io/cni=%s,pathcost.io/node-index=%d", RoleLabel, n.Role, s.CNI, i+1)
	if _, err := s.start(ctx, "kubelet", n.Name, n.Name+"/system", s.nodePre(n), filepath.Join(s.BinDir, "kubelet"),
		"--config="+kc, "--kubeconfig="+filepath.Join(n.Dir, "kubelet.kubeconfig"),
		"--hostname-override="+n.Name, "--node-ip="+n.IP, "--node-labels="+labels, "--v=1"); err != nil {
		return err
	}
	_, err := s.start(ctx, "kube-proxy", n.Name, n.Name+"/system", s.nodePre(n), filepath.Join(s.BinDir, "kube-proxy"),
		"--config="+kp, "--v=1")
	return err
}
