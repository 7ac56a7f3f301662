package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// sourcesPageLink finds the pages of the list: links for the viewer,
// buttons for the administrator (which GET /sources?page=N shows too).
var sourcesPageLink = regexp.MustCompile(`(?:href="/sources\?page=|value="page:)([0-9]+)"`)

// TestConsolePagesAtScaleSources: with the largest list the policy allows
// (1024 entries, each with two warnings: an agent that is not enrolled and
// addresses that hold no endpoint), every page of the update source page
// is under 150 KB before compression, for the administrator (the editor,
// its pages, a step of editing, the review) and for the viewer, and the
// pages together show every entry with its warnings.
func TestConsolePagesAtScaleSources(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	e.account("victor", store.AccountViewer, testPassword)
	pv, _ := policyInForce(e)
	var doc strings.Builder
	doc.WriteString(pv.Document + "clients:\n  source: customized\ncustom_sources:\n")
	var want []string
	for i := range policy.MaxSources {
		a := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		fmt.Fprintf(&doc, "  - {addresses: %s, source: \"agent:ua-%04d\"}\n", a, i)
		want = append(want, fmt.Sprintf("%s agent:ua-%04d", a, i))
	}
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: doc.String()}, nil)
	v, p := policyInForce(e)
	if len(p.CustomSources) != policy.MaxSources {
		t.Fatalf("the policy in force has %d entries", len(p.CustomSources))
	}
	admin, viewer := consoleSession(t, e, "alice"), consoleSession(t, e, "victor")
	check := func(who, what string, code int, page string) {
		t.Helper()
		t.Logf("%-8s %-40s %7d bytes", who, what, len(page))
		if code != http.StatusOK {
			t.Fatalf("%s %s: %d %.300s", who, what, code, page)
		}
		if len(page) > maxPageBytes {
			t.Errorf("%s %s: %d bytes, more than %d", who, what, len(page), maxPageBytes)
		}
	}
	for _, s := range []struct {
		who string
		get func(method, path string, form url.Values) (int, string)
	}{{"admin", admin}, {"viewer", viewer}} {
		code, first := s.get(http.MethodGet, "sources", nil)
		check(s.who, "GET /sources", code, first)
		rows, warnings := pageRows(first), strings.Count(first, `class="warning"`)
		pages := map[string]bool{}
		for _, m := range sourcesPageLink.FindAllStringSubmatch(first, -1) {
			if m[1] != "1" && !pages[m[1]] {
				pages[m[1]] = true
				code, page := s.get(http.MethodGet, "sources?page="+m[1], nil)
				check(s.who, "GET /sources?page="+m[1], code, page)
				rows = append(rows, pageRows(page)...)
				warnings += strings.Count(page, `class="warning"`)
			}
		}
		if strings.Join(rows, ",") != strings.Join(want, ",") {
			t.Errorf("%s: the pages show %d entries, not the %d of the list in order", s.who, len(rows), len(want))
		}
		if warnings != 2*len(want) {
			t.Errorf("%s: the pages show %d warnings, want %d", s.who, warnings, 2*len(want))
		}
	}
	// A step of editing (moving the last entry up) and the review.
	code, page := admin(http.MethodPost, "sources", url.Values{"form": {"editor"}, "base": {fmt.Sprint(v.Version)},
		"policy": {v.Document}, "clients_source": {"customized"}, "agents_source": {"standard"},
		"fallback_components": {"1"}, "fallback_domain_settings": {"1"}, "fallback_programs": {"1"},
		"action": {fmt.Sprintf("up:%d", policy.MaxSources-1)}})
	check("admin", "POST /sources (move up)", code, page)
	if rows := pageRows(page); len(rows) < 2 || rows[len(rows)-1] != want[len(want)-2] || rows[len(rows)-2] != want[len(want)-1] {
		t.Errorf("after moving the last entry up the page shows %q", rows)
	}
	// Without JavaScript the first entry of page 2 moves up onto page 1,
	// which the answer shows.
	form := url.Values{"form": {"editor"}, "base": {fmt.Sprint(v.Version)}, "policy": {v.Document}, "clients_source": {"customized"},
		"agents_source": {"standard"}, "page": {"2"}, "action": {fmt.Sprintf("up:%d", 50)}}
	_, page = admin(http.MethodPost, "sources", form)
	if rows := pageRows(page); len(rows) != 50 || rows[48] != want[48] || rows[49] != want[50] {
		t.Errorf("after moving entry 51 up the page shows %d entries, ending %q", len(rows), rows[len(rows)-2:])
	}
	// The page's script sends the order of the rows it shows.
	form.Set("action", "apply")
	form["order"] = []string{"51", "50"}
	_, page = admin(http.MethodPost, "sources", form)
	if rows := pageRows(page); len(rows) != 50 || rows[0] != want[51] || rows[1] != want[50] || rows[2] != want[52] {
		t.Errorf("after reordering page 2 it shows %q", rows[:3])
	}
	for _, bad := range [][]string{{"51", "51"}, {"1024"}, {"-1"}, {"x"}} {
		form["order"] = bad
		if code, _ := admin(http.MethodPost, "sources", form); code != http.StatusBadRequest {
			t.Errorf("order %q answered %d, want 400", bad, code)
		}
	}
	// A save refused for a problem in entry 1000 shows its page.
	code, page = admin(http.MethodPost, "sources", url.Values{"base": {fmt.Sprint(v.Version)}, "action": {"save"},
		"policy": {strings.Replace(v.Document, "10.3.231.0/24", "10.3.231.0/33", 1)}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, `<tr data-entry="1000" class="invalid">`) || len(page) > maxPageBytes {
		t.Errorf("a save refused for entry 1000: %d, %d bytes, rows %q", code, len(page), pageRows(page)[:1])
	}
	code, page = admin(http.MethodPost, "sources", url.Values{"base": {fmt.Sprint(v.Version)}, "policy": {strings.Replace(v.Document, "10.0.0.0/24", "10.0.0.0/23", 1)}, "action": {"save"}})
	check("admin", "POST /sources (save: the review)", code, page)
	if !strings.Contains(page, `id="publish"`) {
		t.Errorf("the review has no publish button")
	}
	// The review of a list replaced whole: 1024 entries removed, 1024 added.
	replaced := strings.ReplaceAll(strings.ReplaceAll(v.Document, "addresses: 10.", "addresses: 172."), "agent:ua-", "agent:ub-")
	code, page = admin(http.MethodPost, "sources", url.Values{"base": {fmt.Sprint(v.Version)}, "policy": {replaced}, "action": {"save"}})
	check("admin", "POST /sources (save: a list replaced)", code, page)
	// It lists 600 of the 2048 changes, 300 of each kind, and counts them.
	if !strings.Contains(page, "Entries added (1024)") || !strings.Contains(page, "Entries removed (1024)") ||
		strings.Count(page, `<p class="more">And 724 more`) != 2 {
		t.Errorf("the review of a list replaced does not count the changes it leaves out")
	}
	if n := strings.Count(page, "<li>entry "); n != 600 || !strings.Contains(page, "<li>entry 300: 172.1.43.0/24 → agent:ub-0299</li>") {
		t.Errorf("the review of a list replaced lists %d entries added or removed, want 600 from the first", n)
	}
}
