//go:build istio

package e2e

// withIstio puts an Istio-style sidecar (istio-iptables capture plus a proxy with mTLS) into
// both pods of the pod scenario.
const withIstio = true
