package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/server/console"
	"github.com/cascade-update/cascade/internal/store"
)

// policyToolsEnv is a server with a deployed component, an update agent
// ua-1 (10.1.0.1) and clients c1, c2 (10.1.0.10-11) and c3 (10.2.0.5),
// under a policy whose one entry sends 10.1.0.0/16 to ua-1. It returns
// the head of that policy (everything but custom_sources' entries).
func policyToolsEnv(t *testing.T) (*env, string) {
	e := newEnv(t, sqliteDB)
	e.origin.publish(t, "components", "pattern", "2.0")
	if res := e.sync(); res.Deployed["pattern"] != "2.0" {
		t.Fatalf("sync: %+v", res)
	}
	agent, _ := e.enroll("agent-1", "10.1.0.1")
	agentURL := "http://10.1.0.1:8080/"
	e.call(http.MethodPut, "/api/v1/endpoints/"+agent.EndpointID+"/role", api.SetRole{Role: "agent", AgentID: "ua-1", AgentURL: &agentURL}, nil)
	e.enroll("c1", "10.1.0.10")
	e.enroll("c2", "10.1.0.11")
	e.enroll("c3", "10.2.0.5")
	head := fmt.Sprintf("origin: %s\nserver: %s\nclients: {source: customized}\nagents: {source: customized}\ncustom_sources:\n", e.origin.url, e.url)
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: head + "  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n"}, nil)
	return e, head
}

// submitShows submits the form with sel (submit) and checks that the
// page the server answers shows wait.
func (b *browser) submitShows(sel, wait string) {
	b.t.Helper()
	b.submit("submit with "+sel, sel)
	if !eval[bool](b, fmt.Sprintf(`document.querySelector(%q) !== null`, wait)) {
		b.t.Fatalf("after %s the page shows no %s: %q", sel, wait, eval[string](b, `document.querySelector("main").innerText`))
	}
}

