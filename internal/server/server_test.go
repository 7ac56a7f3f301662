package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/sitedoc"
	"github.com/cascade-update/cascade/internal/trust"
)

func TestServer(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		t.Run("AdminAuth", func(t *testing.T) { testAdminAuth(t, newEnv(t, db)) })
		t.Run("Policy", func(t *testing.T) { testPolicy(t, newEnv(t, db)) })
		t.Run("Enrollment", func(t *testing.T) { testEnrollment(t, newEnv(t, db)) })
		t.Run("Content", func(t *testing.T) { testContent(t, newEnv(t, db)) })
		t.Run("Domains", func(t *testing.T) { testDomains(t, newEnv(t, db)) })
		t.Run("AgentReport", func(t *testing.T) { testAgentReport(t, newEnv(t, db)) })
	})
}

func testAdminAuth(t *testing.T, e *env) {
	ctx := context.Background()
	for _, c := range []*api.Client{e.client(""), e.client("cascade_admin_wrong")} {
		if err := c.Call(ctx, http.MethodGet, "/api/v1/policy", nil, nil, nil); statusCode(err) != http.StatusUnauthorized {
			t.Errorf("unauthenticated admin call: %v, want 401", err)
		}
	}
	var tok api.AdminToken
	e.call(http.MethodPost, "/api/v1/admin-tokens", api.AdminToken{Name: "second"}, &tok)
	second := e.client(tok.Secret)
	if err := second.Call(ctx, http.MethodGet, "/api/v1/domains", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.call(http.MethodDelete, "/api/v1/admin-tokens/"+tok.ID, nil, nil)
	if err := second.Call(ctx, http.MethodGet, "/api/v1/domains", nil, nil, nil); statusCode(err) != http.StatusUnauthorized {
		t.Errorf("revoked admin token: %v, want 401", err)
	}
	// An endpoint credential is not an admin token, and the reverse.
	_, ep := e.enroll("host-1")
	if err := ep.Call(ctx, http.MethodGet, "/api/v1/policy", nil, nil, nil); statusCode(err) != http.StatusUnauthorized {
		t.Errorf("endpoint credential on the admin API: %v, want 401", err)
	}
	if err := e.admin.Call(ctx, http.MethodGet, api.PathAgentDir, nil, nil, nil); statusCode(err) != http.StatusUnauthorized {
		t.Errorf("admin token on the endpoint API: %v, want 401", err)
	}
}

// policyWith returns a policy with n distinct custom sources.
func policyWith(origin, srv string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin: %s\nserver: %s\nclients: {source: customized}\ncustom_sources:\n", origin, srv)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {addresses: 10.%d.%d.0/24, source: \"agent:ua-%d\"}\n", i/250, i%250, i)
	}
	return b.String()
}

func testPolicy(t *testing.T, e *env) {
	ctx := context.Background()
	var cur api.Policy
	e.call(http.MethodGet, "/api/v1/policy", nil, &cur)
	if cur.Version != 1 || !strings.Contains(cur.Document, "origin: "+e.origin.url) {
		t.Fatalf("first policy: %+v", cur)
	}
	// 1025 entries: refused with explain's message, nothing stored.
	big := policyWith(e.origin.url, e.url, 1025)
	_, perr := policy.Parse([]byte(big))
	if perr == nil {
		t.Fatal("policy.Parse accepted 1025 entries")
	}
	err := e.admin.Call(ctx, http.MethodPut, "/api/v1/policy", nil, api.PutPolicy{Document: big}, nil)
	if statusCode(err) != http.StatusUnprocessableEntity || err.Error() != perr.Error() ||
		!strings.HasPrefix(err.Error(), "custom_sources entry 1025: the list holds at most 1024 entries") {
		t.Fatalf("1025 entries: %v, want 422 %q", err, perr)
	}
	// 1024 entries are fine; the conditional write checks the version.
	ok := policyWith(e.origin.url, e.url, 1024)
	stale := int64(7)
	if err := e.admin.Call(ctx, http.MethodPut, "/api/v1/policy", nil, api.PutPolicy{Document: ok, IfVersion: &stale}, nil); statusCode(err) != http.StatusConflict {
		t.Fatalf("stale if_version: %v, want 409", err)
	}
	one := int64(1)
	var res api.PolicyResult
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: ok, IfVersion: &one}, &res)
	if res.Policy.Version != 2 || res.Published.Items[sitedoc.PolicyItem] == "" || res.Published.Timestamp == 0 {
		t.Fatalf("put policy: %+v", res)
	}
	if got := siteDocs(t, e)[sitedoc.PolicyItem]; got != ok {
		t.Fatalf("published policy differs from the stored one")
	}
	var hist []api.Policy
	e.call(http.MethodGet, "/api/v1/policy/history", nil, &hist)
	if len(hist) != 2 || hist[0].Version != 2 || hist[0].Author != "test admin" {
		t.Fatalf("history: %+v", hist)
	}
}

