package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestServerCertRenew: `server cert renew` replaces the certificate by
// one with the same key, so a client pinned with the fingerprint init
// printed reaches the restarted server; a CA-issued certificate is
// refused.
func TestServerCertRenew(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "origin", "init", filepath.Join(dir, "origin"))
	ln, data, out := initServer(t, dir, "srv", "http://127.0.0.1:1/")
	addr := ln.Addr().String()
	fp := field(t, out, "fingerprint:")
	before := readPEMCert(t, filepath.Join(data, "tls", "cert.pem"))

	out = mustRun(t, "server", "cert", "renew", "--data", data)
	if got := strings.Fields(field(t, out, "fingerprint:"))[0]; got != fp {
		t.Fatalf("renew printed fingerprint %s, init %s", got, fp)
	}
	after := readPEMCert(t, filepath.Join(data, "tls", "cert.pem"))
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || string(after.Raw) == string(before.Raw) {
		t.Fatal("the certificate was not replaced")
	}
	if api.KeyFingerprintOf(after).String() != fp || strings.Join(after.DNSNames, ",") != strings.Join(before.DNSNames, ",") ||
		len(after.IPAddresses) != len(before.IPAddresses) {
		t.Fatalf("renewed certificate: key %s names %v %v, want key %s names %v %v", api.KeyFingerprintOf(after),
			after.DNSNames, after.IPAddresses, fp, before.DNSNames, before.IPAddresses)
	}

	tokFile := filepath.Join(dir, "admin.token")
	mustRun(t, "server", "admin", "create", "--data", data, "--out", tokFile)
	startServer(t, context.Background(), data, ln)
	admin := []string{"--server", "https://" + addr + "/", "--fingerprint", fp, "--token-file", tokFile}
	testkit.Eventually(t, 10*time.Second, "the server answering with the new certificate", func() bool {
		code, _, _ := run(append([]string{"server", "status"}, admin...)...)
		return code == 0
	})
	oldPin := api.CertFingerprintOf(before.Raw).String()
	code, _, stderr := run("server", "status", "--server", "https://"+addr+"/", "--fingerprint", oldPin, "--token-file", tokFile)
	if code == 0 || !strings.Contains(stderr, "the pinned one is "+oldPin) {
		t.Fatalf("the old certificate's pin after renewal: exit %d, %q", code, stderr)
	}

	ca := filepath.Join(dir, "ca")
	os.MkdirAll(ca, 0o700)
	writeCAIssued(t, filepath.Join(ca, "cert.pem"), filepath.Join(ca, "key.pem"))
	data2 := filepath.Join(dir, "srv2")
	mustRun(t, "server", "init", data2, "--origin", "http://127.0.0.1:1/", "--listen", "127.0.0.1:0", "--url", "https://127.0.0.1:8443/",
		"--vendor-root", filepath.Join(dir, "origin", "published", "vendor", "metadata", "1.root.json"),
		"--tls-cert", filepath.Join(ca, "cert.pem"), "--tls-key", filepath.Join(ca, "key.pem"))
	code, _, stderr = run("server", "cert", "renew", "--data", data2)
	if code == 0 || !strings.Contains(stderr, "renew it with that authority") {
		t.Fatalf("renew of a CA-issued certificate: exit %d, %q", code, stderr)
	}
}

func readPEMCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeCAIssued writes a certificate issued by a throwaway CA, and its
// key.
func writeCAIssued(t *testing.T, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}
