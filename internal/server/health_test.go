package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// get makes a GET of path with token ("": none) and returns the status
// and body.
func (e *env) get(path, token string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.admin.HTTPClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHealthz: /healthz answers without authentication, 200 with the
// database reachable and the last sync's result, no secrets; 503 once
// the database is gone.
func TestHealthz(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.sync()
	code, body := e.get("/healthz", "")
	if code != http.StatusOK {
		t.Fatalf("healthz: %d %s", code, body)
	}
	var h struct {
		Status, Database string
		Build            struct{ Version string }
		LastSync         *struct {
			OK        bool  `json:"ok"`
			Timestamp int64 `json:"timestamp"`
		} `json:"last_sync"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if h.Status != "ok" || h.Database != "ok" || h.Build.Version == "" || h.LastSync == nil || !h.LastSync.OK || h.LastSync.Timestamp == 0 {
		t.Errorf("healthz: %s", body)
	}
	for _, secret := range []string{e.origin.url, e.dir, "cascade.db", e.admin.Token()} {
		if strings.Contains(body, secret) {
			t.Errorf("healthz shows %q: %s", secret, body)
		}
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = e.get("/healthz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"unreachable"`) {
		t.Errorf("healthz without a database: %d %s", code, body)
	}
}

// TestMetrics scrapes /metrics: refused without an admin token, and with
// one the server's series in the Prometheus text format.
func TestMetrics(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()
	e.enroll("pc-1", "10.0.0.1")
	if code, _ := e.get("/healthz", ""); code != http.StatusOK {
		t.Fatal(code)
	}
	if code, body := e.get("/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without a token: %d %s", code, body)
	}
	code, body := e.get("/metrics", e.admin.Token())
	if code != http.StatusOK {
		t.Fatalf("metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`cascade_server_http_requests_total{code="200",route="GET /healthz"} 1`,
		`cascade_server_http_requests_total{code="401",route="GET /metrics"} 1`,
		`cascade_server_http_requests_total{code="200",route="POST /api/v1/content/sync"} 1`,
		`cascade_server_sync_runs_total 2`, // at start and asked for
		`cascade_server_sync_failures_total 0`,
		`cascade_server_endpoints{role="client",state="offline"} 1`,
		`cascade_server_endpoints{role="agent",state="connected"} 0`,
		`cascade_server_component_version_info{component="pattern",deployed="1.0",held="false",latest="1.0"} 1`,
		`cascade_server_notifications_in_flight 0`,
		`cascade_server_reports_stored_total 0`,
		`cascade_server_database_up 1`,
		`cascade_server_database_ping_seconds_count`,
		`cascade_server_vendor_timestamp_version`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
