package server_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

var tagRE = regexp.MustCompile(`<[^>]+>`)

// tableRows returns the rows of the table with id, each as its cells'
// text joined by "|".
func tableRows(page, id string) []string {
	i := strings.Index(page, `<table id="`+id+`"`)
	if i < 0 {
		return nil
	}
	table := page[i:]
	table = table[:strings.Index(table, "</table>")]
	body := table[strings.Index(table, "<tbody>"):]
	var out []string
	for _, tr := range strings.Split(body, "<tr>")[1:] {
		var cells []string
		for _, td := range strings.Split(tr, "<td")[1:] {
			td = td[strings.Index(td, ">")+1:]
			cells = append(cells, strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(td, ""))))
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out
}

// TestConsoleDashboardContentAgentsSyncWarnings: the dashboard shows per
// component the version deployed, the newest mirrored and the hold; the
// update agents with how many endpoints start their list with each; the
// last sync and its result; and, when the origin could not be read at
// the last sync, a warning.
func TestConsoleDashboardContentAgentsSyncWarnings(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.account("victor", store.AccountViewer, testPassword)
		e.origin.publish(t, "components", "pattern", "2.0")
		if res := e.sync(); res.Deployed["pattern"] != "2.0" {
			t.Fatalf("sync: %+v", res)
		}
		e.call(http.MethodPost, "/api/v1/content/components/pattern/hold", nil, nil)
		e.origin.publish(t, "components", "pattern", "2.1")
		e.sync()
		agent, _ := e.enroll("agent-1", "10.1.0.1")
		agentURL := "http://10.1.0.1:8080/"
		e.call(http.MethodPut, "/api/v1/endpoints/"+agent.EndpointID+"/role", api.SetRole{Role: "agent", AgentID: "ua-1", AgentURL: &agentURL}, nil)
		e.enroll("c1", "10.1.0.10")
		e.enroll("c2", "10.1.0.11")
		e.enroll("c3", "10.2.0.5")
		head := fmt.Sprintf("origin: %s\nserver: %s\nclients: {source: customized}\nagents: {source: customized}\ncustom_sources:\n", e.origin.url, e.url)
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: head + "  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n"}, nil)
		get := consoleSession(t, e, "victor")

		var page string
		testkit.Eventually(t, 30*time.Second, "the dashboard shows the agent's two clients", func() bool {
			code, p := get(http.MethodGet, "", nil)
			if code != http.StatusOK {
				t.Fatalf("dashboard: %d %.300s", code, p)
			}
			page = p
			rows := tableRows(page, "agents")
			return len(rows) == 1 && rows[0] == "ua-1|agent-1|"+agentURL+"|2|yes"
		})
		if rows := tableRows(page, "components"); len(rows) != 1 || rows[0] != "pattern|2.0|2.1|held" {
			t.Fatalf("components on the dashboard: %q", rows)
		}
		if !strings.Contains(page, `<span id="unassigned">2</span>`) { // the agent itself and c3
			t.Fatalf("unassigned endpoints: %s", tableRows(page, "agents"))
		}
		if !regexp.MustCompile(`<p id="last-sync">[^<]*: succeeded`).MatchString(page) || strings.Contains(page, `id="warnings"`) {
			t.Fatalf("a good sync: %q", page[strings.Index(page, "Last sync"):])
		}

		// The origin cannot be read: the last sync failed, and a warning says so.
		dir := e.origin.repo.PublishedDir()
		if err := os.Rename(dir, dir+".away"); err != nil {
			t.Fatal(err)
		}
		e.admin.Call(context.Background(), http.MethodPost, "/api/v1/content/sync", nil, nil, nil) // fails
		_, page = get(http.MethodGet, "", nil)
		if !regexp.MustCompile(`<p id="last-sync">[^<]*: <span class="error">failed: `).MatchString(page) {
			t.Fatalf("a failed sync: %q", page[strings.Index(page, "Last sync"):])
		}
		i := strings.Index(page, `id="warnings"`)
		if i < 0 {
			t.Fatal("no warnings after a failed sync")
		}
		warn := page[i:]
		warn = warn[:strings.Index(warn, "</section>")]
		if !strings.Contains(warn, "the origin could not be reached or read at the last sync: ") {
			t.Fatalf("warnings after a failed sync: %q", warn)
		}
	})
}

// TestConsoleEnrollmentUsesAndRevoke: the enrollment page shows a token's
// uses; revoking it from the page revokes it (it enrolls no more), the
// page says so and the audit log records it by the account.
func TestConsoleEnrollmentUsesAndRevoke(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.account("alice", store.AccountAdmin, testPassword)
	uses := 3
	tok := e.newToken(api.TokenRequest{Domain: "default", Uses: &uses})
	enroll := func(host string) error {
		return e.client("").Call(context.Background(), http.MethodPost, api.PathEnroll, nil,
			api.EnrollRequest{Token: tok.Secret, Hostname: host, Addresses: []string{"10.0.0.1"}}, &api.EnrollResponse{})
	}
	if err := enroll("pc-1"); err != nil {
		t.Fatal(err)
	}
	admin := consoleSession(t, e, "alice")
	row := func() string {
		t.Helper()
		code, page := admin(http.MethodGet, "enrollment", nil)
		if code != http.StatusOK {
			t.Fatalf("enrollment page: %d", code)
		}
		for _, r := range tableRows(page, "tokens") {
			if strings.HasPrefix(r, tok.ID+"|") {
				return r
			}
		}
		t.Fatalf("token %s not on the page: %q", tok.ID, tableRows(page, "tokens"))
		return ""
	}
	if r := row(); !strings.HasPrefix(r, tok.ID+"|default|1 of 3|no|") || !strings.Contains(r, "|valid|") {
		t.Fatalf("token row %q", r)
	}
	code, page := admin(http.MethodPost, "enrollment/tokens/"+tok.ID+"/revoke", nil)
	if code != http.StatusSeeOther && code != http.StatusOK {
		t.Fatalf("revoke: %d %.300s", code, page)
	}
	if r := row(); !strings.Contains(r, "|revoked ") {
		t.Fatalf("after the revocation the row is %q", r)
	}
	if err := enroll("pc-2"); statusCode(err) == 0 {
		t.Fatal("a revoked token still enrolls")
	}
	es, err := e.st.ListAudit(context.Background(), store.AuditFilter{Kind: "enrollment-token.revoke", Limit: 10})
	if err != nil || len(es) != 1 || es[0].Actor != "account:alice" || es[0].Target != tok.ID {
		t.Fatalf("audit of the revocation: %+v (%v)", es, err)
	}
}
