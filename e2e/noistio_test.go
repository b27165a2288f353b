//go:build !istio

package e2e

// withIstio: no sidecars in this build.
const withIstio = false
