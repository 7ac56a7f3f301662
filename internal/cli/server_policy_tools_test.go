package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/lint"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/whatif"
)

// fakePolicyTools answers the policy tools' calls: it records each
// request's method, path and body, refuses a document containing "ftp:"
// as the server refuses an invalid policy (400, every problem), and
// answers fixed documents otherwise.
func fakePolicyTools(t *testing.T, seen *[]string) []string {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Document string              `json:"document"`
			Down     []string            `json:"down"`
			Targets  []api.PreviewTarget `json:"targets"`
		}
		if r.Method == http.MethodPost {
			json.NewDecoder(r.Body).Decode(&body)
		}
		*seen = append(*seen, r.Method+" "+r.URL.Path+" "+strings.TrimSpace(body.Document)+" "+strings.Join(body.Down, ","))
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(body.Document, "ftp:") {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(api.Error{Error: "custom_sources entry 1: bad (and 1 more problem)",
				Problems: []string{"custom_sources entry 1: bad", "custom_sources entry 2: worse"}})
			return
		}
		var doc any
		switch r.URL.Path {
		case api.PathPolicyLint:
			res := api.LintResult{Endpoints: 4, Agents: 1, Warnings: []lint.Warning{
				{Kind: lint.UnknownAgent, Entry: 2, Agent: "ua-9", Message: "custom_sources entry 2 (10.2.0.0/16 agent:ua-9): no enrolled update agent has the id ua-9: enroll it"}}}
			if r.Method == http.MethodGet {
				res.PolicyVersion = 7
			}
			doc = res
		case api.PathPolicyPreview:
			if len(body.Targets) == 1 && len(body.Targets[0].Ranges) > 0 {
				doc = fakeRangePreview(body.Targets[0])
				break
			}
			doc = api.PreviewResult{PolicyVersion: 7, Previews: []api.Preview{{
				Target: api.ResolvedTarget{EndpointID: "e-1", Hostname: body.Targets[0].Endpoint, Role: "client", Addresses: []string{"10.1.0.5"}},
				Comparison: whatif.Comparison{
					Current: whatif.Explained{Role: plan.RoleClient, Categories: map[category.Category][]whatif.Step{
						category.Components: {{Source: "agent:ua-1", Why: "entry 1"}, {Source: "server", Why: "fallback"}}}},
					Edited: whatif.Explained{Role: plan.RoleClient, Categories: map[category.Category][]whatif.Step{
						category.Components: {{Source: "https://mirror.example/", Why: "entry 1 (10.0.0.0/8) covers 10.1.0.5"}, {Source: "server", Why: "fallback"}}}},
					Changed: []whatif.Change{{Category: category.Components, Positions: []int{1}}}}}}}
		case api.PathPolicyWhatIf:
			doc = api.WhatIfResult{PolicyVersion: 7, Result: &whatif.Result{Trigger: plan.Scheduled, Endpoints: 4, Down: body.Down,
				Categories: map[category.Category]*whatif.CategoryResult{category.Components: {
					Sources: []whatif.SourceCount{{Source: "server", Endpoints: 4, Agents: 1, Clients: 3, Bytes: 3 << 20}}, Server: 4, FellBack: 3}},
				Groups:   []whatif.Group{{Role: plan.RoleClient, EndAt: map[category.Category]string{category.Components: "server"}, Endpoints: 3, NeedUpdate: 2, Bytes: 2 << 20, Examples: []string{"c1", "c2", "c3"}}},
				Bytes:    whatif.Bytes{Server: 3 << 20},
				Deployed: map[string]whatif.Component{"pattern": {Version: "2.0", Bytes: 1 << 20}}}}
		}
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return []string{"--server", srv.URL + "/", "--fingerprint", api.KeyFingerprintOf(srv.Certificate()).String(),
		"--token-file", secretFile(t, "tok")}
}

