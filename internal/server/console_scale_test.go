package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/bigregistry"
)

// maxPageBytes is the most a console page may weigh before compression
// (issue 15).
const maxPageBytes = 150 << 10

// urlAttr finds the attributes that make a browser load or follow a URL.
var urlAttr = regexp.MustCompile(`(?i)\s(src|href|action|srcset|poster|formaction|data)\s*=\s*"([^"]*)"`)

var digits = regexp.MustCompile(`[0-9]+`)

// TestConsolePagesAtScale: with 100,000 endpoints and their last reports
// (20,000 with -short), a large policy and a long audit log, every console
// page reachable from the dashboard by its links, and the sign-in and
// error pages, is under 150 KB before compression, and nothing in a page
// or in the assets it loads refers outside the server.
func TestConsolePagesAtScale(t *testing.T) {
	n := 100000
	if testing.Short() {
		n = 20000
	}
	e := newEnv(t, sqliteDB)
	ctx := context.Background()
	if _, err := bigregistry.Load(ctx, e.st, n, nil); err != nil {
		t.Fatal(err)
	}
	doc := bigregistry.Policy(e.url)
	if _, err := e.st.PutPolicy(ctx, doc, "test", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // policy changes with their documents, and others
		en := store.AuditEntry{Actor: "account:alice", Kind: "policy.set", Target: fmt.Sprint("version ", i), Summary: "policy", Before: doc, After: doc}
		if i%2 == 1 {
			en = store.AuditEntry{Actor: "token:ci", Kind: "component.hold", Target: "pattern", Summary: "pattern: held true"}
		}
		if _, err := e.st.AddAudit(ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		_, h, _ := store.NewSecret("t_")
		if _, err := e.st.CreateEnrollmentToken(ctx, store.EnrollmentToken{Domain: "default", Hash: h, MaxUses: i}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := e.st.CreateAccount(ctx, store.Account{Name: "alice", Role: store.AccountAdmin, PasswordHash: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	secret, h, _ := store.NewSecret("cs_")
	if _, err := e.st.CreateSession(ctx, store.Session{Hash: h, AccountID: a.ID}); err != nil {
		t.Fatal(err)
	}
	handler := e.srv.Handler()
	get := func(path string, signedIn bool) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, e.url+strings.TrimPrefix(path, "/"), nil)
		if signedIn {
			r.AddCookie(&http.Cookie{Name: console.CookieName, Value: secret})
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}

	// The pages: the sign-in and error pages, and a crawl from the
	// dashboard (each route with at most three paths or queries).
	type page struct {
		path     string
		signedIn bool
		code     int
	}
	queue := []page{{"/signin", false, http.StatusOK}, {"/no-such-page", true, http.StatusNotFound}, {"/", true, http.StatusOK}}
	seen, perRoute := map[string]bool{"/": true}, map[string]int{}
	assets := map[string]bool{}
	for len(queue) > 0 && len(seen) < 80 {
		p := queue[0]
		queue = queue[1:]
		w := get(p.path, p.signedIn)
		body := w.Body.String()
		if w.Code != p.code {
			t.Fatalf("GET %s: %d, want %d: %.300s", p.path, w.Code, p.code, body)
		}
		t.Logf("%-60s %7d bytes", p.path, len(body))
		if len(body) > maxPageBytes {
			t.Errorf("GET %s: %d bytes, more than %d", p.path, len(body), maxPageBytes)
		}
		for _, m := range urlAttr.FindAllStringSubmatch(body, -1) {
			u := strings.TrimSpace(m[2])
			if strings.Contains(u, "://") || strings.HasPrefix(u, "//") || (m[1] == "src" && !strings.HasPrefix(u, "/")) {
				t.Errorf("GET %s: %s=%q refers outside the server", p.path, m[1], u)
				continue
			}
			if !strings.HasPrefix(u, "/") {
				continue
			}
			u = strings.ReplaceAll(u, "&amp;", "&")
			path, _, _ := strings.Cut(u, "?")
			route := digits.ReplaceAllString(path, "N") // /audit/N: one route
			switch {
			case strings.HasPrefix(u, "/assets/"):
				assets[u] = true
			case path == "/signout" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/site/") || strings.HasPrefix(path, "/vendor/"):
			case !seen[u] && perRoute[route] < 3 && strings.EqualFold(m[1], "href"):
				seen[u] = true
				perRoute[route]++
				queue = append(queue, page{u, true, http.StatusOK})
			}
		}
	}
	if len(seen) < 8 {
		t.Fatalf("the crawl reached %d pages: %v", len(seen), seen)
	}
	if len(assets) == 0 {
		t.Fatal("no page loads an asset")
	}
	external := regexp.MustCompile(`(?i)https?:|url\(\s*['"]?//|@import`)
	for u := range assets {
		w := get(u, false)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", u, w.Code)
		}
		if m := external.FindString(w.Body.String()); m != "" {
			t.Errorf("asset %s refers outside the server (%q)", u, m)
		}
	}
}