// auditCount is how many audit entries the store holds.
func auditCount(t *testing.T, e *env) int {
	t.Helper()
	es, err := e.st.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestConsoleBrowserPreview(t *testing.T) {
	b := newBrowser(t)
	e, head := policyToolsEnv(t)
	// A viewer may preview: it changes nothing.
	e.account("victor", store.AccountViewer, testPassword)
	var inForce api.Policy
	e.call(http.MethodGet, "/api/v1/policy", nil, &inForce)
	audits := auditCount(t, e)

	b.signIn(e.url, "victor", testPassword)
	b.run("preview page", chromedp.Navigate(e.url+"sources/preview"), chromedp.WaitVisible(chromedp.CSS("#policy")))
	if got := eval[string](b, `document.querySelector("#policy").value`); got != inForce.Document {
		t.Fatalf("the draft starts as %q, want the policy in force %q", got, inForce.Document)
	}
	if got := b.text("#draft-from"); !strings.Contains(got, fmt.Sprint("version ", inForce.Version)) {
		t.Fatalf("draft origin: %q", got)
	}
	// The edited list sends 10.0.0.0/8 to a mirror; an enrolled endpoint by
	// hostname and an address.
	edited := head + "  - {addresses: 10.0.0.0/8, source: \"https://mirror.example/\"}\n"
	b.run("edit", chromedp.SetValue(chromedp.CSS("#policy"), edited),
		chromedp.SendKeys(chromedp.CSS("#endpoints"), "C2"), chromedp.SendKeys(chromedp.CSS("#addresses"), "10.1.0.99"))
	b.submitShows("#run-preview", "#preview-result")

	type row struct {
		Cat, Pos, Current, CurrentWhy, Edited, EditedWhy string
		Differs                                          bool
	}
	rows := func(i int) []row {
		return eval[[]row](b, fmt.Sprintf(`Array.from(document.querySelectorAll(".preview-target")[%d].querySelectorAll("table.plans tbody tr[data-pos]")).map(tr => ({
			Cat: tr.dataset.category, Pos: tr.dataset.pos, Current: tr.querySelector(".current").textContent,
			CurrentWhy: tr.querySelectorAll(".why")[0].textContent, Edited: tr.querySelector(".edited").textContent,
			EditedWhy: tr.querySelectorAll(".why")[1].textContent, Differs: tr.classList.contains("differs")}))`, i))
	}
	names := eval[[]string](b, `Array.from(document.querySelectorAll(".preview-target .target-name")).map(e => e.textContent)`)
	if len(names) != 2 || !strings.HasPrefix(names[0], "c2 (") || !strings.HasSuffix(names[0], "; 10.1.0.11)") || names[1] != "10.1.0.99" {
		t.Fatalf("previewed %q", names)
	}
	// c2: the agent, then the server, under the policy in force; the
	// mirror, then the server, under the draft. Position 1 differs.
	got := rows(0)
	wantComp := []row{
		{"components", "1", "agent:ua-1", "entry 1 (10.1.0.0/16) covers 10.1.0.11", "https://mirror.example/", "entry 1 (10.0.0.0/8) covers 10.1.0.11", true},
	}
	if len(got) < 2 || got[0] != wantComp[0] || got[1].Cat != "components" || got[1].Current != "server" || got[1].Edited != "server" || got[1].Differs {
		t.Fatalf("c2's components: %+v", got)
	}
	if changed := eval[string](b, `document.querySelectorAll(".preview-target .changed")[0].textContent`); !strings.Contains(changed, "components: position 1") {
		t.Fatalf("c2's summary: %q", changed)
	}
	// The page shows what the API computes (one engine).
	var pr api.PreviewResult
	if err := e.admin.Call(context.Background(), http.MethodPost, api.PathPolicyPreview, nil, api.PreviewRequest{Document: edited,
		Targets: []api.PreviewTarget{{Endpoint: "c2"}, {Addresses: []string{"10.1.0.99"}}}}, &pr); err != nil {
		t.Fatal(err)
	}
	for i, p := range pr.Previews {
		var want []row
		for _, c := range category.All {
			cur, ed := p.Current.Categories[c], p.Edited.Categories[c]
			for j := range max(len(cur), len(ed)) {
				r := row{Cat: string(c), Pos: fmt.Sprint(j + 1), Current: "—", Edited: "—"}
				if j < len(cur) {
					r.Current, r.CurrentWhy = cur[j].Source, cur[j].Why
				}
				if j < len(ed) {
					r.Edited, r.EditedWhy = ed[j].Source, ed[j].Why
				}
				r.Differs = r.Current != r.Edited
				want = append(want, r)
			}
		}
		if got := rows(i); !reflect.DeepEqual(got, want) {
			t.Errorf("target %d shows %+v\nthe API computes %+v", i, got, want)
		}
	}
	// An unknown endpoint is named in the message; nothing is lost from the form.
	b.run("unknown endpoint", chromedp.SetValue(chromedp.CSS("#endpoints"), "nobody"))
	b.submitShows("#run-preview", "#error")
	if msg := b.text("#error"); !strings.Contains(msg, `Endpoint "nobody": no enrolled endpoint has the id or hostname "nobody"`) {
		t.Fatalf("unknown endpoint: %q", msg)
	}
	if got := eval[string](b, `document.querySelector("#policy").value`); got != edited {
		t.Fatalf("after an error the draft is %q", got)
	}

	// A set of addresses: a range across both lists' boundaries and a
	// single address, in groups with one plan each. The edited list
	// sends 10.0.0.0/8 to the mirror: 10.0.0.0-10.0.255.255 and
	// 10.2.0.0-10.255.255.255 change from the server, 10.1.0.0/16 from
	// ua-1; 192.0.2.7 stays at the server.
	eval[bool](b, `(() => { document.querySelector("#endpoints").value = ""; document.querySelector("#addresses").value = ""; return true })()`)
	b.run("a set of addresses", chromedp.SetValue(chromedp.CSS("#ranges"), "9.255.255.255 - 10.255.255.255\n192.0.2.7"))
	b.submitShows("#run-preview", ".preview-set")
	type group struct {
		Addresses string
		Endpoints string
		Changed   bool
		First     [2]string // components' first source in force and in the draft
	}
	groups := func() []group {
		return eval[[]group](b, `Array.from(document.querySelectorAll(".preview-set tbody.group")).map(g => ({
			Addresses: g.dataset.addresses, Endpoints: g.querySelector(".group-endpoints").textContent,
			Changed: g.classList.contains("changed-group"),
			First: [g.querySelector('tr[data-category="components"][data-pos="1"] .current').textContent,
				g.querySelector('tr[data-category="components"][data-pos="1"] .edited').textContent]}))`)
	}
	wantGroups := []group{
		{"9.255.255.255", "0 enrolled endpoints", false, [2]string{"server", "server"}},
		{"10.0.0.0-10.0.255.255", "0 enrolled endpoints", true, [2]string{"server", "https://mirror.example/"}},
		{"10.1.0.0-10.1.255.255", "3 enrolled endpoints", true, [2]string{"agent:ua-1", "https://mirror.example/"}},
		{"10.2.0.0-10.255.255.255", "1 enrolled endpoint", true, [2]string{"server", "https://mirror.example/"}},
		{"192.0.2.7", "0 enrolled endpoints", false, [2]string{"server", "server"}},
	}
	if got := groups(); !reflect.DeepEqual(got, wantGroups) {
		t.Fatalf("groups shown %+v\nwant %+v", got, wantGroups)
	}
	if n := b.text("#changed-groups"); n != "3" || eval[bool](b, `document.querySelector("#next-groups") !== null`) {
		t.Fatalf("changed groups %q, or a next button at the end of the set", n)
	}
	// The endpoints of a group are a click away in the endpoint list.
	if href := eval[string](b, `document.querySelectorAll(".preview-set .group-endpoints")[2].getAttribute("href")`); href != "/endpoints?addr=10.1.0.0-10.1.255.255" {
		t.Fatalf("group endpoints link %q", href)
	}
	// The reasons name the group's first address.
	if why := eval[string](b, `document.querySelectorAll(".preview-set tbody.group")[2].querySelector('tr[data-pos="1"] .why').textContent`); why != "entry 1 (10.1.0.0/16) covers 10.1.0.0" {
		t.Fatalf("reason in a group: %q", why)
	}
	// A bad range is named; the form keeps what was typed.
	b.run("bad range", chromedp.SetValue(chromedp.CSS("#ranges"), "10.3.0.5/16"))
	b.submitShows("#run-preview", "#error")
	if msg := b.text("#error"); !strings.Contains(msg, "Sets of addresses:") || !strings.Contains(msg, "did you mean 10.3.0.0/16") {
		t.Fatalf("bad range: %q", msg)
	}
	if got := eval[string](b, `document.querySelector("#ranges").value`); got != "10.3.0.5/16" {
		t.Fatalf("after an error the ranges are %q", got)
	}

	// Nothing changed and nothing was recorded.
	var after api.Policy
	e.call(http.MethodGet, "/api/v1/policy", nil, &after)
	if after.Version != inForce.Version || auditCount(t, e) != audits {
		t.Fatalf("a preview changed the policy (version %d, was %d) or the audit log (%d entries, was %d)",
			after.Version, inForce.Version, auditCount(t, e), audits)
	}
}

func TestConsoleBrowserPreviewMalformedPolicy(t *testing.T) {
	b := newBrowser(t)
	e, head := policyToolsEnv(t)
	e.account("alice", store.AccountAdmin, testPassword)
	b.signIn(e.url, "alice", testPassword)

	// The update source page posts its draft as the field "policy" only:
	// the preview opens with it and asks for the targets, without error.
	draft := head + "  - {addresses: 10.3.0.0/16, source: \"agent:ua-1\"}\n"
	post := func(path, doc string) {
		t.Helper()
		b.run("open "+path, chromedp.Navigate(e.url+"sources/preview"), chromedp.WaitVisible(chromedp.CSS("#policy")))
		js := fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "post"; f.action = %q;
			const t = document.createElement("textarea"); t.name = "policy"; t.value = %q; f.append(t);
			document.body.append(f); f.submit(); })()`, path, doc)
		if _, err := chromedp.RunResponse(b.ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
			t.Fatalf("post to %s: %v", path, err)
		}
		b.run("posted to "+path, chromedp.WaitVisible(chromedp.CSS(`#policy`)))
	}
	for _, path := range []string{"/sources/preview", "/sources/whatif"} {
		post(path, draft)
		if got := eval[string](b, `document.querySelector("#policy").value`); got != draft {
			t.Fatalf("%s opened with the draft %q", path, got)
		}
		if n := eval[int](b, `document.querySelectorAll("#error, #policy-problems, #draft-from").length`); n != 0 {
			t.Fatalf("%s: a posted draft shows an error or claims to be the policy in force", path)
		}
	}

	// A malformed policy: every problem, not a 500, on both pages.
	bad := head + "  - {addresses: 10.9.0.0-10.8.0.0, source: \"agent:ua-1\"}\n  - {addresses: 10.1.0.0/16, source: \"ftp://x\"}\n"
	for _, path := range []string{"/sources/preview", "/sources/whatif"} {
		post(path, bad)
		probs := eval[[]string](b, `Array.from(document.querySelectorAll("#policy-problems li")).map(e => e.textContent)`)
		if len(probs) != 2 || !strings.Contains(probs[0], "custom_sources entry 1") || !strings.Contains(probs[1], "custom_sources entry 2") {
			t.Fatalf("%s: problems of the malformed policy: %q", path, probs)
		}
		if got := eval[string](b, `document.querySelector("#policy").value`); got != bad {
			t.Fatalf("%s: the malformed draft was not kept: %q", path, got)
		}
	}
	post("/sources/whatif", "origin: [unclosed\n")
	if got := b.text("#policy-problems"); !strings.Contains(got, "not a valid policy") || len(got) < 40 {
		t.Fatalf("YAML syntax error: %q", got)
	}
	// The status of a malformed draft is 400, not 500.
	status := eval[int](b, `fetch("/sources/preview", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "endpoints=c1&policy=origin%3A+%5B"}).then(r => r.status)`, chromedp.EvalAwaitPromise)
	if status != http.StatusBadRequest {
		t.Fatalf("a malformed policy answered %d, want 400", status)
	}
}

