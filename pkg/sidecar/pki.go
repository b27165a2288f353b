package sidecar

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pathcost/pathcost/pkg/provider"
)

// Service accounts whose SPIFFE identities the two sidecars carry.
const (
	ClientServiceAccount = "tcpload-client"
	ServerServiceAccount = "tcpload"
)

// PKI is one run's mesh credentials, in PEM: a CA and one certificate per sidecar (ECDSA P-256,
// the SPIFFE URI SAN spiffe://cluster.local/ns/NS/sa/SA as Istio issues, plus a DNS SAN HAProxy
// can verify), usable for both server and client authentication.
type PKI struct {
	// CA is the CA certificate.
	CA []byte
	// ClientSide and ServerSide are each sidecar's certificate followed by its PKCS#8 key.
	ClientSide []byte
	ServerSide []byte
	// ServerName is the DNS SAN of the server side's certificate, which the client side verifies.
	ServerName string
	// ClientID and ServerID are the SPIFFE identities.
	ClientID string
	ServerID string
}

// NewPKI creates a run's credentials for sidecars in Kubernetes namespace ns ("default" on the
// local provider). The CA is valid for 7 days, the leaves for 24 hours, both from an hour ago.
func NewPKI(ns string) (*PKI, error) {
	if ns == "" {
		return nil, fmt.Errorf("sidecar pki: empty namespace")
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sidecar pki: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}, CommonName: "pathcost mesh CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sidecar pki: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("sidecar pki: parse CA: %w", err)
	}
	leaf := func(sa string) (pemData []byte, dns, id string, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, "", "", fmt.Errorf("sidecar pki: %s key: %w", sa, err)
		}
		id = "spiffe://cluster.local/ns/" + ns + "/sa/" + sa
		spiffe, err := url.Parse(id)
		if err != nil {
			return nil, "", "", fmt.Errorf("sidecar pki: %s SAN: %w", sa, err)
		}
		dns = sa + "." + ns + ".svc.cluster.local"
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{Organization: []string{"cluster.local"}, CommonName: dns},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			DNSNames:     []string{dns},
			URIs:         []*url.URL{spiffe},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, "", "", fmt.Errorf("sidecar pki: %s certificate: %w", sa, err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, "", "", fmt.Errorf("sidecar pki: %s key encoding: %w", sa, err)
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
		return out, dns, id, nil
	}
	p := &PKI{CA: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	if p.ClientSide, _, p.ClientID, err = leaf(ClientServiceAccount); err != nil {
		return nil, err
	}
	if p.ServerSide, p.ServerName, p.ServerID, err = leaf(ServerServiceAccount); err != nil {
		return nil, err
	}
	return p, nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// Files are the paths of a PKI written to a directory.
type Files struct {
	CA         string // ca.pem
	ClientSide string // client-side.pem: certificate + key
	ServerSide string // server-side.pem: certificate + key
}

// File names of a PKI in a directory, a Secret, or a mounted volume.
const (
	CAFile = "ca.pem"
)

// CertFile is the file name of a side's certificate and key: "client-side.pem", "server-side.pem".
func CertFile(side string) string { return side + ".pem" }

// WriteFiles writes the PKI into dir as 0600 files owned by uid:gid (the proxy's).
func (p *PKI) WriteFiles(dir string, uid, gid int) (Files, error) {
	f := Files{
		CA:         filepath.Join(dir, CAFile),
		ClientSide: filepath.Join(dir, CertFile(provider.ClientSide)),
		ServerSide: filepath.Join(dir, CertFile(provider.ServerSide)),
	}
	for path, data := range map[string][]byte{f.CA: p.CA, f.ClientSide: p.ClientSide, f.ServerSide: p.ServerSide} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return Files{}, fmt.Errorf("sidecar pki: write %s: %w", path, err)
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return Files{}, fmt.Errorf("sidecar pki: chown %s: %w", path, err)
		}
	}
	return f, nil
}

// Cert returns a side's certificate and key.
func (p *PKI) Cert(side string) ([]byte, error) {
	if err := checkSide(side); err != nil {
		return nil, err
	}
	if side == provider.ClientSide {
		return p.ClientSide, nil
	}
	return p.ServerSide, nil
}

// MTLSNote describes the mutual TLS for a path's notes.
func MTLSNote() string {
	return "mutual TLS between the sidecars (TLS 1.3, ECDSA P-256 certificates from a per-run CA with SPIFFE URI SANs, client verifies the server's identity, server requires a client certificate)"
}
