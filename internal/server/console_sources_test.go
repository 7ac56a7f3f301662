package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

// The update source page's browser tests (docs/console.md, Update source
// page), on the kit of console_browser_test.go.

// choose sets a select's value and fires its change event, as a user's
// choice does.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	ok := eval[bool](b, fmt.Sprintf(`(() => { const s = document.querySelector(%q); if (!s) return false; s.value = %q;
		s.dispatchEvent(new Event("change", {bubbles: true})); return s.value === %q; })()`, sel, value, value))
	if !ok {
		b.t.Fatalf("choose %q in %s: no such option", value, sel)
	}
}

// sourceRows are the rows of the page's list: "addresses source".
func (b *browser) sourceRows() []string {
	b.t.Helper()
	return eval[[]string](b, `Array.from(document.querySelectorAll("#source-table tbody tr[data-entry]")).map(tr =>
		tr.querySelector(".addresses").textContent + " " + tr.querySelector(".source").textContent)`)
}

// addEntry fills the entry form and adds the entry: kind is range,
// single, cidr or prefix; addrs the field(s) of that kind; the source an
// agent chosen in the select, or else a URL typed.
func (b *browser) addEntry(kind string, addrs []string, agent, url string) {
	b.t.Helper()
	n := len(b.sourceRows())
	b.choose("#kind", kind)
	fields := map[string][]string{"range": {"#from", "#to"}, "single": {"#single"}, "cidr": {"#cidr"}, "prefix": {"#prefix"}}[kind]
	for i, f := range fields {
		b.run("type "+f, chromedp.WaitVisible(chromedp.CSS(f)), chromedp.SendKeys(chromedp.CSS(f), addrs[i]))
	}
	if agent != "" {
		b.choose("#agent", agent)
	} else {
		b.run("type the URL", chromedp.Click(chromedp.CSS("#source-url")), chromedp.SendKeys(chromedp.CSS("#url"), url))
	}
	b.submit(fmt.Sprintf("add entry %d", n+1), "#add-entry")
	if got := len(b.sourceRows()); got != n+1 {
		b.t.Fatalf("after adding an entry the list has %d entries, want %d", got, n+1)
	}
}

// policyInForce returns the policy in force, through the API.
func policyInForce(e *env) (api.Policy, *policy.Policy) {
	e.t.Helper()
	var pv api.Policy
	e.call(http.MethodGet, "/api/v1/policy", nil, &pv)
	p, err := policy.Parse([]byte(pv.Document))
	if err != nil {
		e.t.Fatalf("policy version %d in force: %v", pv.Version, err)
	}
	return pv, p
}

func entriesOf(p *policy.Policy) []string {
	var out []string
	for _, en := range p.CustomSources {
		out = append(out, en.Addresses+" "+en.Source)
	}
	return out
}

// sourcesEnv is a server with two update agents enrolled (in the
// registry only): ua-1 with an IPv4 address, ua-6 with an IPv6 one, and
// an admin and a viewer account.
func sourcesEnv(t *testing.T) *env {
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	e.account("victor", store.AccountViewer, testPassword)
	for _, ep := range []store.Endpoint{
		{Hostname: "agent-1", Role: store.RoleAgent, AgentID: "ua-1", Addresses: []string{"10.1.0.1"}},
		{Hostname: "agent-6", Role: store.RoleAgent, AgentID: "ua-6", Addresses: []string{"2001:db8:10::1"}},
		{Hostname: "client-1", Role: store.RoleClient, Addresses: []string{"10.1.4.20"}},
	} {
		ep.Domain, ep.CredentialHash = "default", store.HashSecret("cred-"+ep.Hostname)
		if _, err := e.st.CreateEndpoint(context.Background(), ep); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestConsoleBrowserSourcesEdit: an admin adds each kind of entry (an
// IPv4 range, a single address, a CIDR, an IPv6 prefix; an agent chosen
// in the select and a URL typed), sees a warning next to the entry it
// concerns, adds an invalid entry whose problem shows next to it and
// which saves nothing, corrects it, deletes two entries at once, changes
// a setting, reviews the difference, publishes, notifies all, and the
// audit log shows the change by the account.
func TestConsoleBrowserSourcesEdit(t *testing.T) {
	b := newBrowser(t)
	e := sourcesEnv(t)
	before, _ := policyInForce(e)
	b.signIn(e.url, "alice", testPassword)
	b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#entry-form")))
	if got := b.text("#version"); got != fmt.Sprint(before.Version) {
		t.Fatalf("the page says version %s is in force, want %d", got, before.Version)
	}
	if got := eval[string](b, `document.querySelector("nav a.current").textContent`); got != "Update sources" {
		t.Fatalf("navigation: current %q", got)
	}

	b.addEntry("range", []string{"10.1.0.1", "10.1.0.254"}, "ua-1", "")
	b.addEntry("single", []string{"10.2.0.7"}, "", "https://mirror.example/updates/")
	b.addEntry("cidr", []string{"10.3.0.0/16"}, "ua-1", "")
	// Enter in a field of the entry form adds the entry.
	b.choose("#kind", "prefix")
	b.choose("#agent", "ua-6")
	b.submitBy("type the prefix and Enter", chromedp.SendKeys(chromedp.CSS("#prefix"), "2001:db8:10::/48\r"))
	b.addEntry("prefix", []string{"2001:db8:20::/48"}, "ua-1", "")
	want := []string{"10.1.0.1-10.1.0.254 agent:ua-1", "10.2.0.7 https://mirror.example/updates/", "10.3.0.0/16 agent:ua-1",
		"2001:db8:10::/48 agent:ua-6", "2001:db8:20::/48 agent:ua-1"}
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("rows %q, want %q", got, want)
	}
	kinds := eval[[]string](b, `Array.from(document.querySelectorAll("#source-table td.kind")).map(td => td.dataset.kind)`)
	if strings.Join(kinds, ",") != "range,single,cidr,prefix,prefix" {
		t.Fatalf("kinds %v", kinds)
	}
	// ua-1 has no IPv6 address: the lint warning is next to entry 5, and
	// only there.
	if got := b.text(`tr[data-entry="5"] .warning`); !strings.Contains(got, "agent ua-1 (endpoint agent-1) has no IPv6 address") {
		t.Fatalf("entry 5's warning: %q", got)
	}
	if n := eval[int](b, `Array.from(document.querySelectorAll('#source-table tr:not([data-entry="5"]) .warning')).filter(p => p.textContent.includes("IPv6 address")).length`); n != 0 {
		t.Fatalf("%d address family warnings next to other entries", n)
	}

	// An invalid entry: its problem is shown next to it, and saving
	// saves nothing.
	b.addEntry("single", []string{"10.0.0.300"}, "", "https://mirror.example/updates/")
	if got := b.text(`tr[data-entry="6"] .problem`); got != `custom_sources entry 6: addresses: "10.0.0.300" is not an IP address` {
		t.Fatalf("entry 6's problem: %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#source-table .problem").length`); n != 1 {
		t.Fatalf("%d problems shown, want 1", n)
	}
	if got := b.text("#problems-note"); !strings.Contains(got, "cannot be saved until they are corrected") {
		t.Fatalf("the page says %q about the problems", got)
	}
	b.submit("save an invalid draft", "#save")
	if got := b.text("#page-error"); !strings.HasPrefix(got, "Nothing was saved: the draft has 1 problem(s)") {
		t.Fatalf("saving an invalid draft says %q", got)
	}
	if got := b.text(`tr[data-entry="6"] .problem`); !strings.Contains(got, "10.0.0.300") {
		t.Fatalf("after the refused save entry 6 shows %q", got)
	}
	if pv, _ := policyInForce(e); pv.Version != before.Version {
		t.Fatalf("an invalid draft was saved as version %d", pv.Version)
	}
	if got := b.sourceRows(); len(got) != 6 {
		t.Fatalf("the draft lost entries after the refused save: %q", got)
	}

	// Edit the invalid entry: the form holds it; saving it corrects it.
	b.submit("edit entry 6", `tr[data-entry="6"] button.edit`)
	if got := eval[string](b, `document.querySelector("#single").value + " " + document.querySelector("#url").value`); got != "10.0.0.300 https://mirror.example/updates/" {
		t.Fatalf("the entry form holds %q", got)
	}
	b.run("correct entry 6", chromedp.SetValue(chromedp.CSS("#single"), "10.0.0.30"))
	b.submit("save entry 6", "#add-entry")
	if got := b.sourceRows(); len(got) != 6 || got[5] != "10.0.0.30 https://mirror.example/updates/" {
		t.Fatalf("after the edit: %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#source-table .problem").length`); n != 0 {
		t.Fatalf("%d problems after the correction", n)
	}

	// Delete two entries at once.
	b.run("select entries 5 and 6", chromedp.Click(chromedp.CSS(`tr[data-entry="5"] input.sel`)), chromedp.Click(chromedp.CSS(`tr[data-entry="6"] input.sel`)))
	b.submit("delete entries 5 and 6", "#delete-selected")
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(want[:4], ",") {
		t.Fatalf("after deleting two: %q", got)
	}
	if got := b.text("#notice"); got != "2 entries deleted from the draft." {
		t.Fatalf("notice %q", got)
	}

	// Leaving the page with a draft not saved: the browser asks first;
	// staying keeps the draft.
	dctx, stopDialogs := context.WithCancel(b.ctx)
	asked := make(chan string, 1)
	go func() {
		for ev, err := range chromedp.Events(dctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			asked <- string(ev.Type)
			if _, err := chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}); err != nil {
				return
			}
		}
	}()
	b.run("leave for the dashboard", chromedp.Click(chromedp.CSS(`nav a[href="/"]`)))
	select {
	case typ := <-asked:
		if typ != "beforeunload" {
			t.Fatalf("leaving opened a %s dialog", typ)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("leaving a draft not saved did not ask")
	}
	stopDialogs()
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(want[:4], ",") || !strings.HasSuffix(eval[string](b, `location.pathname`), "/sources") {
		t.Fatalf("after staying: %s %q", eval[string](b, `location.pathname`), got)
	}

	// A setting: clients use the list. With JavaScript the draft's policy
	// field follows at once.
	b.choose("#clients_source", "customized")
	b.poll("the draft to hold the setting", `document.querySelector("#policy").value.includes("source: customized")`)
	// Preview and What-if post the draft to the pages that show them: the
	// form's field policy is the whole draft, as the policy check takes it.
	for _, sel := range []string{"#preview", "#whatif"} {
		action := eval[string](b, `(() => { const x = document.querySelector("`+sel+`"); return x.form.method + " " + new URL(x.formAction).pathname; })()`)
		if want := "post /sources/" + sel[1:]; action != want {
			t.Fatalf("%s submits %q, want %q", sel, action, want)
		}
	}
	draft, err := policy.Parse([]byte(eval[string](b, `new FormData(document.querySelector("#draft-form")).get("policy")`)))
	if err != nil || strings.Join(entriesOf(draft), ",") != strings.Join(want[:4], ",") || draft.Clients.Source != policy.Customized {
		t.Fatalf("the policy field the preview gets: %+v (%v)", draft, err)
	}

	// Review: the difference from the version in force; then publish.
	b.submit("review", "#save")
	settings := eval[[]string](b, `Array.from(document.querySelectorAll("#diff-settings tbody tr")).map(tr => tr.textContent)`)
	if strings.Join(settings, ";") != "clients.sourcestandardcustomized" {
		t.Fatalf("settings changed: %q", settings)
	}
	added := eval[[]string](b, `Array.from(document.querySelectorAll("#diff-added li")).map(li => li.textContent)`)
	if len(added) != 4 || added[0] != "entry 1: 10.1.0.1-10.1.0.254 → agent:ua-1" || added[3] != "entry 4: 2001:db8:10::/48 → agent:ua-6" {
		t.Fatalf("entries added: %q", added)
	}
	if n := eval[int](b, `document.querySelectorAll("#diff-removed, #diff-moved, #diff-changed").length`); n != 0 {
		t.Fatal("the review lists entries removed, moved or changed")
	}
	if pv, _ := policyInForce(e); pv.Version != before.Version {
		t.Fatal("the review published")
	}
	// Back to editing keeps the draft; the review again.
	b.submit("back to editing", "#back")
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(want[:4], ",") || eval[string](b, `document.querySelector("#clients_source").value`) != "customized" {
		t.Fatalf("back to editing: %q", got)
	}
	b.submit("review again", "#save")
	b.submit("publish", "#publish")
	pv, p := policyInForce(e)
	if pv.Version != before.Version+1 || pv.Author != "account:alice" {
		t.Fatalf("published version %d by %q, want %d by account:alice", pv.Version, pv.Author, before.Version+1)
	}
	if got := entriesOf(p); strings.Join(got, ",") != strings.Join(want[:4], ",") || p.Clients.Source != policy.Customized {
		t.Fatalf("published %q, clients %s", got, p.Clients.Source)
	}
	if got := b.text("#saved p"); !strings.HasPrefix(got, fmt.Sprintf("Policy version %d is published", pv.Version)) {
		t.Fatalf("after publishing the page says %q", got)
	}
	// Notify all: the API's notify-all.
	b.submit("notify all", "#notify-all")
	id := strings.Fields(b.text("#notified"))[1]
	var n api.Notification
	e.call(http.MethodGet, "/api/v1/notifications/"+id, nil, &n)
	if n.ID != id {
		t.Fatalf("notification %q: %+v", id, n)
	}

	b.run("audit", chromedp.Navigate(e.url+"audit"), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	rows := eval[[]string](b, `Array.from(document.querySelectorAll("#audit-table tbody tr")).slice(0, 2).map(tr =>
		tr.querySelector(".kind").textContent + " " + tr.querySelector(".actor").textContent)`)
	if strings.Join(rows, ",") != "notification.notify-all account:alice,policy.set account:alice" {
		t.Fatalf("audit, newest first: %q", rows)
	}
}

// TestConsoleBrowserSourcesReorderImportExport: entries move up and down
// without a reload, the review lists the move, and the list exported as
// CSV, and the policy exported as YAML, import back to the same draft.
func TestConsoleBrowserSourcesReorderImportExport(t *testing.T) {
	b := newBrowser(t)
	e := sourcesEnv(t)
	pv, _ := policyInForce(e)
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pv.Document + "clients: {source: customized}\ncustom_sources:\n" +
		"  - {addresses: 10.1.0.0/24, source: \"agent:ua-1\"}\n" +
		"  - {addresses: 10.2.0.0/24, source: \"https://m.example/a,b/\"}\n" +
		"  - {addresses: \"2001:db8:10::/48\", source: \"agent:ua-6\"}\n"}, nil)
	b.signIn(e.url, "alice", testPassword)
	b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#source-table")))
	a, m, v6 := "10.1.0.0/24 agent:ua-1", "10.2.0.0/24 https://m.example/a,b/", "2001:db8:10::/48 agent:ua-6"

	// Reorder with JavaScript: the row moves, the page stays (the mark
	// set in it survives), and the draft's policy field follows.
	eval[bool](b, `window.cascadeTestMark = true`)
	b.run("move entry 1 down", chromedp.Click(chromedp.CSS(`tr[data-entry="1"] button.down`)))
	b.poll("the draft's policy to follow the move", `!document.querySelector("#draft").hasAttribute("data-state") &&
		document.querySelector("#policy").value.indexOf("10.2.0.0/24") < document.querySelector("#policy").value.indexOf("10.1.0.0/24")`)
	b.run("move entry 3 up", chromedp.Click(chromedp.CSS(`tr[data-entry="3"] button.up`)))
	b.poll("the draft's policy to follow the move", `!document.querySelector("#draft").hasAttribute("data-state") &&
		document.querySelector("#policy").value.indexOf("2001:db8:10::/48") < document.querySelector("#policy").value.indexOf("10.1.0.0/24")`)
	if !eval[bool](b, `window.cascadeTestMark === true`) {
		t.Fatal("moving an entry reloaded the page")
	}
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join([]string{m, v6, a}, ",") {
		t.Fatalf("after the moves: %q", got)
	}
	if got := eval[[]string](b, `Array.from(document.querySelectorAll("#source-table td.pos")).map(td => td.textContent)`); strings.Join(got, ",") != "1,2,3" {
		t.Fatalf("positions %v", got)
	}
	b.submit("review", "#save")
	if got := eval[[]string](b, `Array.from(document.querySelectorAll("#diff-moved li")).map(li => li.textContent)`); strings.Join(got, ";") != "10.1.0.0/24 → agent:ua-1: from 1 to 3" {
		t.Fatalf("moved: %q", got)
	}
	b.submit("publish", "#publish")
	if _, p := policyInForce(e); strings.Join(entriesOf(p), ",") != strings.Join([]string{m, v6, a}, ",") {
		t.Fatalf("published order %q", entriesOf(p))
	}

	// Export, as the export buttons post the draft.
	export := func(format string) string {
		return eval[string](b, `(() => { const f = new FormData(document.querySelector("#draft-form")); f.set("format", "`+format+`");
			return fetch("/sources/export", {method: "POST", body: f}).then(r => r.ok ? r.text() : "HTTP " + r.status); })()`, chromedp.EvalAwaitPromise)
	}
	csvText := export("csv")
	if want := "addresses,source\n10.2.0.0/24,\"https://m.example/a,b/\"\n2001:db8:10::/48,agent:ua-6\n10.1.0.0/24,agent:ua-1\n"; csvText != want {
		t.Fatalf("CSV export\n%s\nwant\n%s", csvText, want)
	}
	yamlText := export("yaml")
	if inForce := eval[string](b, `fetch("/sources/export?format=yaml").then(r => r.text())`, chromedp.EvalAwaitPromise); inForce != yamlText {
		t.Fatalf("the draft's YAML export differs from the policy in force's:\n%s\n%s", yamlText, inForce)
	}
	if _, err := policy.Parse([]byte(yamlText)); err != nil {
		t.Fatalf("the YAML export does not pass the policy check: %v", err)
	}
	dir := t.TempDir()
	csvFile, yamlFile := filepath.Join(dir, "sources.csv"), filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(csvFile, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yamlFile, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	nothingToSave := func(what string) {
		t.Helper()
		b.submit(what, "#save")
		if got, want := b.text("#notice"), fmt.Sprintf("The draft is the same as version %d in force: there is nothing to save.", pv.Version+2); got != want {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
	}

	// CSV: empty the list, import the file: the same list again.
	b.run("select every entry", chromedp.Click(chromedp.CSS(`tr[data-entry="1"] input.sel`)), chromedp.Click(chromedp.CSS(`tr[data-entry="2"] input.sel`)),
		chromedp.Click(chromedp.CSS(`tr[data-entry="3"] input.sel`)))
	b.submit("delete every entry", "#delete-selected")
	if got := b.sourceRows(); len(got) != 0 {
		t.Fatalf("after deleting every entry: %q", got)
	}
	b.choose("#import-format", "csv")
	b.run("choose the CSV file", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{csvFile}))
	b.submit("import the CSV", "#import")
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join([]string{m, v6, a}, ",") {
		t.Fatalf("imported CSV: %q", got)
	}
	nothingToSave("save after the CSV import")

	// YAML: change a setting and the list, import the file: the policy
	// in force again.
	b.run("change the draft", chromedp.Click(chromedp.CSS("#fallback_programs")))
	b.poll("the setting in the draft", `document.querySelector("#policy").value.includes("programs: false")`)
	b.run("select entry 2", chromedp.Click(chromedp.CSS(`tr[data-entry="2"] input.sel`)))
	b.submit("delete entry 2", "#delete-selected")
	if got := b.sourceRows(); len(got) != 2 {
		t.Fatalf("after deleting entry 2: %q", got)
	}
	b.choose("#import-format", "yaml")
	b.run("choose the YAML file", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{yamlFile}))
	b.submit("import the YAML", "#import")
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join([]string{m, v6, a}, ",") {
		t.Fatalf("imported YAML: %q", got)
	}
	if !eval[bool](b, `document.querySelector("#fallback_programs").checked`) {
		t.Fatal("the YAML import did not restore fallback_to_server.programs")
	}
	nothingToSave("save after the YAML import")
}

// TestConsoleBrowserSourcesDraftKept: a draft not saved survives the end
// of its session: after signing in again the page offers it back, and
// restoring it gives the same draft; discarding forgets it.
func TestConsoleBrowserSourcesDraftKept(t *testing.T) {
	b := newBrowser(t)
	e := sourcesEnv(t)
	b.signIn(e.url, "alice", testPassword)
	b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#entry-form")))
	if !eval[bool](b, `document.querySelector("#restore").hidden`) {
		t.Fatal("a restore is offered with no draft kept")
	}
	b.addEntry("single", []string{"10.9.0.1"}, "", "https://mirror.example/")
	b.choose("#clients_source", "customized")
	b.poll("the draft to hold the setting", `document.querySelector("#policy").value.includes("source: customized")`)
	want := eval[string](b, `document.querySelector("#policy").value`)
	signInAgain := func(name string) {
		t.Helper()
		b.submit("sign out", "#signout")
		b.signIn(e.url, name, testPassword)
		b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#entry-form")))
	}
	signInAgain("alice")
	if got := b.sourceRows(); len(got) != 0 {
		t.Fatalf("the page shows %q, want the version in force", got)
	}
	b.run("the offer", chromedp.WaitVisible(chromedp.CSS("#restore-draft")))
	b.submit("restore", "#restore-draft")
	if got := b.sourceRows(); strings.Join(got, ",") != "10.9.0.1 https://mirror.example/" {
		t.Fatalf("restored %q", got)
	}
	if got := eval[string](b, `document.querySelector("#policy").value`); got != want {
		t.Fatalf("restored draft\n%s\nwant\n%s", got, want)
	}
	if !eval[bool](b, `document.querySelector("#restore").hidden`) {
		t.Fatal("the restored draft is offered again")
	}
	// Another account in the same tab is not offered it.
	e.account("bob", store.AccountAdmin, testPassword)
	signInAgain("bob")
	if !eval[bool](b, `document.querySelector("#restore").hidden`) {
		t.Fatal("another account is offered alice's draft")
	}
	signInAgain("alice")
	b.run("discard", chromedp.WaitVisible(chromedp.CSS("#discard-draft")), chromedp.Click(chromedp.CSS("#discard-draft")),
		chromedp.WaitNotVisible(chromedp.CSS("#restore")))
	b.run("the page again", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#entry-form")))
	if !eval[bool](b, `document.querySelector("#restore").hidden`) {
		t.Fatal("a discarded draft is offered again")
	}
}

// TestConsoleBrowserSourcesViewer: a viewer sees the page read only and
// each of its posts is refused.
func TestConsoleBrowserSourcesViewer(t *testing.T) {
	b := newBrowser(t)
	e := sourcesEnv(t)
	pv, _ := policyInForce(e)
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pv.Document + "custom_sources:\n  - {addresses: 10.1.0.0/24, source: \"agent:ua-1\"}\n"}, nil)
	before, _ := policyInForce(e)
	b.signIn(e.url, "victor", testPassword)
	b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#source-table")))
	if got := b.sourceRows(); strings.Join(got, ",") != "10.1.0.0/24 agent:ua-1" {
		t.Fatalf("a viewer sees %q", got)
	}
	if got := b.text("#clients_source"); got != "standard" {
		t.Fatalf("a viewer sees clients.source %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll("main form, main button, main input, main select").length`); n != 0 {
		t.Fatalf("a viewer is shown %d form controls", n)
	}
	if got := eval[string](b, `fetch("/sources/export?format=csv").then(r => r.text())`, chromedp.EvalAwaitPromise); got != "addresses,source\n10.1.0.0/24,agent:ua-1\n" {
		t.Fatalf("a viewer's export: %q", got)
	}
	doc := strings.ReplaceAll(before.Document, "10.1.0.0/24", "10.9.0.0/24")
	for _, post := range []string{"/sources", "/sources/export", "/sources/notify"} {
		status := eval[int](b, fmt.Sprintf(`(() => { const f = new FormData(); f.set("policy", %q); f.set("base", "%d"); f.set("action", "publish"); f.set("format", "yaml");
			return fetch(%q, {method: "POST", body: f}).then(r => r.status); })()`, doc, before.Version, post), chromedp.EvalAwaitPromise)
		if status != http.StatusForbidden {
			t.Errorf("a viewer's POST %s answered %d, want 403", post, status)
		}
	}
	if pv, _ := policyInForce(e); pv.Version != before.Version {
		t.Fatalf("a viewer's posts changed the policy to version %d", pv.Version)
	}
	var ns []api.Notification
	e.call(http.MethodGet, "/api/v1/notifications", nil, &ns)
	if len(ns) != 0 {
		t.Fatalf("a viewer's post notified: %+v", ns)
	}
}

