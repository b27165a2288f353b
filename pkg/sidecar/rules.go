package sidecar

import (
	"fmt"
	"strconv"
	"strings"
)

// Rules renders, as iptables-restore input, the nat rules istio-iptables writes into a pod whose
// sidecar captures all outbound TCP and inbound TCP to appPort (includeInboundPorts=appPort), the
// proxy running as uid/gid ProxyUID: OUTPUT -> ISTIO_OUTPUT (the proxy's own traffic and loopback
// RETURN, the rest -> ISTIO_REDIRECT: REDIRECT to OutboundPort); PREROUTING -> ISTIO_INBOUND
// (tcp dport appPort -> ISTIO_IN_REDIRECT: REDIRECT to InboundPort). Both sides of a path load
// the same rules, as istio-init does.
func Rules(appPort int) (string, error) {
	if appPort < 1 || appPort > 65535 {
		return "", fmt.Errorf("sidecar rules: app port %d out of range 1-65535", appPort)
	}
	switch appPort {
	case OutboundPort, InboundPort, HealthPort:
		return "", fmt.Errorf("sidecar rules: app port %d is one of the proxy's own ports", appPort)
	}
	uid := strconv.Itoa(ProxyUID)
	lines := []string{
		"*nat",
		":PREROUTING ACCEPT [0:0]",
		":INPUT ACCEPT [0:0]",
		":OUTPUT ACCEPT [0:0]",
		":POSTROUTING ACCEPT [0:0]",
		":ISTIO_INBOUND - [0:0]",
		":ISTIO_IN_REDIRECT - [0:0]",
		":ISTIO_OUTPUT - [0:0]",
		":ISTIO_REDIRECT - [0:0]",
		"-A PREROUTING -p tcp -j ISTIO_INBOUND",
		"-A OUTPUT -p tcp -j ISTIO_OUTPUT",
		fmt.Sprintf("-A ISTIO_INBOUND -p tcp -m tcp --dport %d -j ISTIO_IN_REDIRECT", appPort),
		fmt.Sprintf("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports %d", InboundPort),
		"-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN",
		"-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner " + uid + " -j ISTIO_IN_REDIRECT",
		"-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner " + uid + " -j RETURN",
		"-A ISTIO_OUTPUT -m owner --uid-owner " + uid + " -j RETURN",
		"-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner " + uid + " -j ISTIO_IN_REDIRECT",
		"-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner " + uid + " -j RETURN",
		"-A ISTIO_OUTPUT -m owner --gid-owner " + uid + " -j RETURN",
		"-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
		"-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
		fmt.Sprintf("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports %d", OutboundPort),
		"COMMIT",
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// RulesNote describes Rules(appPort) for a path's notes.
func RulesNote(appPort int) string {
	return fmt.Sprintf("istio-iptables nat rules in both pods: OUTPUT -> ISTIO_OUTPUT (uid/gid %d RETURN, loopback RETURN, else ISTIO_REDIRECT: REDIRECT to %d); PREROUTING -> ISTIO_INBOUND (tcp dport %d -> ISTIO_IN_REDIRECT: REDIRECT to %d)", ProxyUID, OutboundPort, appPort, InboundPort)
}
