package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// peerKey returns the key fingerprint of a fresh key: a server of the
// site that has not joined yet.
func peerKey(t *testing.T) api.Fingerprint {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return api.KeyFingerprintOf(&x509.Certificate{RawSubjectPublicKeyInfo: der})
}

// TestEnrollRecordsServerKeys: a server configured with its peers' keys
// answers enrollment and status with its own key and theirs; enrolling
// with several server URLs records them in order in the configuration and
// pins every key of the site in the enrollment, and the enrolled endpoint
// reaches the server.
func TestEnrollRecordsServerKeys(t *testing.T) {
	peer := peerKey(t)
	// The same peer twice, in two of the forms fingerprints are written in.
	e := newEnv(t, sqliteDB, func(c *server.Config) { c.PeerKeys = []string{strings.ToUpper(peer.String()[7:]), opensslForm(peer)} })
	other := "https://" + testkit.FreeAddr(t, testkit.LoopbackIP(40)) + "/"
	root, err := e.origin.repo.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := endpoint.Enroll(context.Background(), endpoint.EnrollOptions{Server: e.url, OtherServers: []string{other},
		Fingerprint: e.fp.String(), Token: e.token("default", 1), Config: filepath.Join(dir, "endpoint.yaml"), VendorRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := endpoint.LoadConfig(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Server, " ") != e.url+" "+other {
		t.Fatalf("configuration server: %q, want %s then %s", cfg.Server, e.url, other)
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "server", "enrollment.json"))
	if err != nil {
		t.Fatal(err)
	}
	var enr struct {
		KeyFingerprint  string   `json:"key_fingerprint"`
		KeyFingerprints []string `json:"key_fingerprints"`
	}
	if err := json.Unmarshal(b, &enr); err != nil {
		t.Fatal(err)
	}
	want := []string{e.fp.String(), peer.String()}
	if strings.Join(enr.KeyFingerprints, " ") != strings.Join(want, " ") || enr.KeyFingerprint != e.fp.String() {
		t.Fatalf("enrollment pins %v (key_fingerprint %s), want %v", enr.KeyFingerprints, enr.KeyFingerprint, want)
	}

	_, c := e.enroll("h2")
	var st api.StatusResponse
	if err := c.Call(context.Background(), http.MethodPost, api.PathStatus, nil, api.StatusRequest{}, &st); err != nil {
		t.Fatal(err)
	}
	if strings.Join(st.ServerKeys, " ") != strings.Join(want, " ") {
		t.Fatalf("status answer's server keys %v, want %v", st.ServerKeys, want)
	}
	// The endpoint reaches the server (first in its list) with these pins.
	ep, err := endpoint.Open(cfg, endpoint.Options{Now: time.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	rep := runUpdate(t, ep)
	if rep.Result == "failed" {
		for _, c := range rep.Categories {
			t.Logf("%s: %s %s %+v", c.Category, c.Result, c.Error, c.Attempts)
		}
		t.Fatal("update run of the endpoint enrolled with two server URLs failed")
	}
	if ds := rep.Category(category.DomainSettings); ds == nil || ds.Source != "server" || ds.URL != e.url {
		t.Fatalf("domain settings: %+v, want them from the server at %s, named in the report", ds, e.url)
	}
}

// opensslForm is a fingerprint as openssl prints it.
func opensslForm(fp api.Fingerprint) string {
	h := fp.String()[7:]
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return "SHA256 Fingerprint=" + strings.Join(parts, ":")
}

// TestPeerKeysChecked: a peer key that is not a fingerprint is refused
// when the server is set up, naming the field.
func TestPeerKeysChecked(t *testing.T) {
	root, err := newOrigin(t).repo.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.Init(t.TempDir(), server.InitOptions{Config: server.Config{Origin: "https://o.example/", URL: "https://s.example:8443/",
		PeerKeys: []string{"sha256:12"}}, VendorRoot: root, Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), `peer_keys: parse fingerprint "sha256:12"`) {
		t.Fatalf("init with a bad peer key: %v", err)
	}
}
