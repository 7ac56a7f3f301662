package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	chromium "github.com/cascade-update/cascade/internal/testkit/browser"
)

// browser is a headless Chromium driven by chromedp, with a fresh
// profile; on test failure it saves a screenshot of the page.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shotCtx context.Context // the browser's context without the test's deadline
}

// newBrowser starts Chromium, or skips the test when it is absent (fails
// when CASCADE_REQUIRE_BROWSER=1).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := chromium.Path()
	if err != nil {
		if os.Getenv("CASCADE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("CASCADE_REQUIRE_BROWSER=1 but %v", err)
		}
		t.Skipf("browser tests need Chromium: %v", err)
	}
	ctx, stop, err := chromium.Start(chromium.Options{Path: path, UserDataDir: t.TempDir(), Width: 1280, Height: 900})
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	b := &browser{t: t, ctx: tctx, shotCtx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot()
		}
		cancelT()
		stop()
	})
	return b
}

// screenshot saves the page to $CASCADE_TEST_ARTIFACTS, or the test's
// artifact directory (go test -artifacts), and says where.
func (b *browser) screenshot() {
	dir := os.Getenv("CASCADE_TEST_ARTIFACTS")
	if dir == "" {
		dir = b.t.ArtifactDir()
	}
	ctx, cancel := context.WithTimeout(b.shotCtx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot failed: %v", err)
		return
	}
	name := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())+".png")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		err = os.WriteFile(name, png, 0o644)
		if err == nil {
			b.t.Logf("screenshot of the page at failure: %s", name)
			return
		}
	}
	b.t.Logf("could not save the screenshot in %s", dir)
}

// run runs chromedp actions that must succeed.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// signIn signs in through the sign-in form.
func (b *browser) signIn(base, name, password string) {
	b.t.Helper()
	b.run("sign in as "+name, chromium.SignIn(base, name, password))
}

// account makes a console account.
func (e *env) account(name string, role store.AccountRole, password string) {
	e.t.Helper()
	h, err := console.HashPassword(password)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.CreateAccount(context.Background(), store.Account{Name: name, Role: role, PasswordHash: h}); err != nil {
		e.t.Fatal(err)
	}
}

const testPassword = "correct horse battery"

func TestConsoleBrowserSignIn(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)

	// A wrong password and an unknown account get the same message.
	b.signIn(e.url, "alice", "wrong password!!")
	wrongPassword := b.text("#error")
	b.signIn(e.url, "nobody", testPassword)
	unknown := b.text("#error")
	if wrongPassword != unknown || !strings.Contains(wrongPassword, "account name or the password is wrong") {
		t.Fatalf("refused sign-ins say %q and %q; want the same neutral message", wrongPassword, unknown)
	}
	// Not signed in: pages lead to the sign-in form.
	b.run("open the dashboard signed out", chromedp.Navigate(e.url+"endpoints"), chromedp.WaitVisible(chromedp.CSS("#signin")))
	url := eval[string](b, `location.href`)
	if !strings.HasSuffix(url, "/signin") {
		t.Fatalf("signed out, /endpoints went to %s", url)
	}

	b.signIn(e.url, "alice", testPassword)
	if got := b.text("#whoami"); got != "alice (admin)" {
		t.Fatalf("signed in as %q, want alice (admin)", got)
	}
	// The session cookie's attributes.
	cookie := eval[string](b, `document.cookie`)
	if strings.Contains(cookie, console.CookieName) {
		t.Fatalf("the session cookie is readable from JavaScript: %q", cookie)
	}

	// Sign out: the session ends on the server too.
	b.run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	b.run("back to the dashboard", chromedp.Navigate(e.url), chromedp.WaitVisible(chromedp.CSS("#signin")))
}

