package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

// postStatus posts a form from the page's own origin, with the page's
// session, and returns the status (redirects not followed).
func postStatus(b *browser, path, body string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf(`fetch(%q, {method: "POST", redirect: "manual",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %q}).then(r => r.status)`, path, body),
		chromedp.EvalAwaitPromise)
}

// getStatus gets a page with the page's session and returns the status.
func getStatus(b *browser, path string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf(`fetch(%q, {redirect: "manual"}).then(r => r.status)`, path), chromedp.EvalAwaitPromise)
}

// auditActors returns the actors of the audit entries of kind, newest
// first, as the audit page shows them.
func auditActors(b *browser, base, kind string) []string {
	b.t.Helper()
	b.run("audit "+kind, chromedp.Navigate(base+"audit?kind="+kind), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	return eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table tbody .actor")).map(e => e.textContent)`)
}

// createEndpoint registers an endpoint in the store (no machine behind it).
func createEndpoint(t *testing.T, e *env, ep store.Endpoint) store.Endpoint {
	t.Helper()
	if ep.Domain == "" {
		ep.Domain = "default"
	}
	if ep.Role == "" {
		ep.Role = store.RoleClient
	}
	ep.CredentialHash = store.HashSecret("cred-" + ep.Hostname)
	got, err := e.st.CreateEndpoint(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestConsoleBrowserEndpointPage: from the endpoint list to a real,
// connected endpoint's page: its identity, its plan under the policy in
// force explained (the preview's code), its last report with the attempt
// at its unreachable update agent (failure class) and the bytes; "update
// now" reaches the endpoint, which runs and reports, and the audit log
// records it by the account.
func TestConsoleBrowserEndpointPage(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()
	// 10.1.0.0/16 starts with update agent ua-1, which is enrolled but
	// does not answer: the client falls back to the server.
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: agentPolicy(e, false)}, nil)
	createEndpoint(t, e, store.Endpoint{Hostname: "agent-down", Role: store.RoleAgent, AgentID: "ua-1",
		AgentURL: "http://" + testkit.FreeAddr(t, "127.0.0.1") + "/", Addresses: []string{"10.1.0.1"}})
	client := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.4.20", "2001:db8::20"}}, quietSchedule)
	runDaemon(t, client)
	first := runUpdate(t, client)
	id := endpointID(e, "client-1")
	waitConnected(e, id)

	b.signIn(e.url, "alice", testPassword)
	b.run("endpoint list", chromedp.Navigate(e.url+"endpoints?q=client-1"), chromedp.WaitVisible(chromedp.CSS("#endpoint-table")))
	b.run("open the endpoint", chromedp.Click(chromedp.CSS("#endpoint-table td.host a")), chromedp.WaitVisible(chromedp.CSS("#plan")))
	for sel, want := range map[string]string{"#hostname": "client-1", "#id": id, "#addresses": "10.1.4.20, 2001:db8::20",
		"#role": "client", "#agent-id": "—", "#connected": "connected", "#state": "enrolled"} {
		if got := b.text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	// The plan, per category, with the reason for each source: the
	// components come from ua-1 first, then the server.
	type step struct{ Category, Source, Why string }
	steps := eval[[]step](b, `Array.from(document.querySelectorAll("#plan tbody tr")).map(tr => ({
		Category: tr.querySelector(".category").textContent, Source: tr.querySelector(".source").textContent,
		Why: tr.querySelector(".why").textContent}))`)
	var comps []string
	for _, s := range steps {
		if s.Why == "" {
			t.Errorf("plan step %+v has no reason", s)
		}
		if s.Category == "components" {
			comps = append(comps, s.Source)
		}
	}
	if len(comps) < 2 || comps[0] != "agent:ua-1" || comps[1] != "server" {
		t.Fatalf("components plan %v, want agent:ua-1 then server (steps %+v)", comps, steps)
	}
	// The last report: the attempt at ua-1 with its failure class, the
	// source that updated, the bytes.
	c := first.Category("components")
	if len(c.Attempts) == 0 || c.Source != "server" {
		t.Fatalf("the client's first run: %+v", c)
	}
	type catRow struct{ Result, Source, Bytes, AttemptSource, Class string }
	row := eval[catRow](b, `(() => { const tr = document.querySelector('section.report tr[data-category="components"]');
		const a = tr.querySelector(".attempt-source"), k = tr.querySelector(".class");
		return {Result: tr.querySelector(".cat-result").textContent, Source: tr.querySelector(".cat-source").textContent,
			Bytes: tr.querySelector(".bytes").textContent, AttemptSource: a ? a.textContent : "", Class: k ? k.textContent : ""}; })()`)
	want := catRow{Result: string(c.Result), Source: "server", Bytes: fmt.Sprint(c.Bytes), AttemptSource: "agent:ua-1", Class: string(c.Attempts[0].Class)}
	if row != want {
		t.Errorf("the last report's components: %+v, want %+v", row, want)
	}

	// Update now: confirmation, then the notification reaches the
	// connected endpoint, which runs and reports.
	b.run("update now", chromedp.Click(chromedp.CSS("#action-notify")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#what"); !strings.Contains(got, "client-1") || !strings.Contains(got, "(it is)") {
		t.Errorf("confirmation says %q", got)
	}
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#done")))
	n := b.text("#notification")
	if rep := waitNotifiedRun(e, id, n); rep.Trigger != "notify-components" || rep.Announced["pattern"] != "1.0" {
		t.Fatalf("the notified run: trigger %s, announced %v", rep.Trigger, rep.Announced)
	}
	// The report is stored a moment before its delivery is marked done
	// (the same request): wait for the count.
	var nj api.Notification
	testkit.Poll(10*time.Second, func() bool {
		e.call(http.MethodGet, "/api/v1/notifications/"+n, nil, &nj)
		return nj.Deliveries["client"]["done"] == 1
	})
	agents := 0
	for _, n := range nj.Deliveries["agent"] {
		agents += n
	}
	if nj.Deliveries["client"]["done"] != 1 || agents != 0 {
		t.Fatalf("deliveries of the update-now notification: %v", nj.Deliveries)
	}
	if got := auditActors(b, e.url, "notification.notify-endpoint"); strings.Join(got, ",") != "account:alice" {
		t.Fatalf("audit of update now: %v", got)
	}
	// The page shows the new report and, from the heartbeat the run
	// starts with, what the first run installed.
	// The endpoint reports what it installed with the heartbeat its next run starts with.
	testkit.Eventually(t, 30*time.Second, "client-1 to report what it installed", func() bool {
		var ep api.Endpoint
		e.call(http.MethodGet, "/api/v1/endpoints/"+id, nil, &ep)
		return ep.Installed["components"]["pattern"] == "1.0"
	})
	b.run("back to the endpoint", chromedp.Navigate(e.url+"endpoints/"+id), chromedp.WaitVisible(chromedp.CSS("#plan")))
	if got := b.text("#installed"); !strings.Contains(got, "components: pattern 1.0") {
		t.Errorf("installed: %q", got)
	}
	if got := b.text(".report-notification"); got != n {
		t.Fatalf("newest report is for notification %q, want %q", got, n)
	}
}

// TestConsoleBrowserEndpointActions: designate, undesignate and revoke
// through the endpoint's page (each confirmed, each audited); a viewer
// sees no action and is refused (403) on each, even by a direct POST.
func TestConsoleBrowserEndpointActions(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	e.account("victor", store.AccountViewer, testPassword)
	ep := createEndpoint(t, e, store.Endpoint{Hostname: "pc-7", Addresses: []string{"10.7.0.7"}})

	// The viewer first.
	b.signIn(e.url, "victor", testPassword)
	b.run("viewer opens the endpoint", chromedp.Navigate(e.url+"endpoints/"+ep.ID), chromedp.WaitVisible(chromedp.CSS("#plan")))
	if n := eval[int](b, `document.querySelectorAll("#actions, #action-notify, #action-revoke, #designate-form").length`); n != 0 {
		t.Fatal("a viewer is shown the endpoint's actions")
	}
	for _, a := range []string{"notify", "designate", "undesignate", "revoke"} {
		if got := getStatus(b, "/endpoints/"+ep.ID+"/"+a+"?agent_id=ua-7"); got != http.StatusForbidden {
			t.Errorf("viewer's GET of the %s confirmation: %d, want 403", a, got)
		}
		if got := postStatus(b, "/endpoints/"+ep.ID+"/"+a, "agent_id=ua-7"); got != http.StatusForbidden {
			t.Errorf("viewer's POST of %s: %d, want 403", a, got)
		}
	}
	if got, err := e.st.Endpoint(context.Background(), ep.ID); err != nil || got.Role != store.RoleClient || !got.Revoked.IsZero() {
		t.Fatalf("after the viewer's POSTs: %+v %v", got, err)
	}
	if ns, err := e.st.ListNotifications(context.Background(), 0); err != nil || len(ns) != 0 {
		t.Fatalf("after the viewer's POSTs, notifications %+v %v", ns, err)
	}
	b.run("viewer signs out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin")))

	b.signIn(e.url, "alice", testPassword)
	b.run("open", chromedp.Navigate(e.url+"endpoints/"+ep.ID), chromedp.WaitVisible(chromedp.CSS("#designate-form")))
	b.run("designate", chromedp.SendKeys(chromedp.CSS("#designate-agent-id"), "ua-7"),
		chromedp.Click(chromedp.CSS("#action-designate")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#what"); !strings.Contains(got, "ua-7") {
		t.Errorf("designate confirmation: %q", got)
	}
	// Cancel changes nothing.
	b.run("cancel", chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS("#designate-form")))
	if got := b.text("#role"); got != "client" {
		t.Fatalf("after cancel: role %q", got)
	}
	b.run("designate again", chromedp.SendKeys(chromedp.CSS("#designate-agent-id"), "ua-7"),
		chromedp.Click(chromedp.CSS("#action-designate")), chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if role, agent := b.text("#role"), b.text("#agent-id"); role != "agent" || agent != "ua-7" {
		t.Fatalf("designated: role %q agent %q", role, agent)
	}
	// Its plan is now an update agent's.
	if got := eval[string](b, `(document.querySelector("#plan-summary") || document.querySelector("#plan-error")).textContent`); !strings.Contains(got, "role agent") {
		t.Fatalf("plan of the designated agent: %q", got)
	}
	b.run("undesignate", chromedp.Click(chromedp.CSS("#action-undesignate")), chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if role := b.text("#role"); role != "client" {
		t.Fatalf("undesignated: role %q", role)
	}
	// An invalid agent id is refused before any change.
	b.run("bad agent id", chromedp.Navigate(e.url+"endpoints/"+ep.ID+"/designate?agent_id=no%20spaces"), chromedp.WaitVisible(chromedp.CSS("#error")))
	b.run("revoke", chromedp.Navigate(e.url+"endpoints/"+ep.ID), chromedp.WaitVisible(chromedp.CSS("#action-revoke")),
		chromedp.Click(chromedp.CSS("#action-revoke")), chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if got := b.text("#state"); !strings.HasPrefix(got, "revoked") {
		t.Fatalf("revoked: state %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#actions").length`); n != 0 {
		t.Fatal("a revoked endpoint still shows actions")
	}
	if got, err := e.st.Endpoint(context.Background(), ep.ID); err != nil || got.Revoked.IsZero() {
		t.Fatalf("store after revoke: %+v %v", got, err)
	}
	if got := auditActors(b, e.url, "endpoint."); strings.Join(got, ",") != "account:alice,account:alice,account:alice" {
		t.Fatalf("endpoint changes in the audit log: %v", got)
	}
	kinds := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table tbody .kind")).map(e => e.textContent)`)
	if strings.Join(kinds, ",") != "endpoint.revoke,endpoint.role,endpoint.role" {
		t.Fatalf("endpoint changes in the audit log: %v", kinds)
	}
}

// TestConsoleBrowserAddressFilter: the endpoint list filtered by an
// address range, a CIDR, a single address and an IPv6 prefix, in SQL.
func TestConsoleBrowserAddressFilter(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	for host, addrs := range map[string][]string{
		"a": {"10.1.0.1"}, "b": {"10.1.0.200", "2001:db8:1::1"}, "c": {"10.2.0.5"}, "d": {"192.168.1.1"}, "e": {"2001:db8:2::1"},
	} {
		createEndpoint(t, e, store.Endpoint{Hostname: "host-" + host, Addresses: addrs})
	}
	b.signIn(e.url, "alice", testPassword)
	hosts := func() string {
		return strings.Join(eval[[]string](b, `Array.from(document.querySelectorAll("#endpoint-table td.host")).map(e => e.textContent)`), ",")
	}
	// Through the form.
	b.run("list", chromedp.Navigate(e.url+"endpoints"), chromedp.WaitVisible(chromedp.CSS("#addr")),
		chromedp.SendKeys(chromedp.CSS("#addr"), "10.1.0.0/24"), chromedp.Click(chromedp.CSS("#apply")),
		chromedp.WaitVisible(chromedp.CSS(`#addr[value="10.1.0.0/24"]`)))
	if got := hosts(); got != "host-a,host-b" {
		t.Fatalf("10.1.0.0/24: %s", got)
	}
	for addr, want := range map[string]string{
		"10.1.0.2-10.2.0.5": "host-b,host-c",               // a range, both ends inclusive
		"10.1.0.1":          "host-a",                      // one address
		"10.0.0.0/8":        "host-a,host-b,host-c",        // a CIDR
		"2001:db8::/32":     "host-b,host-e",               // an IPv6 prefix
		"2001:db8:2::/48":   "host-e",                      // a narrower one
		"172.16.0.0/12":     "",                            // none
		"0.0.0.0/0":         "host-a,host-b,host-c,host-d", // every IPv4 address, no IPv6 one
	} {
		b.run("filter "+addr, chromedp.Navigate(e.url+"endpoints?addr="+addr), chromedp.WaitVisible(chromedp.CSS("#endpoint-table")))
		if got := hosts(); got != want {
			t.Errorf("addr=%s: %q, want %q", addr, got, want)
		}
		if got := b.text("#count"); !strings.HasPrefix(got, fmt.Sprint(strings.Count(want, "host-"), " endpoints")) {
			t.Errorf("addr=%s: count %q", addr, got)
		}
	}
	// Paging links keep the filter.
	b.run("filtered", chromedp.Navigate(e.url+"endpoints?addr=10.0.0.0/8"), chromedp.WaitVisible(chromedp.CSS("#sort-hostname")))
	b.submit("sorted", "#sort-hostname")
	if got := hosts(); got != "host-c,host-b,host-a" {
		t.Fatalf("sorted descending within 10.0.0.0/8: %q", got)
	}
	// The policy's parser's messages.
	b.run("bad filter", chromedp.Navigate(e.url+"endpoints?addr=10.3.0.5/16"), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := b.text("#error"); !strings.Contains(got, "did you mean 10.3.0.0/16") {
		t.Fatalf("bad filter: %q", got)
	}
}

// TestConsoleBrowserAccounts: an admin disables an account (its open
// session is refused at once) and enables it, changes a role; cannot
// disable itself; every account changes its own password (the current
// one required); a viewer is refused the accounts page and its changes,
// even by a direct POST; each change is in the audit log.
func TestConsoleBrowserAccounts(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	e.account("victor", store.AccountViewer, testPassword)

	// victor's session, held by another client.
	vc := consoleClient()
	res := signInHTTP(t, vc, e.url, "victor", testPassword)
	var cookie *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == console.CookieName {
			cookie = k
		}
	}
	if cookie == nil {
		t.Fatal("victor got no session cookie")
	}
	victorGet := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, e.url+strings.TrimPrefix(path, "/"), nil)
		req.AddCookie(cookie)
		res, err := vc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := victorGet("/endpoints"); got != http.StatusOK {
		t.Fatalf("victor's session: %d", got)
	}

	// A viewer is refused the page and every change.
	b.signIn(e.url, "victor", testPassword)
	if n := eval[int](b, `document.querySelectorAll("#nav-accounts").length`); n != 0 {
		t.Fatal("a viewer is shown the accounts page's link")
	}
	if got := getStatus(b, "/accounts"); got != http.StatusForbidden {
		t.Errorf("viewer's GET /accounts: %d", got)
	}
	for _, p := range []struct{ path, body string }{{"/accounts/alice/disable", ""}, {"/accounts/victor/role", "role=admin"},
		{"/accounts/alice/enable", ""}} {
		if got := postStatus(b, p.path, p.body); got != http.StatusForbidden {
			t.Errorf("viewer's POST %s: %d, want 403", p.path, got)
		}
	}
	b.run("viewer signs out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin")))

	b.signIn(e.url, "alice", testPassword)
	b.run("accounts", chromedp.Click(chromedp.CSS("#nav-accounts")), chromedp.WaitVisible(chromedp.CSS("#accounts")))
	row := func(name string) string { return `#accounts tr[data-account="` + name + `"] ` }
	if got := b.text(row("victor") + ".last-signin"); got == "—" {
		t.Error("victor signed in, but the page says never")
	}
	if n := eval[int](b, `document.querySelectorAll('`+row("alice")+`button').length`); n != 0 {
		t.Error("alice is offered to change her own account")
	}
	// Disabling herself by a direct POST is refused too.
	if got := postStatus(b, "/accounts/alice/disable", ""); got != http.StatusForbidden {
		t.Errorf("alice disabling herself: %d, want 403", got)
	}
	// Disable victor (the page asks to confirm; the test accepts).
	eval[bool](b, `(window.confirm = () => true, true)`)
	b.run("disable victor", chromedp.Click(chromedp.CSS(row("victor")+"button.disable")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if got := b.text(row("victor") + ".disabled"); got == "no" {
		t.Fatal("victor still enabled")
	}
	// victor's open session is refused at once.
	if got := victorGet("/endpoints"); got != http.StatusSeeOther {
		t.Fatalf("victor's session after disabling: %d, want a redirect to the sign-in", got)
	}
	if res := signInHTTP(t, consoleClient(), e.url, "victor", testPassword); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a disabled account's sign-in: %d", res.StatusCode)
	}
	eval[bool](b, `(window.confirm = () => true, true)`)
	b.submit("enable victor", row("victor")+"button.enable")
	// Make victor an admin.
	eval[bool](b, `(() => { document.querySelector('`+row("victor")+`select.role-select').value = "admin"; window.confirm = () => true; return true; })()`)
	b.submit("role", row("victor")+"button.set-role")
	if got := b.text(row("victor") + ".role"); got != "admin" {
		t.Fatalf("victor's role: %q", got)
	}

	// Password: a wrong current one is refused, then changed.
	b.run("password page", chromedp.Click(chromedp.CSS("#nav-password")), chromedp.WaitVisible(chromedp.CSS("#password-form")),
		chromedp.SendKeys(chromedp.CSS("#old"), "not my password"), chromedp.SendKeys(chromedp.CSS("#new"), "a new long password"),
		chromedp.SendKeys(chromedp.CSS("#again"), "a new long password"), chromedp.Click(chromedp.CSS("#change")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := b.text("#error"); !strings.Contains(got, "current password is wrong") {
		t.Fatalf("wrong current password: %q", got)
	}
	b.run("change password", chromedp.SendKeys(chromedp.CSS("#old"), testPassword), chromedp.SendKeys(chromedp.CSS("#new"), "a new long password"),
		chromedp.SendKeys(chromedp.CSS("#again"), "a new long password"), chromedp.Click(chromedp.CSS("#change")),
		chromedp.WaitVisible(chromedp.CSS("#done")))
	b.run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	b.signIn(e.url, "alice", testPassword)
	if got := b.text("#error"); !strings.Contains(got, "wrong") {
		t.Fatalf("the old password still signs in: %q", got)
	}
	b.signIn(e.url, "alice", "a new long password")
	if got := b.text("#whoami"); got != "alice (admin)" {
		t.Fatalf("with the new password: %q", got)
	}
	b.run("audit", chromedp.Navigate(e.url+"audit?kind=account."), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	kinds := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table tbody .kind")).map(e => e.textContent)`)
	if strings.Join(kinds, ",") != "account.password,account.role,account.enable,account.disable" {
		t.Fatalf("account changes in the audit log: %v", kinds)
	}
}
