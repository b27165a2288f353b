package sidecar

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pathcost/pathcost/pkg/provider"
)

// Proxy tuning, chosen for throughput; TuningNote describes it.
const (
	BufSize = 65536 // tune.bufsize: bytes per stream buffer
	MaxConn = 4096  // global and per-frontend maxconn
	Timeout = "1h"  // client/server inactivity timeouts (runs are minutes)
)

// ProxyConfig says which sidecar's HAProxy configuration to render.
type ProxyConfig struct {
	// Side is provider.ClientSide (captures outbound on OutboundPort, opens mTLS to the original
	// destination) or provider.ServerSide (terminates mTLS on InboundPort, forwards to the app).
	Side string
	// Threads is HAProxy's nbthread; 0 means 1.
	Threads int
	// AppPort is the server app's port on 127.0.0.1 (server side).
	AppPort int
	// CAFile is the PEM file of the mesh CA both sides verify their peer against.
	CAFile string
	// CertFile is the PEM file holding this side's certificate and key.
	CertFile string
	// ServerName is the DNS identity the client side verifies in the server's certificate
	// (PKI.ServerName); client side only.
	ServerName string
	// LogConnections logs one line per closed connection to standard error (ConnLogPrefix ...,
	// read with ParseConnLog): a container log shows what the proxy carried.
	LogConnections bool
	// HealthPort, when not 0, adds an HTTP frontend there answering HealthPath (200 while the
	// proxy runs: a pod's startup probe) and StatsPath (HAProxy's statistics).
	HealthPort int
}

// HAProxyConfig renders the HAProxy configuration of one emulated sidecar. The client side
// listens on OutboundPort and connects to each connection's original destination (SO_ORIGINAL_DST
// of the REDIRECTed socket, like Envoy's original_dst listener filter) with TLS, presenting its
// certificate and verifying the server's identity; the server side listens on InboundPort with
// TLS, requires a client certificate from the CA and forwards to 127.0.0.1:AppPort.
func HAProxyConfig(c ProxyConfig) (string, error) {
	if err := checkSide(c.Side); err != nil {
		return "", err
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.Threads < 1 || c.Threads > 64 {
		return "", fmt.Errorf("sidecar config: threads %d out of range 1-64", c.Threads)
	}
	if c.CAFile == "" || c.CertFile == "" {
		return "", fmt.Errorf("sidecar config: CA file %q and certificate file %q are both needed", c.CAFile, c.CertFile)
	}
	for _, f := range []string{c.CAFile, c.CertFile, c.ServerName} {
		if strings.ContainsAny(f, " \t\n\"'#\\") {
			return "", fmt.Errorf("sidecar config: %q holds a character HAProxy's configuration would misread", f)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# pathcost sidecar, %s (emulating an Istio/Envoy sidecar)
global
    nbthread %d
    maxconn %d
    tune.bufsize %d
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-server-options ssl-min-ver TLSv1.2

defaults
    mode tcp
    maxconn %d
    timeout connect 5s
    timeout client %s
    timeout server %s
`, c.Side, c.Threads, MaxConn, BufSize, MaxConn, Timeout, Timeout)
	logging := ""
	if c.LogConnections {
		logging = fmt.Sprintf(`    log stderr format raw local0 info
    log-format "%s frontend=%%f backend=%%b dst=%%si:%%sp bytes_down=%%B bytes_up=%%U ms=%%Tt term=%%ts"
`, ConnLogPrefix)
	}
	if c.Side == provider.ClientSide {
		if c.ServerName == "" {
			return "", fmt.Errorf("sidecar config: the client side needs the server's identity (ServerName)")
		}
		fmt.Fprintf(&b, `
frontend outbound_capture
    bind 0.0.0.0:%d
%s    default_backend outbound_mtls

backend outbound_mtls
    # 0.0.0.0 with no port: connect to the connection's original destination
    # (SO_ORIGINAL_DST of the REDIRECTed socket), like Envoy's
    # original_dst listener filter.
    server original_dst 0.0.0.0 ssl crt %s ca-file %s verify required verifyhost %s alpn istio
`, OutboundPort, logging, c.CertFile, c.CAFile, c.ServerName)
	} else {
		if c.AppPort < 1 || c.AppPort > 65535 {
			return "", fmt.Errorf("sidecar config: app port %d out of range 1-65535", c.AppPort)
		}
		fmt.Fprintf(&b, `
frontend inbound_capture
    bind 0.0.0.0:%d ssl crt %s ca-file %s verify required alpn istio
%s    default_backend inbound_app

backend inbound_app
    server app 127.0.0.1:%d
`, InboundPort, c.CertFile, c.CAFile, logging, c.AppPort)
	}
	if c.HealthPort != 0 {
		if c.HealthPort < 1 || c.HealthPort > 65535 || c.HealthPort == OutboundPort || c.HealthPort == InboundPort || c.HealthPort == c.AppPort {
			return "", fmt.Errorf("sidecar config: health port %d out of range or taken", c.HealthPort)
		}
		fmt.Fprintf(&b, `
frontend health
    mode http
    bind 0.0.0.0:%d
    timeout client 10s
    monitor-uri %s
    stats enable
    stats uri %s
`, c.HealthPort, HealthPath, StatsPath)
	}
	return b.String(), nil
}

// TuningNote describes the proxy tuning for a path's notes (threads 0 means 1, as in
// ProxyConfig).
func TuningNote(threads int) string {
	if threads == 0 {
		threads = 1
	}
	return fmt.Sprintf("proxy tuning: nbthread %d (Istio's default sidecar concurrency is 2 Envoy workers; a connection is served by one worker either way), tune.bufsize %d, maxconn %d, timeouts client/server %s, connect 5s", threads, BufSize, MaxConn, Timeout)
}

// ConnLogPrefix starts every connection line a proxy with LogConnections writes.
const ConnLogPrefix = "pathcost-conn"

// ConnLog is one closed connection as a proxy logged it.
type ConnLog struct {
	Frontend, Backend, Dst string
	// BytesDown went from the backend (server) to the frontend's client; BytesUp the other way.
	BytesDown, BytesUp int64
	// Term is HAProxy's termination state ("--" for a normal close).
	Term string
}

// ParseConnLog reads the connection lines of a proxy's log (other lines are skipped).
func ParseConnLog(log string) ([]ConnLog, error) {
	var out []ConnLog
	for _, line := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(line, ConnLogPrefix+" ")
		if !ok {
			continue
		}
		var c ConnLog
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "frontend":
				c.Frontend = v
			case "backend":
				c.Backend = v
			case "dst":
				c.Dst = v
			case "bytes_down":
				c.BytesDown, err = strconv.ParseInt(v, 10, 64)
			case "bytes_up":
				c.BytesUp, err = strconv.ParseInt(v, 10, 64)
			case "term":
				c.Term = v
			}
			if err != nil {
				return nil, fmt.Errorf("sidecar log: %q: %s: %w", line, k, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
