package server_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// The update source page driven by form posts alone (no browser, no
// JavaScript).

// consoleSession signs in to the console over HTTP (no browser, no
// JavaScript) and returns a function that makes requests with the
// session: the status and the page.
func consoleSession(t *testing.T, e *env, name string) func(method, path string, form url.Values) (int, string) {
	t.Helper()
	c := consoleClient()
	res := signInHTTP(t, c, e.url, name, testPassword)
	var session *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == console.CookieName {
			session = k
		}
	}
	if session == nil {
		t.Fatalf("no session for %s", name)
	}
	return func(method, path string, form url.Values) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, e.url+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(session)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(body)
	}
}

// editorForm is the update source page's form as a browser without
// JavaScript posts it: the settings, the draft (the policy field, whose
// list's rows have the ids 0..n-1, in order) and the action.
func editorForm(base int64, p *policy.Policy, action string, entries ...string) url.Values {
	doc := fmt.Sprintf("origin: %s\nserver: %s\ncustom_sources:\n", p.Origin, p.Server)
	for _, en := range entries {
		a, src, _ := strings.Cut(en, " ")
		doc += fmt.Sprintf("  - {addresses: %q, source: %q}\n", a, src)
	}
	return url.Values{"form": {"editor"}, "base": {fmt.Sprint(base)}, "policy": {doc}, "origin": {p.Origin}, "server": {p.Server},
		"clients_source": {string(p.Clients.Source)}, "agents_source": {string(p.Agents.Source)},
		"fallback_components": {"1"}, "fallback_domain_settings": {"1"}, "fallback_programs": {"1"}, "action": {action}}
}

var pageRow = regexp.MustCompile(`(?s)<span class="addresses">([^<]*)</span>.*?<span class="source">([^<]*)</span>`)

// pageRows are the rows of the list in a page: "addresses source".
func pageRows(page string) []string {
	var out []string
	for _, m := range pageRow.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1]+" "+m[2])
	}
	return out
}

var pagePolicy = regexp.MustCompile(`name="policy"(?: id="policy")? value="([^"]*)"`)