func TestConsoleBrowserWhatIf(t *testing.T) {
	b := newBrowser(t)
	e, _ := policyToolsEnv(t)
	e.account("victor", store.AccountViewer, testPassword)
	audits := auditCount(t, e)
	b.signIn(e.url, "victor", testPassword)
	b.run("what-if page", chromedp.Navigate(e.url+"sources/whatif"), chromedp.WaitVisible(chromedp.CSS("#choices")))
	choices := eval[[]string](b, `Array.from(document.querySelectorAll("#choices input[name=down]")).map(e => e.value)`)
	if strings.Join(choices, " ") != "server origin agent:ua-1" {
		t.Fatalf("sources to mark down: %q", choices)
	}

	type counts struct{ Server, Origin, Quit, FellBack string }
	fallbacks := func(cat string) counts {
		return eval[counts](b, `(() => { const tr = document.querySelector('#fallbacks tr[data-category="`+cat+`"]');
			return {Server: tr.querySelector(".server").textContent, Origin: tr.querySelector(".origin").textContent,
			Quit: tr.querySelector(".quit").textContent, FellBack: tr.querySelector(".fell-back").textContent}; })()`)
	}
	// Nothing down: c1 and c2 end at ua-1, the agent and c3 at the server.
	b.submitShows("#run-whatif", "#whatif-result")
	if got := fallbacks("components"); got != (counts{"2", "0", "0", "0"}) {
		t.Fatalf("nothing down, components: %+v", got)
	}
	if got := b.text(`#end-at tr[data-category="components"][data-source="agent:ua-1"] .endpoints`); got != "2" {
		t.Fatalf("nothing down, ua-1 serves %s endpoints", got)
	}
	// ua-1 down: c1 and c2 fall back to the server.
	b.run("mark ua-1 down", chromedp.Click(chromedp.CSS(`#choices input[value="agent:ua-1"]`)))
	b.submitShows("#run-whatif", "#whatif-result")
	if got := b.text("#down"); got != "agent:ua-1" {
		t.Fatalf("down: %q", got)
	}
	if !eval[bool](b, `document.querySelector('#choices input[value="agent:ua-1"]').checked`) {
		t.Fatal("the check box of ua-1 is no longer checked")
	}
	for _, cat := range []string{"components", "domain_settings", "programs"} {
		if got := fallbacks(cat); got != (counts{"4", "0", "0", "2"}) {
			t.Fatalf("ua-1 down, %s: %+v", cat, got)
		}
	}
	// The bytes are the API's, for the version deployed now: every
	// endpoint needs pattern 2.0 from the server.
	var wr api.WhatIfResult
	e.call(http.MethodPost, api.PathPolicyWhatIf, api.WhatIfRequest{Down: []string{"agent:ua-1"}}, &wr)
	size := int64(len(strings.Repeat("pattern 2.0\n", 100)))
	if wr.Bytes.Server != 4*size {
		t.Fatalf("API: server bytes %d, want %d", wr.Bytes.Server, 4*size)
	}
	if got := b.text("#bytes-server"); got != fmt.Sprintf("%d,%03d bytes", 4*size/1000, 4*size%1000) {
		t.Fatalf("server bytes shown %q, want %d", got, 4*size)
	}
	if got := b.text("#bytes-wan"); got != "0 bytes" {
		t.Fatalf("WAN bytes shown %q", got)
	}
	if got := b.text("#deployed"); !strings.Contains(got, "pattern 2.0") {
		t.Fatalf("deployed: %q", got)
	}
	groups := eval[[]string](b, `Array.from(document.querySelectorAll("#groups tbody tr")).map(tr => tr.querySelector(".role").textContent + " " +
		tr.querySelector(".endpoints").textContent + " " + Array.from(tr.querySelectorAll(".ends")).map(e => e.textContent).join(","))`)
	if strings.Join(groups, "; ") != "client 3 server,server,server; agent 1 server,server,server" {
		t.Fatalf("groups: %q", groups)
	}
	if auditCount(t, e) != audits {
		t.Fatal("a what-if was recorded in the audit log")
	}
}

