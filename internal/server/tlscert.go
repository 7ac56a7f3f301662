package server

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/server/api"
)

// certValidity is the validity of a generated or renewed certificate.
// Endpoints pin its key, so `cascade server cert renew` extends it
// without re-enrolling the fleet.
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
// key's fingerprint (what endpoints pin).
func GenerateCert(certFile, keyFile string, dns []string, ips []net.IP, now time.Time) (api.Fingerprint, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("generate certificate: %w", err)
	}
	der, err := selfSigned(key, dns, ips, now)
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
	if err := atomicfile.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return api.Fingerprint{}, fmt.Errorf("write certificate key: %w", err)
	}
	if err := atomicfile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return api.Fingerprint{}, fmt.Errorf("write certificate: %w", err)
	}
	return keyFingerprint(der)
}

// selfSigned returns a new self-signed server certificate (DER) for key,
// valid from an hour before now for certValidity.
func selfSigned(key crypto.Signer, dns []string, ips []net.IP, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
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
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
}

// keyFingerprint returns the key fingerprint of a DER certificate.
func keyFingerprint(der []byte) (api.Fingerprint, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return api.Fingerprint{}, fmt.Errorf("parse certificate: %w", err)
	}
	return api.KeyFingerprintOf(c), nil
}

// loadCert loads the served certificate and returns it with the
// fingerprint of its leaf's key.
func loadCert(certFile, keyFile string) (tls.Certificate, api.Fingerprint, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, api.Fingerprint{}, fmt.Errorf("load TLS certificate: %w", err)
	}
	fp, err := keyFingerprint(cert.Certificate[0])
	if err != nil {
		return tls.Certificate{}, api.Fingerprint{}, fmt.Errorf("load TLS certificate: %w", err)
	}
	return cert, fp, nil
}

// readCertFile returns the first certificate of a PEM file.
func readCertFile(certFile string) (*x509.Certificate, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("read certificate %s: no CERTIFICATE block", certFile)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("read certificate %s: %w", certFile, err)
			}
			return c, nil
		}
	}
}

// KeyFingerprint returns the fingerprint of the key of the first
// certificate in a PEM file.
func KeyFingerprint(certFile string) (api.Fingerprint, error) {
	c, err := readCertFile(certFile)
	if err != nil {
		return api.Fingerprint{}, err
	}
	return api.KeyFingerprintOf(c), nil
}

// RenewedCert says what RenewCert did.
type RenewedCert struct {
	// Fingerprint is the key's: the same before and after.
	Fingerprint api.Fingerprint
	// NotAfter is the new certificate's end of validity.
	NotAfter time.Time
}

// RenewCert replaces the self-signed certificate of the server in dir by
// a new one for the same names and the same key, valid for certValidity
// from now. Endpoints pin the key, so they accept the new certificate
// once the server serves it (after a restart). A certificate some
// authority issued is refused: renew it with that authority, for the
// same key.
func RenewCert(dir string, now time.Time) (*RenewedCert, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("renew certificate: %w", err)
	}
	certFile, keyFile := path(dir, cfg.TLSCert), path(dir, cfg.TLSKey)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("renew certificate: %w", err)
	}
	old, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("renew certificate: %w", err)
	}
	if !bytes.Equal(old.RawIssuer, old.RawSubject) || old.CheckSignature(old.SignatureAlgorithm, old.RawTBSCertificate, old.Signature) != nil {
		return nil, fmt.Errorf("renew certificate: %s was issued by %s, not self-signed: renew it with that authority for the same key (endpoints pin the key)",
			certFile, old.Issuer)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("renew certificate: %s: unsupported key type %T", keyFile, pair.PrivateKey)
	}
	der, err := selfSigned(key, old.DNSNames, old.IPAddresses, now)
	if err != nil {
		return nil, fmt.Errorf("renew certificate: %w", err)
	}
	fp, err := keyFingerprint(der)
	if err != nil {
		return nil, fmt.Errorf("renew certificate: %w", err)
	}
	if fp != api.KeyFingerprintOf(old) {
		return nil, errors.New("renew certificate: the new certificate's key differs from the old one's")
	}
	// The new certificate is complete on disk before it replaces the old.
	if err := atomicfile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("renew certificate: write %s: %w", certFile, err)
	}
	return &RenewedCert{Fingerprint: fp, NotAfter: now.Add(certValidity)}, nil
}
