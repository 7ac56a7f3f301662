package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// TestConsoleSessionConfig: console_idle and console_absolute in
// server.json, their defaults (30m and 12h), and the check that idle is
// not longer than absolute.
func TestConsoleSessionConfig(t *testing.T) {
	load := func(extra string) (*server.Config, error) {
		dir := t.TempDir()
		doc := `{"origin": "https://origin.example/", "url": "https://server.example:8443/"` + extra + `}`
		if err := os.WriteFile(filepath.Join(dir, "server.json"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return server.LoadConfig(dir)
	}
	cfg, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.ConsoleIdle) != 30*time.Minute || time.Duration(cfg.ConsoleAbsolute) != 12*time.Hour {
		t.Fatalf("defaults: idle %v, absolute %v", time.Duration(cfg.ConsoleIdle), time.Duration(cfg.ConsoleAbsolute))
	}
	cfg, err = load(`, "console_idle": "10m", "console_absolute": "2h"`)
	if err != nil || time.Duration(cfg.ConsoleIdle) != 10*time.Minute || time.Duration(cfg.ConsoleAbsolute) != 2*time.Hour {
		t.Fatalf("configured: %+v %v", cfg, err)
	}
	if _, err := load(`, "console_idle": "13h"`); err == nil || !strings.Contains(err.Error(), "console_idle (13h0m0s) must not be longer than console_absolute (12h0m0s)") {
		t.Fatalf("idle longer than absolute: %v", err)
	}
}

// TestConsoleSessionAbsoluteConfigured: the configured absolute expiry
// reaches the console: the session cookie lives that long.
func TestConsoleSessionAbsoluteConfigured(t *testing.T) {
	e := newEnv(t, sqliteDB, func(c *server.Config) { c.ConsoleAbsolute = server.Duration(90 * time.Minute) })
	e.account("alice", store.AccountAdmin, testPassword)
	res := signInHTTP(t, consoleClient(), e.url, "alice", testPassword)
	for _, k := range res.Cookies() {
		if k.Name == console.CookieName {
			if k.MaxAge != 90*60 {
				t.Fatalf("session cookie Max-Age %d, want %d", k.MaxAge, 90*60)
			}
			return
		}
	}
	t.Fatalf("no session cookie (status %d)", res.StatusCode)
}

// TestNotifyEndpointAPI: POST /api/v1/endpoints/{id}/notify notifies one
// endpoint, is audited, and refuses unknown (404) and revoked (403)
// endpoints without storing a notification.
func TestNotifyEndpointAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.origin.publish(t, "components", "pattern", "1.0")
		e.sync()
		ctx := context.Background()
		ep := createEndpoint(t, e, store.Endpoint{Hostname: "pc-1", Addresses: []string{"10.0.0.1"}})
		createEndpoint(t, e, store.Endpoint{Hostname: "pc-2", Addresses: []string{"10.0.0.2"}})
		gone := createEndpoint(t, e, store.Endpoint{Hostname: "pc-old"})
		e.call(http.MethodPost, "/api/v1/endpoints/"+gone.ID+"/revoke", nil, nil)
		before, err := e.st.ListNotifications(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}

		var n api.Notification
		e.call(http.MethodPost, "/api/v1/endpoints/"+ep.ID+"/notify", nil, &n)
		if n.Versions["pattern"] != "1.0" || n.Deliveries["client"]["pending"]+n.Deliveries["client"]["delivered"] != 1 {
			t.Fatalf("notification %+v", n)
		}
		for id, want := range map[string]int{"ep_nobody": http.StatusNotFound, gone.ID: http.StatusForbidden} {
			err := e.admin.Call(ctx, http.MethodPost, "/api/v1/endpoints/"+id+"/notify", nil, nil, nil)
			if got := statusCode(err); got != want {
				t.Errorf("notify %s: %d (%v), want %d", id, got, err, want)
			}
		}
		after, err := e.st.ListNotifications(ctx, 0)
		if err != nil || len(after) != len(before)+1 {
			t.Fatalf("notifications: %d before, %d after (%v)", len(before), len(after), err)
		}
		es, err := e.st.ListAudit(ctx, store.AuditFilter{Kind: "notification.notify-endpoint"})
		if err != nil || len(es) != 1 || es[0].Actor != "token:test admin" || es[0].Target != ep.ID || !strings.Contains(es[0].Summary, n.ID) {
			t.Fatalf("audit %+v %v", es, err)
		}
	})
}

// TestConsoleEndpointPageErrors: an unknown endpoint's page is 404, an
// unknown action 404, an action the API refuses shows the API's message
// with its status, an invalid address filter is 400.
func TestConsoleEndpointPageErrors(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	c := consoleClient()
	res := signInHTTP(t, c, e.url, "alice", testPassword)
	var cookie *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == console.CookieName {
			cookie = k
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(cookie)
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var sb strings.Builder
		if _, err := io.Copy(&sb, res.Body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, sb.String()
	}
	ep := createEndpoint(t, e, store.Endpoint{Hostname: "pc-1", Addresses: []string{"10.0.0.1"}})
	if code, _ := do(http.MethodGet, "endpoints/ep_nobody", ""); code != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", code)
	}
	if code, _ := do(http.MethodPost, "endpoints/"+ep.ID+"/explode", "x=1"); code != http.StatusNotFound {
		t.Errorf("unknown action: %d", code)
	}
	if code, _ := do(http.MethodPost, "endpoints/"+ep.ID+"/revoke", "x=1"); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", code)
	}
	// Designating a revoked endpoint: the API refuses it, the page says so.
	code, body := do(http.MethodPost, "endpoints/"+ep.ID+"/designate", "agent_id=ua-1")
	if code != http.StatusForbidden || !strings.Contains(body, "was not changed (designate)") {
		t.Errorf("designating a revoked endpoint: %d %s", code, body)
	}
	if code, body := do(http.MethodGet, "endpoints?addr=10.0.0.0-2001:db8::1", ""); code != http.StatusBadRequest || !strings.Contains(body, "mixes IPv4 and IPv6") {
		t.Errorf("mixed address filter: %d %s", code, body)
	}
}
