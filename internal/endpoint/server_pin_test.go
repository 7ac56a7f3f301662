package endpoint

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit/trusttest"
)

// pinServer is a TLS server answering the status call, whose certificate
// can be replaced (a renewal).
type pinServer struct {
	*httptest.Server
	key  *ecdsa.PrivateKey
	cert atomic.Pointer[tls.Certificate]
}

func newPinServer(t *testing.T) *pinServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ps := &pinServer{key: key}
	ps.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathStatus || r.Header.Get("Authorization") != "Bearer cred" {
			http.Error(w, `{"error":"no"}`, http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(api.StatusResponse{EndpointID: "ep_1", Domain: "default", Role: "client"})
	}))
	ps.renew(t)
	ps.Listener = tls.NewListener(ps.Listener, &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return ps.cert.Load(), nil }})
	ps.Start()
	ps.URL = "https://" + ps.Listener.Addr().String()
	t.Cleanup(ps.Close)
	return ps
}

// renew serves a new certificate for the same key.
func (ps *pinServer) renew(t *testing.T) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "s"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ps.key.PublicKey, ps.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	ps.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: ps.key, Leaf: c})
	if ps.URL != "" {
		ps.CloseClientConnections()
	}
	return c
}

// enrolledEndpoint writes an enrollment (enr, with the credential "cred")
// and opens the endpoint.
func enrolledEndpoint(t *testing.T, enr enrollment) (*Endpoint, string) {
	t.Helper()
	dir := t.TempDir()
	root := trusttest.New(t, time.Now(), trusttest.Delegation{}).Root
	os.WriteFile(filepath.Join(dir, "root.json"), root, 0o644)
	os.MkdirAll(filepath.Join(dir, "data", serverDir), 0o700)
	b, _ := json.Marshal(enr)
	os.WriteFile(filepath.Join(dir, "data", serverDir, enrollmentFile), b, 0o644)
	os.WriteFile(filepath.Join(dir, "data", serverDir, credentialFile), []byte("cred\n"), 0o600)
	cfg, err := ParseConfig([]byte("id: ep\ndata_dir: data\ntrusted_roots: {vendor: root.json}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Open(cfg, Options{Now: time.Now})
	if err != nil {
		return nil, err.Error()
	}
	t.Cleanup(func() { ep.Close() })
	return ep, ""
}

func readEnrollment(t *testing.T, ep *Endpoint) enrollment {
	t.Helper()
	var enr enrollment
	b, err := os.ReadFile(filepath.Join(ep.cfg.DataDir, serverDir, enrollmentFile))
	if err != nil || json.Unmarshal(b, &enr) != nil {
		t.Fatalf("enrollment: %s %v", b, err)
	}
	return enr
}

// TestLegacyCertificatePinMigrates: an endpoint enrolled by an earlier
// version pins the server's certificate; it keeps reaching the server,
// replaces that pin by the key's after its first verified call, and so
// still reaches the server once its certificate is renewed for the same
// key, which the certificate pin would refuse.
func TestLegacyCertificatePinMigrates(t *testing.T) {
	ps := newPinServer(t)
	leaf := ps.cert.Load().Leaf
	certPin, keyPin := api.CertFingerprintOf(leaf.Raw), api.KeyFingerprintOf(leaf)
	ep, _ := enrolledEndpoint(t, enrollment{URL: ps.URL + "/", Fingerprint: certPin.String(), EndpointID: "ep_1", Domain: "default"})
	ep.server.refresh(context.Background(), ep)
	enr := readEnrollment(t, ep)
	if enr.KeyFingerprint != keyPin.String() || enr.Fingerprint != "" || enr.URL != ps.URL+"/" || enr.EndpointID != "ep_1" {
		t.Fatalf("after the first call the enrollment is %+v, want key_fingerprint %s and no certificate pin", enr, keyPin)
	}

	ps.renew(t)
	reopened, _ := enrolledEndpoint(t, enr)
	var resp api.StatusResponse
	if err := reopened.server.client.Call(context.Background(), http.MethodPost, api.PathStatus, nil, api.StatusRequest{}, &resp); err != nil {
		t.Fatalf("key pin after the renewal: %v", err)
	}
	legacy, _ := enrolledEndpoint(t, enrollment{URL: ps.URL + "/", Fingerprint: certPin.String(), EndpointID: "ep_1", Domain: "default"})
	err := legacy.server.client.Call(context.Background(), http.MethodPost, api.PathStatus, nil, api.StatusRequest{}, &resp)
	if !errors.Is(err, api.ErrFingerprint) {
		t.Fatalf("the old certificate pin after the renewal: %v, want a pin error", err)
	}
}

// TestServerLinkWrongPin: the daemon's server link says which key the
// server has and which one is pinned.
func TestServerLinkWrongPin(t *testing.T) {
	ps := newPinServer(t)
	key := api.KeyFingerprintOf(ps.cert.Load().Leaf)
	wrong := key
	wrong[31] ^= 1
	ep, _ := enrolledEndpoint(t, enrollment{URL: ps.URL + "/", KeyFingerprint: wrong.String(), EndpointID: "ep_1", Domain: "default"})
	err := ep.server.client.Call(context.Background(), http.MethodPost, api.PathStatus, nil, api.StatusRequest{}, nil)
	want := "the server's key fingerprint is " + key.String() + ", the pinned one is " + wrong.String()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("wrong pin: %v\nwant it to say %q", err, want)
	}
}

// TestServerLinkRefusesPlainHTTP: an enrollment whose server URL is
// http:// (the credential would travel in clear) does not open.
func TestServerLinkRefusesPlainHTTP(t *testing.T) {
	_, err := enrolledEndpoint(t, enrollment{URL: "http://127.0.0.1:8443/", EndpointID: "ep_1", Domain: "default"})
	if !strings.Contains(err, "http://") || !strings.Contains(err, "in clear") {
		t.Fatalf("open with an http:// enrollment: %q", err)
	}
}