// TestConsoleBrowserSourcesEndpointFollows: a real client updates from
// the server; the administrator routes its addresses to a real update
// agent on the update source page; the client's next run updates from
// the agent, and its report, on the server, says so.
func TestConsoleBrowserSourcesEndpointFollows(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()

	agentAddr := testkit.FreeAddr(t, "127.0.0.1")
	agentEP := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "agent-1", Addresses: []string{"10.1.0.1"},
		Role: "agent", AgentID: "ua-1", AgentURL: "http://" + agentAddr + "/"}, func(c *endpoint.Config) {
		c.Serve.Listen = agentAddr
		quietSchedule(c)
	})
	runDaemon(t, agentEP)
	if rep := runUpdate(t, agentEP); rep.Result != report.Updated {
		t.Fatalf("agent's first run: %+v", rep.Categories)
	}
	client := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.4.20"}}, quietSchedule)
	if c := runUpdate(t, client).Category(category.Components); c.Result != report.Updated || c.Source != "server" {
		t.Fatalf("client's first run, under the standard source: %+v", c)
	}

	b.signIn(e.url, "alice", testPassword)
	b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#entry-form")))
	b.choose("#clients_source", "customized")
	b.poll("the draft to hold the setting", `document.querySelector("#policy").value.includes("source: customized")`)
	b.addEntry("cidr", []string{"10.1.0.0/16"}, "ua-1", "")
	b.submit("review", "#save")
	b.submit("publish", "#publish")
	if got := b.text("#saved p"); !strings.HasPrefix(got, "Policy version") {
		t.Fatalf("after publishing: %q", got)
	}

	// A new component version: the agent (notified, agents first) takes
	// it from the server; the client's next run takes the new policy with
	// its domain settings, and the component from the agent.
	agentID, clientID := endpointID(e, "agent-1"), endpointID(e, "client-1")
	waitConnected(e, agentID)
	e.origin.publish(t, "components", "pattern", "1.1")
	res := e.sync()
	if res.Notification == "" {
		t.Fatalf("sync: %+v", res)
	}
	if c := waitNotifiedRun(e, agentID, res.Notification).Category(category.Components); c.Result != report.Updated || c.After["pattern"] != "1.1" {
		t.Fatalf("agent's notified run: %+v", c)
	}
	rep := runUpdate(t, client)
	if c := rep.Category(category.Components); c.Result != report.Updated || c.Source != "agent:ua-1" || c.After["pattern"] != "1.1" {
		t.Fatalf("client's run after the change: %+v", c)
	}
	var hist []api.Report
	e.call(http.MethodGet, "/api/v1/endpoints/"+clientID+"/reports", nil, &hist)
	if len(hist) != 2 {
		t.Fatalf("client's reports on the server: %+v", hist)
	}
	var src string
	for _, c := range hist[0].Categories {
		if c.Category == string(category.Components) {
			src = c.Source
		}
	}
	if src != "agent:ua-1" {
		t.Fatalf("the server's last report of the client says components came from %q: %+v", src, hist[0].Categories)
	}
}

