package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// consoleClient is a plain HTTP client of the console (no redirects
// followed), for what a browser would not let a test do.
func consoleClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signInHTTP posts the sign-in form and returns the answer.
func signInHTTP(t *testing.T, c *http.Client, base, name, password string) *http.Response {
	t.Helper()
	res, err := c.PostForm(base+"signin", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func TestConsoleHeadersCookieAndCrossOrigin(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.account("alice", store.AccountAdmin, testPassword)
		c := consoleClient()

		res, err := c.Get(e.url + "signin")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		for h, want := range map[string]string{
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy allows inline code: %q", csp)
		}

		res = signInHTTP(t, c, e.url, "alice", testPassword)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in answered %d", res.StatusCode)
		}
		var ck *http.Cookie
		for _, k := range res.Cookies() {
			if k.Name == console.CookieName {
				ck = k
			}
		}
		if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
			t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", ck)
		}

		// A state-changing request with a valid session, marked by the
		// browser as coming from another site, or with a foreign Origin.
		for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
			req, _ := http.NewRequest(http.MethodPost, e.url+"enrollment/tokens", strings.NewReader("domain=default&uses=0"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(ck)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("cross-origin POST (%v) answered %d, want 403", hdr, res.StatusCode)
			}
		}
		// The same request from the console's own origin works.
		req, _ := http.NewRequest(http.MethodPost, e.url+"enrollment/tokens", strings.NewReader("domain=default&uses=0"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(ck)
		res, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("same-origin POST answered %d", res.StatusCode)
		}
		toks, err := e.st.ListEnrollmentTokens(context.Background(), "")
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens %v (%v), want the one made from the console's origin", toks, err)
		}
		// Sign out ends the session on the server.
		req, _ = http.NewRequest(http.MethodPost, e.url+"signout", nil)
		req.AddCookie(ck)
		if res, err = c.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		req, _ = http.NewRequest(http.MethodGet, e.url, nil)
		req.AddCookie(ck)
		if res, err = c.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
			t.Fatalf("after sign-out the old cookie gets %d %s", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

func TestConsoleSignInRateLimited(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	c := consoleClient()
	for i := range 5 {
		if res := signInHTTP(t, c, e.url, "alice", "wrong password "+fmt.Sprint(i)); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d answered %d, want 401", i, res.StatusCode)
		}
	}
	// The sixth attempt within the minute is refused, even with the
	// right password.
	if res := signInHTTP(t, c, e.url, "alice", testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt answered %d, want 429", res.StatusCode)
	}
	// Another account from the same address still may (per account),
	// until the per-address limit.
	e.account("bob", store.AccountViewer, testPassword)
	if res := signInHTTP(t, c, e.url, "bob", testPassword); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's sign-in answered %d", res.StatusCode)
	}
	for i := range 30 {
		res := signInHTTP(t, c, e.url, fmt.Sprint("user", i), "x")
		if res.StatusCode == http.StatusTooManyRequests {
			return // the per-address limit
		}
	}
	t.Fatal("30 attempts for different accounts from one address were never limited")
}

func TestAuditAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		tok := e.newToken(api.TokenRequest{Domain: "default"})
		e.call(http.MethodDelete, "/api/v1/tokens/"+tok.ID, nil, nil)
		e.call(http.MethodPost, "/api/v1/notifications", nil, nil)
		// A refused change is not recorded.
		if err := e.admin.Call(context.Background(), http.MethodDelete, "/api/v1/tokens/nope", nil, nil, nil); statusCode(err) != http.StatusNotFound {
			t.Fatalf("revoke unknown token: %v", err)
		}
		var pol api.Policy
		e.call(http.MethodGet, "/api/v1/policy", nil, &pol)
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pol.Document + "\n"}, nil)
		var page api.AuditPage
		audit := func(q url.Values) {
			t.Helper()
			page = api.AuditPage{}
			if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/audit", q, nil, &page); err != nil {
				t.Fatal(err)
			}
		}
		audit(url.Values{"actor": {"token:test admin"}})
		var kinds []string
		for _, en := range page.Entries {
			kinds = append(kinds, en.Kind)
		}
		want := "policy.set,notification.notify-all,enrollment-token.revoke,enrollment-token.create"
		if strings.Join(kinds, ",") != want {
			t.Fatalf("audit kinds %v, want %s", kinds, want)
		}
		if page.Entries[2].Target != tok.ID || page.Entries[3].After == "" || strings.Contains(page.Entries[3].After, "cascade_enroll_") {
			t.Fatalf("token entries %+v: want the target, the state after, and never the secret", page.Entries[2:])
		}
		audit(url.Values{"kind": {"policy.set"}})
		if len(page.Entries) != 1 || page.Entries[0].Before != pol.Document || page.Entries[0].After != pol.Document+"\n" ||
			page.Entries[0].Actor != "token:test admin" || !strings.Contains(page.Entries[0].Summary, fmt.Sprintf("(was %d)", pol.Version)) {
			t.Fatalf("policy entries %+v, want one with the documents before and after", page.Entries)
		}
		audit(url.Values{"kind": {"enrollment-token."}, "limit": {"1"}})
		if len(page.Entries) != 1 || page.Entries[0].Kind != "enrollment-token.revoke" || page.NextBefore == 0 {
			t.Fatalf("first page %+v", page)
		}
		audit(url.Values{"kind": {"enrollment-token."}, "limit": {"1"}, "before": {fmt.Sprint(page.NextBefore)}})
		if len(page.Entries) != 1 || page.Entries[0].Kind != "enrollment-token.create" {
			t.Fatalf("second page %+v", page)
		}
		if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/audit", url.Values{"since": {"yesterday"}}, nil, nil); statusCode(err) != http.StatusBadRequest {
			t.Fatalf("bad since: %v", err)
		}
	})
}
