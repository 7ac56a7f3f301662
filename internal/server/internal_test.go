package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

// newTestServer creates and opens a server (not running) whose origin is
// served over HTTP, with cfg's non-zero fields applied.
func newTestServer(t *testing.T, cfg Config, now func() time.Time) (*Server, *repo.Repo) {
	return newTestServerWrap(t, cfg, now, func(h http.Handler) http.Handler { return h })
}

// newTestServerWrap is newTestServer with the origin's handler wrapped.
func newTestServerWrap(t *testing.T, cfg Config, now func() time.Time, wrap func(http.Handler) http.Handler) (*Server, *repo.Repo) {
	t.Helper()
	dir := t.TempDir()
	origin, err := repo.Init(filepath.Join(dir, "origin"), repo.InitOptions{Options: repo.Options{Now: time.Now},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(wrap(http.FileServer(http.Dir(filepath.Dir(origin.PublishedDir())))))
	t.Cleanup(ts.Close)
	root, err := origin.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Origin == "" {
		cfg.Origin = ts.URL + "/"
	}
	cfg.Listen, cfg.URL = "127.0.0.1:0", "https://127.0.0.1:1/"
	if _, err := Init(filepath.Join(dir, "server"), InitOptions{Config: cfg, VendorRoot: root, SiteBins: 16, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Dir: filepath.Join(dir, "server"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, origin
}

// TestPrune: reports older than the retention are deleted, except each
// endpoint's last one.
func TestPrune(t *testing.T) {
	clock := testkit.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	now := clock.Now
	s, _ := newTestServer(t, Config{ReportRetention: Duration(24 * time.Hour)}, now)
	ctx := context.Background()
	_, h, _ := store.NewSecret("")
	ep, err := s.st.CreateEndpoint(ctx, store.Endpoint{Hostname: "h", Domain: "default", CredentialHash: h})
	if err != nil {
		t.Fatal(err)
	}
	reps := []store.Report{
		{EndpointID: ep.ID, Trigger: "scheduled", Result: "updated", ReceivedAt: now().Add(-72 * time.Hour)},
		{EndpointID: ep.ID, Trigger: "scheduled", Result: "updated", ReceivedAt: now().Add(-48 * time.Hour)},
		{EndpointID: ep.ID, Trigger: "scheduled", Result: "failed", ReceivedAt: now().Add(-time.Hour)},
	}
	if err := s.st.AddReports(ctx, reps); err != nil {
		t.Fatal(err)
	}
	// The sync log is kept as long as the reports.
	var kept store.SyncRecord
	for _, age := range []time.Duration{48 * time.Hour, time.Hour} {
		r, err := s.st.RecordSync(ctx, store.SyncRecord{Started: now().Add(-age), Finished: now().Add(-age), Result: store.SyncSucceeded})
		if err != nil {
			t.Fatal(err)
		}
		kept = r
	}
	s.pruneOnce(ctx)
	left, err := s.st.ListReports(ctx, store.ReportFilter{EndpointID: ep.ID})
	if err != nil || len(left) != 1 || left[0].ID != reps[2].ID {
		t.Fatalf("after pruning: %+v %v", left, err)
	}
	if syncs, err := s.st.ListSyncs(ctx, 0); err != nil || len(syncs) != 1 || syncs[0].ID != kept.ID {
		t.Fatalf("sync log after pruning: %+v %v", syncs, err)
	}
	// A week on, the last report is kept however old.
	clock.Advance(7 * 24 * time.Hour)
	s.pruneOnce(ctx)
	if left, err = s.st.ListReports(ctx, store.ReportFilter{EndpointID: ep.ID}); err != nil || len(left) != 1 {
		t.Fatalf("the last report was pruned: %+v %v", left, err)
	}
}

// TestSyncThroughProxy: with a proxy configured, every request to the
// origin goes through it.
func TestSyncThroughProxy(t *testing.T) {
	var proxied, direct atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Set("Via", "1.1 test-proxy")
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	defer proxy.Close()
	s, origin := newTestServerWrap(t, Config{Proxy: proxy.URL}, time.Now, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Via") == "" {
				direct.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	if _, err := origin.Publish(context.Background(), repo.Item{Category: "components", Name: "pattern", Version: "3",
		Files: []repo.File{{Name: "p.bin", Data: []byte("pattern 3")}}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.sync.Sync(context.Background())
	if err != nil || res.Deployed["pattern"] != "3" {
		t.Fatalf("sync: %+v %v", res, err)
	}
	if proxied.Load() == 0 || direct.Load() != 0 {
		t.Fatalf("%d requests through the proxy, %d straight to the origin", proxied.Load(), direct.Load())
	}
}

// TestGeneratedCertificate: the certificate covers the URL's host and the
// listen address, verifies against itself for those names, and its
// fingerprint is the one served.
func TestGeneratedCertificate(t *testing.T) {
	dir := t.TempDir()
	dns, ips := certNames("https://cascade.corp.example:8443/", "127.0.0.5:8443")
	fp, err := GenerateCert(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), dns, ips, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, got, err := loadCert(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil || got != fp {
		t.Fatalf("load: %v %v", got, err)
	}
	if f, err := KeyFingerprint(filepath.Join(dir, "c.pem")); err != nil || f != fp {
		t.Fatalf("KeyFingerprint: %v %v", f, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if fp != api.KeyFingerprintOf(leaf) {
		t.Fatalf("fingerprint %s is not the key's (%s)", fp, api.KeyFingerprintOf(leaf))
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("key %T, want ECDSA", leaf.PublicKey)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"cascade.corp.example", "127.0.0.5"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Error("the certificate covers other.example")
	}
	// Listening on every interface adds localhost and the loopback address.
	dns, ips = certNames("https://cascade.corp.example/", ":8443")
	if !slices.Contains(dns, "localhost") || !slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.IsLoopback() }) {
		t.Errorf("names for :8443: %v %v", dns, ips)
	}
}