// TestConsoleBrowserSourcesLongList: a list of 60 entries shows 50 a
// page; the pager carries the draft; on page 2 a move without a reload
// sends the order of that page's rows and the draft follows; moving the
// first entry of page 2 up posts the form and shows page 1, ending with it.
func TestConsoleBrowserSourcesLongList(t *testing.T) {
	b := newBrowser(t)
	e := sourcesEnv(t)
	pv, _ := policyInForce(e)
	doc := pv.Document + "clients: {source: customized}\ncustom_sources:\n"
	var want []string
	for i := range 60 {
		doc += fmt.Sprintf("  - {addresses: 10.1.%d.0/24, source: \"agent:ua-1\"}\n", i)
		want = append(want, fmt.Sprintf("10.1.%d.0/24 agent:ua-1", i))
	}
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: doc}, nil)
	b.signIn(e.url, "alice", testPassword)
	b.run("update source page", chromedp.Navigate(e.url+"sources"), chromedp.WaitVisible(chromedp.CSS("#source-table")))
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(want[:50], ",") {
		t.Fatalf("page 1 shows %d entries: %q", len(got), got)
	}
	// A setting changed, then page 2: the draft keeps the setting.
	b.run("untick a fallback", chromedp.Click(chromedp.CSS("#fallback_programs")))
	b.poll("the setting in the draft", `!document.querySelector("#draft").hasAttribute("data-state") && document.querySelector("#policy").value.includes("programs: false")`)
	b.submit("page 2", `.pager button[value="page:2"]`)
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(want[50:], ",") {
		t.Fatalf("page 2 shows %q", got)
	}
	if !eval[bool](b, `document.querySelector("#policy").value.includes("programs: false") && !document.querySelector("#fallback_programs").checked`) {
		t.Fatal("page 2 lost the draft's setting")
	}
	eval[bool](b, `window.cascadeTestMark = true`)
	b.run("move entry 52 up", chromedp.Click(chromedp.CSS(`tr[data-entry="52"] button.up`)))
	b.poll("the draft's policy to follow the move", `!document.querySelector("#draft").hasAttribute("data-state") &&
		document.querySelector("#policy").value.indexOf("10.1.51.0/24") < document.querySelector("#policy").value.indexOf("10.1.50.0/24")`)
	if !eval[bool](b, `window.cascadeTestMark === true`) {
		t.Fatal("moving an entry within a page reloaded the page")
	}
	moved := append(append([]string{}, want[:50]...), want[51], want[50])
	moved = append(moved, want[52:]...)
	if got := b.sourceRows(); strings.Join(got, ",") != strings.Join(moved[50:], ",") {
		t.Fatalf("page 2 after the move: %q", got)
	}
	b.submit("move entry 51 up", `tr[data-entry="51"] button.up`)
	if got := b.sourceRows(); len(got) != 50 || got[48] != want[48] || got[49] != want[51] {
		t.Fatalf("after moving entry 51 up page 1 shows %d entries ending %q", len(got), got[len(got)-2:])
	}
	if !eval[bool](b, `document.querySelector("#policy").value.includes("programs: false")`) {
		t.Fatal("the move across pages lost the draft's setting")
	}
}