// TestConsoleSourcesFormPosts: without JavaScript the page works by form
// posts alone (move, review, publish); a draft published over a newer
// version is refused and kept; an invalid draft saves nothing; the
// editor opens on a draft posted back as the policy field; a viewer's
// posts are refused. Both databases.
func TestConsoleSourcesFormPosts(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.account("alice", store.AccountAdmin, testPassword)
		e.account("victor", store.AccountViewer, testPassword)
		pv, _ := policyInForce(e)
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pv.Document + "custom_sources:\n" +
			"  - {addresses: 10.1.0.0/24, source: \"agent:ua-1\"}\n  - {addresses: 10.2.0.0/24, source: \"agent:ua-2\"}\n"}, nil)
		v1, p := policyInForce(e)
		admin, viewer := consoleSession(t, e, "alice"), consoleSession(t, e, "victor")
		a, b := "10.1.0.0/24 agent:ua-1", "10.2.0.0/24 agent:ua-2"

		// Move entry 2 (row id 1) up.
		code, page := admin(http.MethodPost, "sources", editorForm(v1.Version, p, "up:1", a, b))
		if got := pageRows(page); code != http.StatusOK || strings.Join(got, ",") != b+","+a {
			t.Fatalf("after moving entry 2 up: %d %q", code, got)
		}
		m := pagePolicy.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no policy field in the page")
		}
		draftYAML := html.UnescapeString(m[1])
		dp, err := policy.Parse([]byte(draftYAML))
		if err != nil || strings.Join(entriesOf(dp), ",") != b+","+a {
			t.Fatalf("the policy field holds %q (%v)", draftYAML, err)
		}
		// Review and publish, as the confirmation's form posts.
		code, page = admin(http.MethodPost, "sources", editorForm(v1.Version, p, "save", b, a))
		if code != http.StatusOK || !strings.Contains(page, `id="diff-moved"`) {
			t.Fatalf("review: %d\n%s", code, page)
		}
		if code, _ := admin(http.MethodPost, "sources", url.Values{"policy": {draftYAML}, "base": {fmt.Sprint(v1.Version)}, "action": {"publish"}}); code != http.StatusSeeOther {
			t.Fatalf("publish answered %d", code)
		}
		v2, p2 := policyInForce(e)
		if v2.Version != v1.Version+1 || strings.Join(entriesOf(p2), ",") != b+","+a {
			t.Fatalf("published version %d: %q", v2.Version, entriesOf(p2))
		}
		// The same publication again, over version v2: refused, kept.
		code, page = admin(http.MethodPost, "sources", url.Values{"policy": {draftYAML}, "base": {fmt.Sprint(v1.Version)}, "action": {"publish"}})
		if code != http.StatusConflict || !strings.Contains(page, fmt.Sprintf("version %d was published while you reviewed version %d", v2.Version, v1.Version)) ||
			strings.Join(pageRows(page), ",") != b+","+a {
			t.Fatalf("a publication over a newer version: %d %q", code, pageRows(page))
		}
		if v, _ := policyInForce(e); v.Version != v2.Version {
			t.Fatalf("a stale publication made version %d", v.Version)
		}
		// An invalid entry: 422, nothing saved, the problem next to it.
		code, page = admin(http.MethodPost, "sources", editorForm(v2.Version, p2, "save", b, a, "10.3.0.0/33 agent:ua-3"))
		if code != http.StatusUnprocessableEntity || !strings.Contains(page, `<p class="problem">custom_sources entry 3: addresses: &#34;10.3.0.0/33&#34; is not a valid CIDR or prefix</p>`) {
			t.Fatalf("saving an invalid entry: %d\n%s", code, page)
		}
		if v, _ := policyInForce(e); v.Version != v2.Version {
			t.Fatalf("an invalid draft made version %d", v.Version)
		}
		// A draft sent back as the policy field (as the preview can) opens
		// in the editor.
		code, page = admin(http.MethodPost, "sources", url.Values{"policy": {draftYAML + "  - {addresses: 10.9.0.1, source: \"agent:ua-9\"}\n"}, "base": {fmt.Sprint(v2.Version)}})
		if code != http.StatusOK || strings.Join(pageRows(page), ",") != b+","+a+",10.9.0.1 agent:ua-9" {
			t.Fatalf("a draft posted back: %d %q", code, pageRows(page))
		}

		// A viewer reads and exports, and every post is refused.
		if code, page := viewer(http.MethodGet, "sources", nil); code != http.StatusOK || strings.Join(pageRows(page), ",") != b+","+a || strings.Contains(page, "<form id=\"draft-form\"") {
			t.Fatalf("a viewer's page: %d %q", code, pageRows(page))
		}
		if code, page := viewer(http.MethodGet, "sources/export?format=csv", nil); code != http.StatusOK || page != "addresses,source\n10.2.0.0/24,agent:ua-2\n10.1.0.0/24,agent:ua-1\n" {
			t.Fatalf("a viewer's export: %d %q", code, page)
		}
		for _, path := range []string{"sources", "sources/export", "sources/notify"} {
			form := url.Values{"policy": {pv.Document}, "base": {fmt.Sprint(v2.Version)}, "action": {"publish"}, "format": {"yaml"}}
			if code, _ := viewer(http.MethodPost, path, form); code != http.StatusForbidden {
				t.Errorf("a viewer's POST /%s answered %d, want 403", path, code)
			}
		}
		if v, _ := policyInForce(e); v.Version != v2.Version {
			t.Fatalf("a viewer's posts made version %d", v.Version)
		}
		var page2 api.AuditPage
		if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/audit", url.Values{"actor": {"account:victor"}}, nil, &page2); err != nil || len(page2.Entries) != 0 {
			t.Fatalf("audit of the viewer: %+v (%v)", page2.Entries, err)
		}
	})
}