// siteDocs reads the server's site repository as an endpoint would:
// verified from the site root, over the pinned TLS connection.
func siteDocs(t *testing.T, e *env) map[string]string {
	t.Helper()
	ctx := context.Background()
	root := e.siteRoot()
	st, err := trust.Init(filepath.Join(t.TempDir(), "site"), root, trust.Options{Kind: "site", Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := fetch.New(fetch.Options{TLSConfig: api.PinnedTLSConfig(e.fp)})
	v, err := st.Probe(ctx, trust.Source{Name: "server", Base: e.url}, f)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := v.Index(ctx, "domain_settings")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, it := range idx.Items {
		if len(it.Files) != 1 {
			t.Fatalf("%s: files %v", name, it.Files)
		}
		tf, err := v.Target(ctx, it.Files[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.Fetch(ctx, it.Files[0], tf)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

// siteRoot returns the site repository's initial root.
func (e *env) siteRoot() []byte {
	res, _ := e.enroll("root-reader")
	return res.SiteRoot
}

func testEnrollment(t *testing.T, e *env) {
	ctx := context.Background()
	anon := e.client("")
	// Unknown token, then a single-use token used twice.
	err := anon.Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: "cascade_enroll_nope", Hostname: "h"}, nil)
	if statusCode(err) != http.StatusForbidden {
		t.Fatalf("unknown token: %v, want 403", err)
	}
	tok := e.token("default", 1)
	var res api.EnrollResponse
	if err := anon.Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: tok, Hostname: "client-1",
		Addresses: []string{"10.1.2.3"}}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Domain != "default" || res.Role != "client" || !strings.HasPrefix(res.Credential, "cascade_ep_") ||
		len(res.VendorRoot) == 0 || len(res.SiteRoot) == 0 || !strings.Contains(res.Policy, "origin:") {
		t.Fatalf("enroll answer: %+v", res)
	}
	err = anon.Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: tok, Hostname: "client-2"}, nil)
	if statusCode(err) != http.StatusForbidden || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("second use of a single-use token: %v", err)
	}
	ep := e.client(res.Credential)
	var st api.StatusResponse
	if err := ep.Call(ctx, http.MethodPost, api.PathStatus, nil, api.StatusRequest{Hostname: "client-1b",
		Addresses: []string{"10.1.2.4"}, Installed: map[string]map[string]string{"components": {"pattern": "1.0"}}}, &st); err != nil {
		t.Fatal(err)
	}
	var got api.Endpoint
	e.call(http.MethodGet, "/api/v1/endpoints/"+res.EndpointID, nil, &got)
	if got.Hostname != "client-1b" || got.Addresses[0] != "10.1.2.4" || got.Installed["components"]["pattern"] != "1.0" {
		t.Fatalf("endpoint after status: %+v", got)
	}
	// Unauthenticated and revoked endpoints are refused.
	for _, c := range []*api.Client{anon, e.client("cascade_ep_forged")} {
		for _, path := range []string{api.PathAgentDir, api.PathEvents} {
			if err := c.Call(ctx, http.MethodGet, path, nil, nil, nil); statusCode(err) != http.StatusUnauthorized {
				t.Errorf("unauthenticated endpoint call %s: %v, want 401", path, err)
			}
		}
	}
	e.call(http.MethodPost, "/api/v1/endpoints/"+res.EndpointID+"/revoke", nil, &got)
	if got.Revoked == nil {
		t.Fatalf("revoke: %+v", got)
	}
	for _, path := range []string{api.PathStatus, api.PathReports} {
		err := ep.Call(ctx, http.MethodPost, path, nil, api.StatusRequest{}, nil)
		if statusCode(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("revoked endpoint %s: %v, want 401", path, err)
		}
	}
	if err := ep.Call(ctx, http.MethodGet, api.PathEvents, nil, nil, nil); statusCode(err) != http.StatusUnauthorized {
		t.Errorf("revoked endpoint's event stream: %v, want 401", err)
	}
}

