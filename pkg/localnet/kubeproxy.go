package localnet

import (
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
)

// ServicePortName is the emulated Service port ("namespace/name:port"), the
// name kube-proxy hashes into its chain names.
const ServicePortName = "default/tcpload:tcp"

// KubeMarkMasq is kube-proxy's masquerade mark.
const KubeMarkMasq = "0x4000"

// Chain names as kube-proxy (iptables mode) derives them.
var (
	svcChain = "KUBE-SVC-" + portProtoHash(ServicePortName, "tcp")
	extChain = "KUBE-EXT-" + portProtoHash(ServicePortName, "tcp")
)

// portProtoHash is kube-proxy's chain-name hash: the first 16 characters of
// base32(sha256(servicePortName + protocol)).
func portProtoHash(servicePortName, protocol string) string {
	h := sha256.Sum256([]byte(servicePortName + protocol))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

// sepChain is the endpoint chain kube-proxy names for an endpoint.
func sepChain(podIP string, port int) string {
	ep := podIP + ":" + strconv.Itoa(port)
	h := sha256.Sum256([]byte(ServicePortName + "tcp" + ep))
	return "KUBE-SEP-" + base32.StdEncoding.EncodeToString(h[:])[:16]
}

// kubeProxyRules renders the nat and filter rules kube-proxy in iptables mode
// writes for a NodePort Service (externalTrafficPolicy: Cluster) with one
// endpoint, in iptables-restore format.
func kubeProxyRules(s Spec, podIP string) string {
	port := strconv.Itoa(s.ServerPort)
	np := strconv.Itoa(s.NodePort)
	sep := sepChain(podIP, s.ServerPort)
	ep := podIP + ":" + port
	c := func(text string) string { return `-m comment --comment "` + text + `"` }
	lines := []string{
		"*nat",
		":PREROUTING ACCEPT [0:0]",
		":INPUT ACCEPT [0:0]",
		":OUTPUT ACCEPT [0:0]",
		":POSTROUTING ACCEPT [0:0]",
		":KUBE-SERVICES - [0:0]",
		":KUBE-NODEPORTS - [0:0]",
		":KUBE-POSTROUTING - [0:0]",
		":KUBE-MARK-MASQ - [0:0]",
		":" + svcChain + " - [0:0]",
		":" + extChain + " - [0:0]",
		":" + sep + " - [0:0]",
		"-A PREROUTING " + c("kubernetes service portals") + " -j KUBE-SERVICES",
		"-A OUTPUT " + c("kubernetes service portals") + " -j KUBE-SERVICES",
		"-A POSTROUTING " + c("kubernetes postrouting rules") + " -j KUBE-POSTROUTING",
		"-A KUBE-MARK-MASQ -j MARK --set-xmark " + KubeMarkMasq + "/" + KubeMarkMasq,
		"-A KUBE-POSTROUTING -m mark ! --mark " + KubeMarkMasq + "/" + KubeMarkMasq + " -j RETURN",
		"-A KUBE-POSTROUTING -j MARK --set-xmark " + KubeMarkMasq + "/0x0",
		"-A KUBE-POSTROUTING " + c("kubernetes service traffic requiring SNAT") + " -j MASQUERADE --random-fully",
		"-A KUBE-SERVICES -d " + ServiceClusterIP + "/32 -p tcp " + c(ServicePortName+" cluster IP") + " -m tcp --dport " + port + " -j " + svcChain,
		"-A KUBE-SERVICES " + c("kubernetes service nodeports; NOTE: this must be the last rule in this chain") + " -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
		"-A KUBE-NODEPORTS -p tcp " + c(ServicePortName) + " -m tcp --dport " + np + " -j " + extChain,
		"-A " + extChain + " " + c("masquerade traffic for "+ServicePortName+" external destinations") + " -j KUBE-MARK-MASQ",
		"-A " + extChain + " -j " + svcChain,
		"-A " + svcChain + " ! -s " + ClusterCIDR + " -d " + ServiceClusterIP + "/32 -p tcp " + c(ServicePortName+" cluster IP") + " -m tcp --dport " + port + " -j KUBE-MARK-MASQ",
		"-A " + svcChain + " " + c(ServicePortName+" -> "+ep) + " -j " + sep,
		"-A " + sep + " -s " + podIP + "/32 " + c(ServicePortName) + " -j KUBE-MARK-MASQ",
		"-A " + sep + " -p tcp " + c(ServicePortName) + " -m tcp -j DNAT --to-destination " + ep,
		"COMMIT",
		"*filter",
		":INPUT ACCEPT [0:0]",
		":FORWARD ACCEPT [0:0]",
		":OUTPUT ACCEPT [0:0]",
		":KUBE-FORWARD - [0:0]",
		"-A FORWARD " + c("kubernetes forwarding rules") + " -j KUBE-FORWARD",
		"-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
		"-A KUBE-FORWARD " + c("kubernetes forwarding rules") + " -m mark --mark " + KubeMarkMasq + "/" + KubeMarkMasq + " -j ACCEPT",
		"-A KUBE-FORWARD " + c("kubernetes forwarding conntrack rule") + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"COMMIT",
	}
	return strings.Join(lines, "\n") + "\n"
}

// KubeProxyRules renders, in iptables-restore format, the rules kube-proxy in iptables mode
// writes for the NodePort Service nodePort with the one endpoint podIP:serverPort (the rules
// localnet loads for KindNodePort). pkg/provider/ssh applies them on a real forwarding host.
func KubeProxyRules(serverPort, nodePort int, podIP string) string {
	return kubeProxyRules(Spec{Kind: KindNodePort, ServerPort: serverPort, NodePort: nodePort}, podIP)
}