func TestServerPolicyTools(t *testing.T) {
	var seen []string
	conn := fakePolicyTools(t, &seen)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("good: policy\n"), 0o600)
	os.WriteFile(bad, []byte("source: ftp://x\n"), 0o600)

	for _, tc := range []struct {
		args []string
		req  string // the request the server saw
		want string
	}{
		{[]string{"server", "policy", "lint"}, "GET /api/v1/policy/lint  ",
			"warning: custom_sources entry 2 (10.2.0.0/16 agent:ua-9): no enrolled update agent has the id ua-9: enroll it\n" +
				"policy version 7: 1 warning against 4 enrolled endpoints (1 update agent)\n"},
		{[]string{"server", "policy", "lint", good}, "POST /api/v1/policy/lint good: policy ",
			"warning: custom_sources entry 2 (10.2.0.0/16 agent:ua-9): no enrolled update agent has the id ua-9: enroll it\n" +
				"policy " + good + ": 1 warning against 4 enrolled endpoints (1 update agent)\n"},
		{[]string{"server", "policy", "preview", good, "--endpoint", "pc-1"}, "POST /api/v1/policy/preview good: policy ",
			"in force: policy version 7; edited: " + good + "; * marks a position that differs\n\n" +
				"client pc-1 (e-1, 10.1.0.5): 1 categories differ\n" +
				"CATEGORY    #   IN FORCE    EDITED                   WHY (EDITED)\n" +
				"components  1*  agent:ua-1  https://mirror.example/  entry 1 (10.0.0.0/8) covers 10.1.0.5\n" +
				"components  2   server      server                   fallback\n"},
		{[]string{"server", "policy", "whatif", "--down", "agent:ua-1", "--down", "origin"}, "POST /api/v1/policy/whatif  agent:ua-1,origin", ""},
	} {
		seen = nil
		name := strings.Join(tc.args, " ")
		code, out, stderr := run(append(tc.args, conn...)...)
		if code != 0 || (tc.want != "" && out != tc.want) {
			t.Errorf("cascade %s: exit %d, stderr %q, stdout\n%s\nwant\n%s", name, code, stderr, out, tc.want)
		}
		if !reflect.DeepEqual(seen, []string{tc.req}) {
			t.Errorf("cascade %s: server saw %q, want %q", name, seen, tc.req)
		}
		if tc.want == "" && (!strings.Contains(out, "policy version 7, trigger scheduled, 4 enrolled endpoints; down: agent:ua-1, origin\n") ||
			!strings.Contains(out, "bytes for the deployed components (pattern 2.0): server 3.0 MiB, WAN 0 B,") ||
			!strings.Contains(out, "client  3          2       2.0 MiB  components server  c1 c2 c3")) {
			t.Errorf("cascade %s:\n%s", name, out)
		}
		code, out, stderr = run(append(append(tc.args, "--json"), conn...)...)
		if code != 0 {
			t.Fatalf("cascade %s --json: exit %d: %s", name, code, stderr)
		}
		checkSnakeCase(t, name+" --json", out)
	}

	// An invalid policy file: every problem on its own line, status 2,
	// as `cascade policy check` prints them.
	for _, args := range [][]string{{"lint", bad}, {"preview", bad, "--address", "10.0.0.1"}, {"whatif", "--policy", bad}} {
		code, out, stderr := run(append(append([]string{"server", "policy"}, args...), conn...)...)
		want := "cascade: policy " + bad + ": custom_sources entry 1: bad\ncascade: policy " + bad + ": custom_sources entry 2: worse\n"
		if code != 2 || out != "" || stderr != want {
			t.Errorf("cascade server policy %v: exit %d, stdout %q, stderr %q, want %q", args, code, out, stderr, want)
		}
	}
	// Bad flags are refused before any request.
	seen = nil
	for _, args := range [][]string{{"whatif", "--down", "ftp://x"}, {"preview", good}, {"preview", good, "--role", "agent", "--endpoint", "x"}} {
		if code, _, stderr := run(append(append([]string{"server", "policy"}, args...), conn...)...); code != 2 || !strings.Contains(stderr, "cascade:") {
			t.Errorf("cascade server policy %v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if seen != nil {
		t.Errorf("bad flags reached the server: %q", seen)
	}
}

// fakeRangePreview answers a preview of ranges in two pages: one group,
// then (from 10.1.0.0) one more that differs.
func fakeRangePreview(t api.PreviewTarget) api.PreviewResult {
	steps := func(src, why string) whatif.Explained {
		return whatif.Explained{Role: plan.RoleClient, Categories: map[category.Category][]whatif.Step{
			category.Components: {{Source: src, Why: why}}}}
	}
	p := api.Preview{Target: api.ResolvedTarget{Role: "client", Addresses: []string{"10.0.0.0-10.255.255.255"}}}
	if t.Start == "" {
		p.Groups = []api.PreviewGroup{{Addresses: "10.0.0.0-10.0.255.255", From: "10.0.0.0", To: "10.0.255.255",
			Comparison: whatif.Comparison{Current: steps("server", "fallback"), Edited: steps("server", "fallback"), Changed: []whatif.Change{}}}}
		p.Next = "10.1.0.0"
	} else {
		p.Groups = []api.PreviewGroup{{Addresses: "10.1.0.0-10.255.255.255", From: "10.1.0.0", To: "10.255.255.255", Endpoints: 3,
			Comparison: whatif.Comparison{Current: steps("server", "fallback"), Edited: steps("https://mirror.example/", "entry 1 (10.0.0.0/8) covers 10.1.0.0"),
				Changed: []whatif.Change{{Category: category.Components, Positions: []int{1}}}}}}
		p.ChangedGroups = 1
	}
	return api.PreviewResult{PolicyVersion: 7, Previews: []api.Preview{p}}
}

// TestServerPolicyPreviewRange: --range previews a set of addresses in
// groups, fetching every page of them.
func TestServerPolicyPreviewRange(t *testing.T) {
	var seen []string
	conn := fakePolicyTools(t, &seen)
	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("good: policy\n"), 0o600)
	code, out, stderr := run(append([]string{"server", "policy", "preview", good, "--range", "10.0.0.0/8"}, conn...)...)
	want := "in force: policy version 7; edited: " + good + "; * marks a position that differs\n\n" +
		"client 10.0.0.0-10.255.255.255: 2 groups with one plan each, 1 differ\n\n" +
		"group 10.0.0.0-10.0.255.255: 0 enrolled endpoints, 0 categories differ\n" +
		"CATEGORY    #   IN FORCE  EDITED  WHY (EDITED)\n" +
		"components  1   server    server  fallback\n\n" +
		"group 10.1.0.0-10.255.255.255: 3 enrolled endpoints, 1 categories differ\n" +
		"CATEGORY    #   IN FORCE  EDITED                   WHY (EDITED)\n" +
		"components  1*  server    https://mirror.example/  entry 1 (10.0.0.0/8) covers 10.1.0.0\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, stderr, out, want)
	}
	if len(seen) != 2 {
		t.Fatalf("%d requests, want 2 (two pages): %q", len(seen), seen)
	}
}
