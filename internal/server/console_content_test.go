package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

func TestConsoleBrowserAgentsPage(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	ctx := context.Background()
	e.origin.publish(t, "components", "pattern", "1.0")
	if res := e.sync(); res.Deployed["pattern"] != "1.0" {
		t.Fatalf("sync: %+v", res)
	}
	ids := map[string]string{}
	for _, ep := range []store.Endpoint{
		{Hostname: "agent-1", Role: store.RoleAgent, AgentID: "ua-1", Addresses: []string{"10.2.0.1"},
			Installed: store.Installed{category.Components: {"pattern": "1.0"}}},
		{Hostname: "host-a", Role: store.RoleClient, Addresses: []string{"10.2.0.10"}},
		{Hostname: "host-b", Role: store.RoleClient, Addresses: []string{"10.2.0.11"}},
		{Hostname: "host-c", Role: store.RoleClient, Addresses: []string{"10.2.0.12"}},
		{Hostname: "host-d", Role: store.RoleClient, Addresses: []string{"10.3.0.1"}},
	} {
		ep.Domain, ep.CredentialHash = "default", store.HashSecret("cred-"+ep.Hostname)
		got, err := e.st.CreateEndpoint(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		ids[ep.Hostname] = got.ID
	}
	now := time.Now()
	ran := func(host, result, src, ver string) store.Report {
		return store.Report{EndpointID: ids[host], Trigger: "scheduled", Started: now, Finished: now, Result: result,
			Categories: []store.CategoryReport{{Category: category.Components, Result: result, Source: src,
				VersionsAfter: map[string]string{"pattern": ver}}}}
	}
	if err := e.st.AddReports(ctx, []store.Report{
		ran("host-a", "success", "agent:ua-1", "1.0"),
		ran("host-b", "success", "server", "0.9"),
		ran("host-c", "failed", "", "0.9"),
	}); err != nil {
		t.Fatal(err)
	}
	var pol api.Policy
	e.call(http.MethodGet, "/api/v1/policy", nil, &pol)
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pol.Document +
		"clients: {source: customized}\ncustom_sources:\n  - {addresses: 10.2.0.0/24, source: \"agent:ua-1\"}\n"}, nil)

	b.signIn(e.url, "alice", testPassword)
	b.run("agents page", chromedp.Navigate(e.url+"agents"), chromedp.WaitVisible(chromedp.CSS(`section[data-agent="ua-1"]`)))
	type row struct{ Host, State, Sources string }
	rows := func(agent string) []row {
		return eval[[]row](b, `Array.from(document.querySelectorAll('section[data-agent="`+agent+`"] table.clients tbody tr')).map(tr => ({
			Host: tr.querySelector(".host").textContent.trim(), State: tr.querySelector(".state").textContent.trim(),
			Sources: tr.querySelector(".sources").textContent.trim()}))`)
	}
	// The agent's clients: the endpoints of 10.2.0.0/24 but the agent
	// itself, with their state and where they updated from.
	want := []row{{"host-a", "up_to_date", "components: agent:ua-1"}, {"host-b", "behind", "components: server"},
		{"host-c", "failing", "components: none (failed)"}}
	got := rows("ua-1")
	if len(got) != len(want) {
		t.Fatalf("ua-1's clients: %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ua-1's client %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	sec := `section[data-agent="ua-1"] `
	for sel, want := range map[string]string{sec + ".count-up_to_date": "1", sec + ".count-behind": "1", sec + ".count-failing": "1",
		sec + ".count-no_report": "0", sec + ".connected": "no", sec + ".versions": "components: pattern 1.0",
		sec + ".own-state": "no_report"} {
		if got := b.text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if got := b.text(sec + "td.last-seen"); got == "—" || got == "" {
		t.Errorf("the agent's last seen is %q", got)
	}
	// The agent report itself (the same function) agrees.
	var rep api.AgentReport
	e.call(http.MethodGet, "/api/v1/agents/report", nil, &rep)
	if len(rep.Agents) != 1 || rep.Agents[0].Endpoints != 3 || rep.Unassigned.Endpoints != 2 {
		t.Fatalf("agent report: %+v", rep)
	}
	// Endpoints whose list starts with no update agent: the agent itself
	// (it never lists itself) and host-d.
	if got := rows(""); len(got) != 2 || got[0].Host != "agent-1" || got[1].Host != "host-d" || got[1].State != "no_report" {
		t.Fatalf("unassigned: %+v", got)
	}
}

// contentEnv is a server with two components mirrored and deployed.
func contentEnv(t *testing.T, db dbKind) *env {
	e := newEnv(t, db)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.origin.publish(t, "components", "engine", "7.1")
	if res := e.sync(); res.Deployed["pattern"] != "1.0" {
		t.Fatalf("sync: %+v", res)
	}
	return e
}

func component(t *testing.T, e *env, name string) api.Component {
	t.Helper()
	var cs []api.Component
	e.call(http.MethodGet, "/api/v1/content/components", nil, &cs)
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no component %s in %+v", name, cs)
	return api.Component{}
}

func TestConsoleBrowserContentHoldRelease(t *testing.T) {
	b := newBrowser(t)
	e := contentEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	b.signIn(e.url, "alice", testPassword)
	row := `#components tr[data-component="pattern"] `
	b.run("content page", chromedp.Navigate(e.url+"content"), chromedp.WaitVisible(chromedp.CSS(row+"button.hold")))
	if got := b.text(row + ".deployed"); got != "1.0" {
		t.Fatalf("pattern deployed %q", got)
	}
	// engine's only mirrored version is deployed: nothing else to deploy.
	if n := eval[int](b, `document.querySelectorAll('#components tr[data-component="engine"] button.deploy').length`); n != 0 {
		t.Fatal("engine offers a deployment with no other version mirrored")
	}
	if got := b.text("#last-sync"); !strings.Contains(got, "succeeded") {
		t.Fatalf("last sync: %q", got)
	}
	if got := b.text("#sync-log tbody tr:first-child"); !strings.Contains(got, "succeeded") || !strings.Contains(got, "pattern 1.0") {
		t.Fatalf("sync log: %q", got)
	}
	// The server's sync at start and contentEnv's: asked for one, the
	// page shows the newest and links to more.
	b.run("one sync of the log", chromedp.Navigate(e.url+"content?syncs=1"), chromedp.WaitVisible(chromedp.CSS("#more-syncs")))
	if n := eval[int](b, `document.querySelectorAll('#sync-log tbody tr').length`); n != 1 {
		t.Fatalf("?syncs=1 shows %d syncs", n)
	}
	if href := eval[string](b, `document.querySelector('#more-syncs').getAttribute('href')`); href != "/content?syncs=100" {
		t.Fatalf("more links to %q", href)
	}
	b.run("content page again", chromedp.Navigate(e.url+"content"), chromedp.WaitVisible(chromedp.CSS(row+"button.hold")))
	// Hold: a confirmation page first; cancelling changes nothing.
	b.run("hold", chromedp.Click(chromedp.CSS(row+"button.hold")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#what"); !strings.Contains(got, "Hold component pattern at its deployed version 1.0") {
		t.Fatalf("confirmation says %q", got)
	}
	b.run("cancel", chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS(row+"button.hold")))
	if c := component(t, e, "pattern"); c.Held {
		t.Fatal("a cancelled hold held the component")
	}
	b.run("hold and confirm", chromedp.Click(chromedp.CSS(row+"button.hold")), chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#changed")))
	if got := b.text(row + ".held"); got != "held" {
		t.Fatalf("after the hold the page says %q", got)
	}
	if c := component(t, e, "pattern"); !c.Held || c.Deployed != "1.0" {
		t.Fatalf("after the hold: %+v", c)
	}
	// A newer version is mirrored but, held, not deployed; release
	// deploys it.
	e.origin.publish(t, "components", "pattern", "1.1")
	if res := e.sync(); res.Deployed["pattern"] != "" {
		t.Fatalf("a held component was deployed by the sync: %+v", res)
	}
	b.run("release", chromedp.Navigate(e.url+"content"), chromedp.WaitVisible(chromedp.CSS(row+"button.release")))
	if got := b.text(row + ".mirrored"); got != "1.1, 1.0" {
		t.Fatalf("mirrored versions %q", got)
	}
	b.run("release and confirm", chromedp.Click(chromedp.CSS(row+"button.release")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#what"); !strings.Contains(got, "the newest mirrored version, 1.1, is deployed") {
		t.Fatalf("confirmation says %q", got)
	}
	b.run("confirm the release", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#changed")))
	if c := component(t, e, "pattern"); c.Held || c.Deployed != "1.1" {
		t.Fatalf("after the release: %+v", c)
	}
	// A rollback: deploy 1.0 again, chosen in the list.
	b.run("rollback", chromedp.SetValue(chromedp.CSS(row+"select.version"), "1.0"), chromedp.Click(chromedp.CSS(row+"button.deploy")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#what"); !strings.Contains(got, "Deploy version 1.0 of component pattern (deployed now: 1.1)") {
		t.Fatalf("confirmation says %q", got)
	}
	b.run("confirm the rollback", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#changed")))
	if got := b.text(row + ".deployed"); got != "1.0" {
		t.Fatalf("after the rollback the page says %q", got)
	}
	// The audit log shows each change, by the account, newest first.
	b.run("audit", chromedp.Navigate(e.url+"audit?kind=component."), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	kinds := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table .kind")).map(e => e.textContent)`)
	actors := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table .actor")).map(e => e.textContent)`)
	if strings.Join(kinds, ",") != "component.deploy,component.release,component.hold" ||
		strings.Join(actors, ",") != "account:alice,account:alice,account:alice" {
		t.Fatalf("audit: kinds %v by %v", kinds, actors)
	}
}

func TestConsoleBrowserViewerCannotHold(t *testing.T) {
	b := newBrowser(t)
	e := contentEnv(t, sqliteDB)
	e.origin.publish(t, "programs", "agent-core", "2.0")
	e.sync()
	e.call(http.MethodPut, "/api/v1/domains/default/programs/agent-core", api.Deploy{Version: "2.0"}, nil)
	e.account("victor", store.AccountViewer, testPassword)
	b.signIn(e.url, "victor", testPassword)
	row := `#components tr[data-component="pattern"] `
	b.run("content page", chromedp.Navigate(e.url+"content"), chromedp.WaitVisible(chromedp.CSS(row+".deployed")))
	if n := eval[int](b, `document.querySelectorAll("#components button, #components form").length`); n != 0 {
		t.Fatalf("a viewer is shown %d change buttons or forms", n)
	}
	if got := b.text(row + ".mirrored"); got != "1.0" {
		t.Fatalf("a viewer sees mirrored versions %q", got)
	}
	// Programs mirrored and the approvals per domain.
	if got := b.text(`#programs tr[data-program="agent-core"] .mirrored`); got != "2.0" {
		t.Fatalf("agent-core mirrored %q", got)
	}
	approvals := eval[[]string](b, `Array.from(document.querySelectorAll("#approvals tbody tr")).map(tr =>
		Array.from(tr.querySelectorAll(".domain, .program, .version")).map(td => td.textContent).join(" "))`)
	if strings.Join(approvals, ";") != "default agent-core 2.0" {
		t.Fatalf("approvals %q", approvals)
	}
	status := eval[int](b, `fetch("/content/components/pattern/hold", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""}).then(r => r.status)`, chromedp.EvalAwaitPromise)
	if status != http.StatusForbidden {
		t.Fatalf("a viewer's direct hold POST answered %d, want 403", status)
	}
	if c := component(t, e, "pattern"); c.Held {
		t.Fatal("a viewer held the component")
	}
}

// TestConsoleContentViewerRefused: every content change posted by a
// viewer is refused (403) and changes nothing; the same requests by an
// admin go through.
func TestConsoleContentViewerRefused(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := contentEnv(t, db)
		e.account("victor", store.AccountViewer, testPassword)
		e.account("alice", store.AccountAdmin, testPassword)
		c := consoleClient()
		session := func(name string) *http.Cookie {
			res := signInHTTP(t, c, e.url, name, testPassword)
			for _, k := range res.Cookies() {
				if k.Name == console.CookieName {
					return k
				}
			}
			t.Fatalf("no session for %s", name)
			return nil
		}
		do := func(ck *http.Cookie, method, path string, form url.Values) int {
			t.Helper()
			req, _ := http.NewRequest(method, e.url+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			req.AddCookie(ck)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		viewer, admin := session("victor"), session("alice")
		if code := do(viewer, http.MethodGet, "content", nil); code != http.StatusOK {
			t.Fatalf("a viewer's content page answered %d", code)
		}
		for _, r := range []struct {
			method, path string
			form         url.Values
		}{
			{http.MethodPost, "content/components/pattern/hold", nil},
			{http.MethodPost, "content/components/pattern/release", nil},
			{http.MethodPost, "content/components/pattern/deploy", url.Values{"version": {"1.0"}}},
			{http.MethodGet, "content/components/pattern/hold", nil}, // the confirmation page
			{http.MethodPost, "content/programs/agent-core/approve", url.Values{"domain": {"default"}, "version": {"2.0"}}},
			{http.MethodPost, "content/programs/agent-core/withdraw", url.Values{"domain": {"default"}}},
		} {
			if code := do(viewer, r.method, r.path, r.form); code != http.StatusForbidden {
				t.Errorf("a viewer's %s %s answered %d, want 403", r.method, r.path, code)
			}
		}
		if c := component(t, e, "pattern"); c.Held || c.Deployed != "1.0" {
			t.Fatalf("after a viewer's requests: %+v", c)
		}
		var page api.AuditPage
		if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/audit", url.Values{"actor": {"account:victor"}}, nil, &page); err != nil || len(page.Entries) != 0 {
			t.Fatalf("audit after a viewer's requests: %+v (%v)", page.Entries, err)
		}
		// The admin's confirmation page and change go through.
		if code := do(admin, http.MethodGet, "content/components/pattern/hold", nil); code != http.StatusOK {
			t.Fatalf("an admin's confirmation page answered %d", code)
		}
		if code := do(admin, http.MethodPost, "content/components/pattern/hold", nil); code != http.StatusSeeOther {
			t.Fatalf("an admin's hold answered %d", code)
		}
		if c := component(t, e, "pattern"); !c.Held {
			t.Fatalf("after an admin's hold: %+v", c)
		}
		// A version that is not mirrored: the API's own rule refuses it.
		if code := do(admin, http.MethodPost, "content/components/pattern/deploy", url.Values{"version": {"9.9"}}); code != http.StatusUnprocessableEntity {
			t.Fatalf("deploy of a version not mirrored answered %d, want 422", code)
		}
	})
}

func TestConsoleBrowserProgramApproval(t *testing.T) {
	b := newBrowser(t)
	e := contentEnv(t, sqliteDB)
	e.origin.publish(t, "programs", "agent-core", "2.0")
	e.sync()
	e.account("alice", store.AccountAdmin, testPassword)
	b.signIn(e.url, "alice", testPassword)
	row := `#programs tr[data-program="agent-core"] `
	b.run("approve", chromedp.Navigate(e.url+"content"), chromedp.WaitVisible(chromedp.CSS(row+"button.approve")),
		chromedp.Click(chromedp.CSS(row+"button.approve")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#what"); !strings.Contains(got, "Approve version 2.0 of program agent-core for domain default") {
		t.Fatalf("confirmation says %q", got)
	}
	approvals := func() []api.Approval {
		var as []api.Approval
		e.call(http.MethodGet, "/api/v1/domains/default/programs", nil, &as)
		return as
	}
	if as := approvals(); len(as) != 0 {
		t.Fatalf("approved before the confirmation: %+v", as)
	}
	b.run("confirm the approval", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#approvals button.withdraw")))
	if as := approvals(); len(as) != 1 || as[0].Program != "agent-core" || as[0].Version != "2.0" {
		t.Fatalf("after the approval: %+v", as)
	}
	b.run("withdraw", chromedp.Click(chromedp.CSS("#approvals button.withdraw")), chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#approvals")))
	if as := approvals(); len(as) != 0 {
		t.Fatalf("after the withdrawal: %+v", as)
	}
	b.run("audit", chromedp.Navigate(e.url+"audit?kind=program."), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	kinds := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table .kind")).map(e => e.textContent + " " +
		e.parentElement.querySelector(".actor").textContent)`)
	if strings.Join(kinds, ",") != "program.withdraw account:alice,program.approve account:alice" {
		t.Fatalf("audit of program changes: %v", kinds)
	}
}