// TestConsolePolicyToolsHTTP checks what a browser would not let a test
// do: the preview and what-if posts refuse cross-site requests and
// requests without a session, answer a malformed or oversized draft with
// its message, and compute on both databases.
func TestConsolePolicyToolsHTTP(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.account("victor", store.AccountViewer, testPassword)
		c := consoleClient()
		var ck *http.Cookie
		for _, k := range signInHTTP(t, c, e.url, "victor", testPassword).Cookies() {
			if k.Name == console.CookieName {
				ck = k
			}
		}
		if ck == nil {
			t.Fatal("no session cookie")
		}
		var inForce api.Policy
		e.call(http.MethodGet, "/api/v1/policy", nil, &inForce)
		post := func(path string, form url.Values, cookie bool, hdr map[string]string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPost, e.url+strings.TrimPrefix(path, "/"), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if cookie {
				req.AddCookie(ck)
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(body)
		}
		same := map[string]string{"Sec-Fetch-Site": "same-origin"}
		preview := url.Values{"policy": {inForce.Document}, "addresses": {"192.0.2.7"}, "endpoints": {""}}
		whatIf := url.Values{"policy": {inForce.Document}, "down": {"server"}, "run": {""}}
		for path, form := range map[string]url.Values{"/sources/preview": preview, "/sources/whatif": whatIf} {
			if code, body := post(path, form, true, same); code != http.StatusOK || !strings.Contains(body, `id="`+strings.TrimPrefix(path, "/sources/")+`-result"`) {
				t.Fatalf("%s: %d %s", path, code, body)
			}
			if code, _ := post(path, form, true, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
				t.Fatalf("%s cross-site: %d, want 403", path, code)
			}
			if code, _ := post(path, form, false, same); code != http.StatusUnauthorized {
				t.Fatalf("%s without a session: %d, want 401", path, code)
			}
			bad := url.Values{"policy": {"origin: [\n"}, "endpoints": {"x"}, "run": {""}}
			if code, body := post(path, bad, true, same); code != http.StatusBadRequest || !strings.Contains(body, `id="policy-problems"`) {
				t.Fatalf("%s malformed: %d %s", path, code, body)
			}
			big := url.Values{"policy": {strings.Repeat("#", policy.MaxSize+100<<10)}}
			if code, body := post(path, big, true, same); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large") {
				t.Fatalf("%s oversized: %d %.300s", path, code, body)
			}
		}
		// A range is not an endpoint's address: said, not computed.
		r := url.Values{"policy": {inForce.Document}, "addresses": {"10.0.0.0/24"}, "endpoints": {""}}
		if code, body := post("/sources/preview", r, true, same); code != http.StatusBadRequest || !strings.Contains(body, "is a range") {
			t.Fatalf("a range: %d %s", code, body)
		}
	})
}
