package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
)

// certValidity is the validity of a generated certificate. Endpoints pin
// it by fingerprint, so a long life avoids re-enrolling the fleet.
const certValidity = 10 * 365 * 24 * time.Hour

// certNames returns the DNS names and IP addresses a generated certificate
// covers: the host of the server URL, the listen host, and, when the
// listener binds every interface, the machine's host name and addresses
// and localhost.
func certNames(serverURL, listen string) (dns []string, ips []net.IP) {
	add := func(h string) {
		if h == "" {
			return
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			return
		}
		if !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	if u, err := url.Parse(serverURL); err == nil {
		add(u.Hostname())
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		add(host)
		return dns, ips
	}
	if h, err := os.Hostname(); err == nil {
		add(h)
	}
	add("localhost")
	add("127.0.0.1")
	add("::1")
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				add(n.IP.String())
			}
		}
	}
	return dns, ips
}

// GenerateCert writes a new self-signed ECDSA P-256 certificate for the
// given names to certFile and its key to keyFile (0600), and returns the
// certificate's fingerprint.
func GenerateCert(certFile, keyFile string, dns []string, ips []net.IP, now time.Time) (api.Fingerprint, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("generate certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("generate certificate: %w", err)
	}
	cn := "cascade server"
	if len(dns) > 0 {
		cn = dns[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"cascade"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("generate certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("generate certificate: %w", err)
	}
	for _, d := range []string{filepath.Dir(certFile), filepath.Dir(keyFile)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return api.Fingerprint{}, fmt.Errorf("generate certificate: %w", err)
		}
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return api.Fingerprint{}, fmt.Errorf("write certificate key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return api.Fingerprint{}, fmt.Errorf("write certificate: %w", err)
	}
	return api.FingerprintOf(der), nil
}

// loadCert loads the served certificate and returns it with the
// fingerprint of its leaf.
func loadCert(certFile, keyFile string) (tls.Certificate, api.Fingerprint, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, api.Fingerprint{}, fmt.Errorf("load TLS certificate: %w", err)
	}
	return cert, api.FingerprintOf(cert.Certificate[0]), nil
}

// CertFingerprint returns the fingerprint of the first certificate in a
// PEM file.
func CertFingerprint(certFile string) (api.Fingerprint, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("read certificate: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return api.Fingerprint{}, fmt.Errorf("read certificate %s: no CERTIFICATE block", certFile)
		}
		if blk.Type == "CERTIFICATE" {
			return api.FingerprintOf(blk.Bytes), nil
		}
	}
}
