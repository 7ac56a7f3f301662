package server_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

var warningRE = regexp.MustCompile(`<li>([^<]*)</li>`)

// dashboardWarnings returns the warnings the dashboard page shows.
func dashboardWarnings(page string) []string {
	i := strings.Index(page, `id="warnings"`)
	if i < 0 {
		return nil
	}
	sec := page[i:]
	sec = sec[:strings.Index(sec, "</section>")]
	var out []string
	for _, m := range warningRE.FindAllStringSubmatch(sec, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// dashboardAs signs in as name and returns the dashboard page.
func dashboardAs(t *testing.T, e *env, name string) string {
	t.Helper()
	code, page := consoleSession(t, e, name)(http.MethodGet, "", nil)
	if code != http.StatusOK {
		t.Fatalf("dashboard: %d %.300s", code, page)
	}
	return page
}

// TestConsoleDashboardAgentDown: an update agent that is not connected
// and was last seen more than AgentDownAfter ago is named in the
// dashboard's warnings; one seen within that time is not. Time moves on
// the server's clock.
func TestConsoleDashboardAgentDown(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		clock := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
		e := newEnvAt(t, db, clock.Now)
		e.account("victor", store.AccountViewer, testPassword)
		ids := map[string]string{}
		for i, host := range []string{"agent-1", "agent-2"} {
			res, _ := e.enroll(host, fmt.Sprintf("10.1.0.%d", i+1))
			e.call(http.MethodPut, "/api/v1/endpoints/"+res.EndpointID+"/role", api.SetRole{Role: "agent", AgentID: fmt.Sprintf("ua-%d", i+1)}, nil)
			ids[host] = res.EndpointID
		}
		enrolled := clock.Now()
		agentWarnings := func() []string {
			t.Helper()
			return slices.DeleteFunc(dashboardWarnings(dashboardAs(t, e, "victor")), func(w string) bool {
				return !strings.HasPrefix(w, "update agent ")
			})
		}
		if w := agentWarnings(); len(w) != 0 {
			t.Fatalf("just enrolled, the dashboard warns %q", w)
		}
		// Just under the limit: no warning; agent-2 is seen again.
		clock.Advance(server.AgentDownAfter - time.Minute)
		if _, err := e.st.UpdateEndpointStatus(context.Background(), ids["agent-2"], store.StatusUpdate{}); err != nil {
			t.Fatal(err)
		}
		if w := agentWarnings(); len(w) != 0 {
			t.Fatalf("%s after the agents were seen, the dashboard warns %q", server.AgentDownAfter-time.Minute, w)
		}
		// Past it: agent-1 is down, agent-2 (seen a minute ago) is not.
		clock.Advance(2 * time.Minute)
		want := "update agent ua-1 (agent-1) is not connected and was last seen " + enrolled.Format(time.RFC3339)
		if w := agentWarnings(); len(w) != 1 || w[0] != want {
			t.Fatalf("%s after agent-1 was seen, the dashboard warns %q, want %q", server.AgentDownAfter+time.Minute, w, want)
		}
	})
}

// TestConsoleDashboardSigningExpiry: when a role of the site repository
// comes within its margin of expiry (the timestamp, signed for a day and
// re-signed on schedule, 6 hours before), the dashboard warns and says
// what to do. Time moves on the server's clock; nothing re-signs
// meanwhile (the schedule runs on the wall clock).
func TestConsoleDashboardSigningExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		clock := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
		e := newEnvAt(t, db, clock.Now)
		e.account("victor", store.AccountViewer, testPassword)
		if w := dashboardWarnings(dashboardAs(t, e, "victor")); len(w) != 0 {
			t.Fatalf("a new server's dashboard warns %q", w)
		}
		var st api.Status
		e.call(http.MethodGet, "/api/v1/status", nil, &st)
		if st.Site.Expires.IsZero() {
			t.Fatalf("status without the site timestamp's expiry: %+v", st.Site)
		}
		// 5 hours before the timestamp expires (the session of the first
		// page has ended by then: sign in again).
		clock.Set(st.Site.Expires.Add(-5 * time.Hour))
		w := dashboardWarnings(dashboardAs(t, e, "victor"))
		want := fmt.Sprintf("timestamp expires in 5h0m0s (at %s): run refresh", st.Site.Expires.UTC().Format(time.RFC3339))
		if len(w) != 1 || w[0] != want {
			t.Fatalf("5 hours before the site timestamp expires, the dashboard warns %q, want %q", w, want)
		}
	})
}