func TestConsoleBrowserViewerCannotChange(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("victor", store.AccountViewer, testPassword)
	b.signIn(e.url, "victor", testPassword)
	if got := b.text("#whoami"); got != "victor (viewer)" {
		t.Fatalf("signed in as %q", got)
	}
	b.run("enrollment page", chromedp.Navigate(e.url+"enrollment"), chromedp.WaitVisible(chromedp.CSS("#tokens")))
	n := eval[int](b, `document.querySelectorAll("#create-token").length`)
	if n != 0 {
		t.Fatal("a viewer is shown the create-token form")
	}
	// Posting the form directly, from the console's own origin, with the
	// viewer's session.
	status := eval[int](b, `fetch("/enrollment/tokens", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "domain=default&uses=1"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise)
	if status != http.StatusForbidden {
		t.Fatalf("a viewer's direct POST answered %d, want 403", status)
	}
	toks, err := e.st.ListEnrollmentTokens(context.Background(), "")
	if err != nil || len(toks) != 0 {
		t.Fatalf("after a viewer's POST the store has tokens %v (%v)", toks, err)
	}
}

func TestConsoleBrowserCrossSitePostRefused(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	b.signIn(e.url, "alice", testPassword)

	// Another site (another origin) with a form that posts to the console.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><form id="f" method="post" action="%senrollment/tokens">
<input name="domain" value="default"><input name="uses" value="0"><button id="go">go</button></form>`, e.url)
	})}
	go evil.Serve(ln)
	t.Cleanup(func() { evil.Close() })
	b.run("cross-site post", chromedp.Navigate("http://"+ln.Addr().String()+"/"),
		chromedp.WaitVisible(chromedp.CSS("#go")), chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := b.text("#error"); !strings.Contains(got, "another site") && !strings.Contains(got, "session has ended") {
		t.Fatalf("cross-site POST answered %q", got)
	}
	toks, err := e.st.ListEnrollmentTokens(context.Background(), "")
	if err != nil || len(toks) != 0 {
		t.Fatalf("a cross-site POST made tokens %v (%v)", toks, err)
	}
	// The same form posted from the console itself works.
	b.run("create a token", chromedp.Navigate(e.url+"enrollment"), chromedp.WaitVisible(chromedp.CSS("#create")),
		chromedp.Click(chromedp.CSS("#agents")), chromedp.Click(chromedp.CSS("#create")), chromedp.WaitVisible(chromedp.CSS("#secret")))
	if s := b.text("#secret"); !strings.HasPrefix(s, "cascade_enroll_") {
		t.Fatalf("created token secret %q", s)
	}
	toks, err = e.st.ListEnrollmentTokens(context.Background(), "")
	if err != nil || len(toks) != 1 || !toks[0].Agents {
		t.Fatalf("after the console's POST the store has %+v (%v), want one agent token", toks, err)
	}
	// And the audit log shows it, by the account.
	b.run("audit", chromedp.Navigate(e.url+"audit?kind=enrollment-token."), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	if got := b.text("#audit-table tbody tr .actor"); got != "account:alice" {
		t.Fatalf("audit actor %q, want account:alice", got)
	}
}

func TestConsoleBrowserAuditShowsAPIChange(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	tok := e.newToken(api.TokenRequest{Domain: "default"})
	e.call(http.MethodDelete, "/api/v1/tokens/"+tok.ID, nil, nil)

	b.signIn(e.url, "alice", testPassword)
	b.run("audit filtered by actor", chromedp.Navigate(e.url+"audit?actor=token:test+admin"), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	kinds := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table .kind")).map(e => e.textContent)`)
	// Newest first; the server's own start-up changes are not API changes.
	want := []string{"enrollment-token.revoke", "enrollment-token.create"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("audit kinds by token:test admin: %v, want %v", kinds, want)
	}
	b.run("filtered by another actor", chromedp.Navigate(e.url+"audit?actor=account:alice"), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	if got := b.text("#audit-table tbody"); !strings.Contains(got, "No change recorded that matches") {
		t.Fatalf("audit of account:alice shows %q", got)
	}
}

func TestConsoleBrowserDashboardAndEndpoints(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	ctx := context.Background()
	for i := range 57 {
		role, agent := store.RoleClient, ""
		if i%10 == 0 {
			role, agent = store.RoleAgent, fmt.Sprintf("ua-%d", i)
		}
		_, err := e.st.CreateEndpoint(ctx, store.Endpoint{Hostname: fmt.Sprintf("host-%02d", i), Domain: "default", Role: role, AgentID: agent,
			Addresses: []string{fmt.Sprintf("10.1.0.%d", i+1)}, CredentialHash: store.HashSecret(fmt.Sprint("cred", i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	// One endpoint ran successfully, one failed.
	eps, err := e.st.ListEndpoints(ctx, store.EndpointFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byHost := map[string]string{}
	for _, ep := range eps {
		byHost[ep.Hostname] = ep.ID
	}
	now := time.Now()
	if err := e.st.AddReports(ctx, []store.Report{
		{EndpointID: byHost["host-03"], Trigger: "scheduled", Started: now, Finished: now, Result: "success"},
		{EndpointID: byHost["host-04"], Trigger: "scheduled", Started: now, Finished: now, Result: "failed"},
	}); err != nil {
		t.Fatal(err)
	}
	var rep api.AgentReport
	e.call(http.MethodGet, "/api/v1/agents/report", nil, &rep)
	total, noReport := rep.Unassigned.Endpoints, rep.Unassigned.States[api.StateNoReport]
	for _, g := range rep.Agents {
		total += g.Endpoints
		noReport += g.States[api.StateNoReport]
	}

	b.signIn(e.url, "alice", testPassword)
	b.run("dashboard", chromedp.Navigate(e.url), chromedp.WaitReady(chromedp.CSS("#total")))
	if noReport != 55 {
		t.Errorf("agent report: %d endpoints without a report, want 55", noReport)
	}
	for sel, want := range map[string]int{"#total": 57, "#no-report": noReport, "#up-to-date": 1, "#failing": 1, "#behind": 0, "#not-seen": 0} {
		if got := b.text(sel); got != fmt.Sprint(want) {
			t.Errorf("dashboard %s = %s, want %d", sel, got, want)
		}
	}
	if total != 57 {
		t.Errorf("agent report counts %d endpoints", total)
	}

	// Paging: 57 endpoints, 50 a page, by hostname.
	hosts := func() []string {
		return eval[[]string](b, `Array.from(document.querySelectorAll("#endpoint-table td.host")).map(e => e.textContent)`)
	}
	b.run("endpoints", chromedp.Navigate(e.url+"endpoints"), chromedp.WaitVisible(chromedp.CSS("#endpoint-table")))
	if hs := hosts(); len(hs) != 50 || hs[0] != "host-00" || hs[49] != "host-49" {
		t.Fatalf("first page: %d rows %v", len(hs), hs)
	}
	b.run("next page", chromedp.Click(chromedp.CSS("#next")), chromedp.WaitVisible(chromedp.CSS("#prev")))
	if hs := hosts(); len(hs) != 7 || hs[0] != "host-50" {
		t.Fatalf("second page: %v", hs)
	}
	// Sorting descending by hostname.
	b.run("sort", chromedp.Navigate(e.url+"endpoints"), chromedp.WaitVisible(chromedp.CSS("#sort-hostname")),
		chromedp.Click(chromedp.CSS("#sort-hostname")), chromedp.WaitVisible(chromedp.CSS("#next")))
	if hs := hosts(); hs[0] != "host-56" {
		t.Fatalf("descending by hostname starts %v", hs[:3])
	}
	// Role filter (the select applies itself) and text.
	b.run("role filter", chromedp.Navigate(e.url+"endpoints"), chromedp.WaitVisible(chromedp.CSS("#role")))
	// Choosing in the select applies the filter (console.js).
	// Wait for the page it loads to load whole: a form found while it is
	// still loading can be replaced under the next action.
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#role"); s.value = "agent";
		s.dispatchEvent(new Event("change", {bubbles: true})); })()`)); err != nil {
		t.Fatalf("choose the role filter: %v", err)
	}
	b.run("role filtered", chromedp.WaitReady(chromedp.CSS(`#role option[value="agent"][selected]`)))
	if hs := hosts(); strings.Join(hs, ",") != "host-00,host-10,host-20,host-30,host-40,host-50" {
		t.Fatalf("agents: %v", hs)
	}
	b.run("text filter", chromedp.SendKeys(chromedp.CSS("#q"), "10.1.0.2"), chromedp.Click(chromedp.CSS("#apply")),
		chromedp.WaitVisible(chromedp.CSS(`#q[value="10.1.0.2"]`)))
	if hs := hosts(); strings.Join(hs, ",") != "host-20" { // 10.1.0.21; host-01 (10.1.0.2) is a client
		t.Fatalf("agents at 10.1.0.2*: %v", hs)
	}
	// The agent filter: endpoints whose list starts with ua-10 under the
	// policy in force (10.1.0.1-10.1.0.5: host-00..04), as the agent
	// report (GET /api/v1/agents/report) counts them.
	var pol api.Policy
	e.call(http.MethodGet, "/api/v1/policy", nil, &pol)
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pol.Document +
		"clients: {source: customized}\ncustom_sources:\n  - {addresses: 10.1.0.1-10.1.0.5, source: \"agent:ua-10\"}\n"}, nil)
	e.call(http.MethodGet, "/api/v1/agents/report", nil, &rep)
	for _, g := range rep.Agents {
		if g.AgentID == "ua-10" && g.Endpoints != 5 {
			t.Fatalf("the agent report counts %d endpoints for ua-10, want 5", g.Endpoints)
		}
	}
	b.run("agent filter", chromedp.Navigate(e.url+"endpoints?agent=ua-10"), chromedp.WaitReady(chromedp.CSS("#endpoint-table")))
	if hs := hosts(); strings.Join(hs, ",") != "host-00,host-01,host-02,host-03,host-04" {
		t.Fatalf("endpoints starting with ua-10: %v", hs)
	}
	b.run("agent and state", chromedp.Navigate(e.url+"endpoints?agent=ua-10&state=failing"), chromedp.WaitReady(chromedp.CSS("#endpoint-table")))
	if hs := hosts(); strings.Join(hs, ",") != "host-04" {
		t.Fatalf("failing endpoints starting with ua-10: %v", hs)
	}
	b.run("state filter", chromedp.Navigate(e.url+"endpoints?state=up_to_date"), chromedp.WaitReady(chromedp.CSS("#endpoint-table")))
	if hs := hosts(); strings.Join(hs, ",") != "host-03" {
		t.Fatalf("up to date: %v", hs)
	}
	b.run("failing", chromedp.Navigate(e.url+"endpoints?state=failing"), chromedp.WaitReady(chromedp.CSS("#endpoint-table")))
	if hs := hosts(); strings.Join(hs, ",") != "host-04" {
		t.Fatalf("failing: %v", hs)
	}
}

// poll waits until a JavaScript expression is true in the page.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// submit clicks sel, which posts a form, and waits for the page the
// server answers (the mark set in the page before the click is gone).
func (b *browser) submit(what, sel string) {
	b.t.Helper()
	b.submitBy(what, chromedp.Click(chromedp.CSS(sel)))
}

// submitBy is submit with the action that posts the form.
func (b *browser) submitBy(what string, act chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	eval[bool](b, `window.cascadeOldPage = true`)
	b.run(what, act)
	testkit.Eventually(b.t, 30*time.Second, what+": the page answered", func() bool {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.cascadeOldPage === undefined && document.readyState === "complete"`))
		return err == nil && ok
	})
}
