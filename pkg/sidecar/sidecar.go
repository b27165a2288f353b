// Package sidecar is the emulated Istio sidecar, shared by the local provider (pkg/localnet) and the
// Kubernetes provider (pkg/provider/kube) on clusters without Istio: the nat rules istio-iptables
// writes (Rules), HAProxy as the proxy in place of Envoy (HAProxyConfig), mutual TLS with per-run
// certificates carrying SPIFFE identities (NewPKI), the two container images built from this
// machine's Debian binaries without a container engine (BuildImages), and the Kubernetes objects
// that inject it into a pod (Emulated).
//
// What it is not: Envoy. The proxy runs as uid 1337 behind the same capture rules and carries the
// same TLS traffic between two sidecars, but it is HAProxy, and every row measured through it says
// so (Note).
package sidecar

import (
	"fmt"

	"github.com/pathcost/pathcost/pkg/provider"
)

// Fixed numbers of Istio's sidecar, which the emulation keeps.
const (
	// ProxyUID is the uid (and gid) the proxy runs as, as Istio's istio-proxy does;
	// istio-iptables exempts its traffic from capture.
	ProxyUID = 1337
	// OutboundPort is where istio-iptables redirects outbound TCP (Envoy's virtualOutbound).
	OutboundPort = 15001
	// InboundPort is where istio-iptables redirects inbound TCP (Envoy's virtualInbound).
	InboundPort = 15006
	// HealthPort is Istio's sidecar health port; /healthz/ready answers 200 when the proxy runs.
	HealthPort = 15021
	// HealthPath is the readiness path on HealthPort.
	HealthPath = "/healthz/ready"
	// StatsPath is HAProxy's statistics page on HealthPort (append ";csv" for CSV).
	StatsPath = "/stats"
)

// What `tcpload --watch sidecar=WATCH` finds the proxy by, beside the app in a pod with
// shareProcessNamespace.
const (
	// WatchEmulated finds the emulated sidecar's HAProxy.
	WatchEmulated = "comm:haproxy"
	// WatchEnvoy finds a real Istio sidecar's Envoy.
	WatchEnvoy = "comm:envoy"
)

// Note is the note of a row measured through sidecars: emulated (HAProxy) or Istio's own (Envoy).
func Note(emulated bool) string {
	if emulated {
		return "emulated sidecar (HAProxy, not Envoy): istio-iptables-shaped rules, mTLS"
	}
	return "Istio sidecar (Envoy)"
}

// checkSide returns an error unless side is provider.ClientSide or provider.ServerSide.
func checkSide(side string) error {
	if side != provider.ClientSide && side != provider.ServerSide {
		return fmt.Errorf("sidecar: side %q is neither %q nor %q", side, provider.ClientSide, provider.ServerSide)
	}
	return nil
}