func testContent(t *testing.T, e *env) {
	e.origin.publish(t, "components", "pattern", "1.0")
	e.origin.publish(t, "components", "engine", "7.1")
	res := e.sync()
	if res.Error != "" || res.Deployed["pattern"] != "1.0" || res.Deployed["engine"] != "7.1" || res.Fetched == 0 {
		t.Fatalf("first sync: %+v", res)
	}
	if again := e.sync(); !again.UpToDate || len(again.Deployed) != 0 || again.Fetched != 0 {
		t.Fatalf("second sync: %+v", again)
	}
	var c api.Component
	e.call(http.MethodPost, "/api/v1/content/components/pattern/hold", nil, &c)
	if !c.Held || c.Deployed != "1.0" {
		t.Fatalf("hold: %+v", c)
	}
	e.origin.publish(t, "components", "pattern", "1.1")
	if res := e.sync(); res.Deployed["pattern"] != "" {
		t.Fatalf("sync of a held component deployed it: %+v", res)
	}
	var dep sitedoc.Deployment
	if err := json.Unmarshal([]byte(siteDocs(t, e)[sitedoc.DeploymentItem]), &dep); err != nil || dep.Components["pattern"] != "1.0" {
		t.Fatalf("deployment caps: %+v %v", dep, err)
	}
	// The new version is downloaded (served under /vendor/) but not deployed.
	var comps []api.Component
	e.call(http.MethodGet, "/api/v1/content/components", nil, &comps)
	if len(comps) != 2 || comps[1].Name != "pattern" || comps[1].Latest != "1.1" || comps[1].Deployed != "1.0" {
		t.Fatalf("components: %+v", comps)
	}
	err := e.admin.Call(context.Background(), http.MethodPost, "/api/v1/content/components/pattern/deploy", nil, api.Deploy{Version: "9.9"}, nil)
	if statusCode(err) != http.StatusUnprocessableEntity {
		t.Fatalf("deploy of a version not mirrored: %v", err)
	}
	e.call(http.MethodPost, "/api/v1/content/components/pattern/release", nil, &c)
	if c.Held || c.Deployed != "1.1" {
		t.Fatalf("release: %+v", c)
	}
	dep = sitedoc.Deployment{}
	if err := json.Unmarshal([]byte(siteDocs(t, e)[sitedoc.DeploymentItem]), &dep); err != nil || len(dep.Components) != 0 {
		t.Fatalf("deployment caps after release: %+v %v", dep, err)
	}
	e.call(http.MethodPost, "/api/v1/content/components/pattern/deploy", api.Deploy{Version: "1.0"}, &c)
	if err := json.Unmarshal([]byte(siteDocs(t, e)[sitedoc.DeploymentItem]), &dep); err != nil || dep.Components["pattern"] != "1.0" {
		t.Fatalf("deployment caps after a rollback: %+v %v", dep, err)
	}
}

func testDomains(t *testing.T, e *env) {
	ctx := context.Background()
	if err := e.admin.Call(ctx, http.MethodPost, "/api/v1/domains", nil, api.Domain{Name: "bad name"}, nil); statusCode(err) != http.StatusBadRequest {
		t.Fatalf("domain with a space: %v", err)
	}
	e.call(http.MethodPost, "/api/v1/domains", api.Domain{Name: "berlin"}, nil)
	var set api.Settings
	if err := e.admin.Call(ctx, http.MethodPut, "/api/v1/domains/berlin/settings", nil, []int{1}, nil); statusCode(err) != http.StatusBadRequest {
		t.Fatalf("settings that are not an object: %v", err)
	}
	e.call(http.MethodPut, "/api/v1/domains/berlin/settings", map[string]any{"scan": map[string]any{"realtime": true}}, &set)
	if set.Version != 1 || set.Published == nil || set.Published.Items["domain.berlin"] == "" {
		t.Fatalf("put settings: %+v", set)
	}
	// Approvals need the program in the mirrored vendor repository.
	err := e.admin.Call(ctx, http.MethodPut, "/api/v1/domains/berlin/programs/agent-core", nil, api.Deploy{Version: "2.0"}, nil)
	if statusCode(err) != http.StatusConflict && statusCode(err) != http.StatusUnprocessableEntity {
		t.Fatalf("approval before any sync: %v", err)
	}
	e.origin.publish(t, "programs", "agent-core", "2.0")
	e.sync()
	e.call(http.MethodPut, "/api/v1/domains/berlin/programs/agent-core", api.Deploy{Version: "2.0"}, nil)
	var ds sitedoc.DomainSettings
	if err := json.Unmarshal([]byte(siteDocs(t, e)["domain.berlin"]), &ds); err != nil {
		t.Fatal(err)
	}
	if ds.Programs["agent-core"] != "2.0" || !strings.Contains(string(ds.Settings), "realtime") {
		t.Fatalf("domain.berlin: %+v", ds)
	}
	e.call(http.MethodDelete, "/api/v1/domains/berlin/programs/agent-core", nil, nil)
	e.call(http.MethodDelete, "/api/v1/domains/berlin", nil, nil)
	ds = sitedoc.DomainSettings{}
	if err := json.Unmarshal([]byte(siteDocs(t, e)["domain.berlin"]), &ds); err != nil || len(ds.Programs) != 0 || string(ds.Settings) != "{}" {
		t.Fatalf("domain.berlin after deletion: %+v %v", ds, err)
	}
	// A domain with endpoints cannot be deleted.
	e.enroll("member")
	if err := e.admin.Call(ctx, http.MethodDelete, "/api/v1/domains/default", nil, nil, nil); err == nil {
		t.Fatal("deleted a domain holding tokens")
	}
}