// TestConsoleDashboardCategories: the dashboard shows each category:
// components (version deployed, newest mirrored, hold), domain settings
// (the policy version and each domain's settings version in force) and
// programs (the newest mirrored and the version each domain approved),
// the lists bounded, with the content page for the rest.
func TestConsoleDashboardCategories(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.account("victor", store.AccountViewer, testPassword)
		e.origin.publish(t, "programs", "agent-core", "2.0")
		e.origin.publish(t, "programs", "agent-core", "2.1")
		e.origin.publish(t, "programs", "hotfix-7", "1.0")
		e.origin.publish(t, "components", "pattern", "3.0")
		e.sync()
		e.call(http.MethodPost, "/api/v1/domains", api.Domain{Name: "lab"}, nil)
		e.call(http.MethodPut, "/api/v1/domains/default/programs/agent-core", api.Deploy{Version: "2.0"}, nil)
		e.call(http.MethodPut, "/api/v1/domains/lab/programs/agent-core", api.Deploy{Version: "2.1"}, nil)
		for i := range 2 {
			e.call(http.MethodPut, "/api/v1/domains/lab/settings", map[string]int{"scan_hour": i}, nil)
		}
		var pol api.Policy
		e.call(http.MethodGet, "/api/v1/policy", nil, &pol)

		page := dashboardAs(t, e, "victor")
		if rows := tableRows(page, "components"); len(rows) != 1 || rows[0] != "pattern|3.0|3.0|" {
			t.Fatalf("components on the dashboard: %q", rows)
		}
		if rows, want := tableRows(page, "dashboard-programs"), []string{"agent-core|2.1|default: 2.0, lab: 2.1", "hotfix-7|1.0|none"}; !slices.Equal(rows, want) {
			t.Fatalf("programs on the dashboard: %q, want %q", rows, want)
		}
		if !strings.Contains(page, fmt.Sprintf(`<span id="policy-version">%d</span>`, pol.Version)) {
			t.Fatalf("the dashboard does not show policy version %d", pol.Version)
		}
		rows := tableRows(page, "domain-settings")
		if len(rows) != 2 || rows[0] != "default|0|never" || !strings.HasPrefix(rows[1], "lab|2|20") {
			t.Fatalf("domain settings on the dashboard: %q", rows)
		}
		if strings.Contains(page, `id="more-domains"`) || strings.Contains(page, `id="more-programs"`) {
			t.Fatal("the dashboard says more domains or programs than it shows")
		}

		// Many domains: the first 20 by name, and how many more.
		for i := range 21 {
			e.call(http.MethodPost, "/api/v1/domains", api.Domain{Name: fmt.Sprintf("site-%02d", i)}, nil)
		}
		page = dashboardAs(t, e, "victor")
		rows = tableRows(page, "domain-settings")
		if len(rows) != 20 || rows[0] != "default|0|never" || !strings.HasPrefix(rows[19], "site-17|0|") {
			t.Fatalf("with 23 domains the dashboard lists %d: %q", len(rows), rows)
		}
		if !strings.Contains(page, `<p class="note" id="more-domains">3 more domains not shown.</p>`) {
			t.Fatal("with 23 domains the dashboard does not say 3 more")
		}
	})
}

// TestConsoleBrowserEndpointFiltersBehindNotSeen: the dashboard's
// "behind" and "not seen" figures count, and their links
// (/endpoints?state=behind, /endpoints?state=not_seen) list, exactly the
// endpoints behind the deployed version and those not seen for longer
// than console_not_seen. Time moves on the server's clock.
func TestConsoleBrowserEndpointFiltersBehindNotSeen(t *testing.T) {
	b := newBrowser(t)
	clock := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
	e := newEnvAt(t, sqliteDB, clock.Now, func(c *server.Config) { c.ConsoleNotSeen = server.Duration(2 * time.Hour) })
	e.account("alice", store.AccountAdmin, testPassword)
	e.origin.publish(t, "components", "pattern", "2.0")
	if res := e.sync(); res.Deployed["pattern"] != "2.0" {
		t.Fatalf("sync: %+v", res)
	}
	ctx := context.Background()
	ids := map[string]string{}
	for i, host := range []string{"current", "behind-seen", "behind-away", "failing-away", "silent-away", "current-away"} {
		ep, err := e.st.CreateEndpoint(ctx, store.Endpoint{Hostname: host, Domain: "default",
			Addresses: []string{fmt.Sprintf("10.1.0.%d", i+1)}, CredentialHash: store.HashSecret("cred " + host)})
		if err != nil {
			t.Fatal(err)
		}
		ids[host] = ep.ID
	}
	report := func(host, result, pattern string) store.Report {
		now := clock.Now()
		return store.Report{EndpointID: ids[host], Trigger: "scheduled", Started: now, Finished: now, Result: result,
			Categories: []store.CategoryReport{{Category: category.Components, Result: result, Source: "server",
				VersionsAfter: map[string]string{"pattern": pattern}}}}
	}
	if err := e.st.AddReports(ctx, []store.Report{
		report("current", "success", "2.0"), report("behind-seen", "success", "1.0"), report("behind-away", "success", "1.9"),
		report("failing-away", "failed", "1.0"), report("current-away", "success", "2.0"),
	}); err != nil {
		t.Fatal(err)
	}
	// Three hours later, two were seen again; the others (*-away) were not.
	clock.Advance(3 * time.Hour)
	for _, host := range []string{"current", "behind-seen"} {
		if _, err := e.st.UpdateEndpointStatus(ctx, ids[host], store.StatusUpdate{}); err != nil {
			t.Fatal(err)
		}
	}

	b.signIn(e.url, "alice", testPassword)
	b.run("dashboard", chromedp.Navigate(e.url), chromedp.WaitReady(chromedp.CSS("#behind")))
	for sel, want := range map[string]string{"#behind": "2", "#not-seen": "4", "#failing": "1", "#up-to-date": "2", "#no-report": "1"} {
		if got := b.text(sel); got != want {
			t.Errorf("dashboard %s = %s, want %s", sel, got, want)
		}
	}
	hosts := func() []string {
		return eval[[]string](b, `Array.from(document.querySelectorAll("#endpoint-table td.host")).map(e => e.textContent.trim())`)
	}
	for _, c := range []struct {
		link, url string
		want      []string
	}{
		{"#behind a", "endpoints?state=behind", []string{"behind-away", "behind-seen"}},
		{"#not-seen a", "endpoints?state=not_seen", []string{"behind-away", "current-away", "failing-away", "silent-away"}},
	} {
		b.run("dashboard", chromedp.Navigate(e.url), chromedp.WaitReady(chromedp.CSS(c.link)))
		b.submit("follow "+c.link, c.link)
		if got := eval[string](b, `location.href`); got != e.url+c.url {
			t.Fatalf("%s led to %s, want %s", c.link, got, e.url+c.url)
		}
		if got := hosts(); !slices.Equal(got, c.want) {
			t.Errorf("%s lists %q, want %q", c.url, got, c.want)
		}
	}
}
