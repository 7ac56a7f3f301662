package server_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/lint"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/whatif"
)

// TestPolicyTools drives lint, preview and what-if through a real server
// with enrolled endpoints and a mirrored, deployed component.
func TestPolicyTools(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		ctx := context.Background()
		e.origin.publish(t, "components", "pattern", "2.0") // one file of 1200 bytes
		e.sync()

		agent, _ := e.enroll("agent-1", "10.1.0.1")
		agentURL := "http://10.1.0.1:8080/"
		e.call(http.MethodPut, "/api/v1/endpoints/"+agent.EndpointID+"/role", api.SetRole{Role: "agent", AgentID: "ua-1", AgentURL: &agentURL}, nil)
		c1, _ := e.enroll("c1", "10.1.0.10")
		e.enroll("c2", "10.1.0.11")
		e.enroll("c3", "10.2.0.5")
		gone, _ := e.enroll("gone", "10.7.0.1")
		e.call(http.MethodPost, "/api/v1/endpoints/"+gone.EndpointID+"/revoke", nil, nil)
		// c1 already runs the deployed version: it carries nothing
		if _, err := e.st.UpdateEndpointStatus(ctx, c1.EndpointID, store.StatusUpdate{
			Installed: store.Installed{category.Components: {"pattern": "2.0"}}}); err != nil {
			t.Fatal(err)
		}

		head := fmt.Sprintf("origin: %s\nserver: %s\nclients: {source: customized}\nagents: {source: customized}\ncustom_sources:\n", e.origin.url, e.url)
		inForce := head +
			"  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n" +
			"  - {addresses: 10.2.0.0/16, source: \"agent:ua-9\"}\n" +
			"  - {addresses: 10.1.0.0-10.1.0.255, source: \"agent:ua-1\"}\n" +
			"  - {addresses: 10.7.0.0/16, source: \"https://mirror.example/\"}\n"
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: inForce}, nil)

		// Lint, the policy in force.
		var lr api.LintResult
		e.call(http.MethodGet, api.PathPolicyLint, nil, &lr)
		type kind struct {
			Kind  lint.Kind
			Entry int
		}
		var kinds []kind
		for _, w := range lr.Warnings {
			kinds = append(kinds, kind{w.Kind, w.Entry})
		}
		want := []kind{{lint.UnknownAgent, 2}, {lint.Unreachable, 3}, {lint.CoversNothing, 4}}
		if lr.PolicyVersion == 0 || lr.Endpoints != 4 || lr.Agents != 1 || !reflect.DeepEqual(kinds, want) {
			t.Fatalf("lint: %+v, kinds %v, want %v", lr, kinds, want)
		}

		// Lint, an edited policy (as YAML): ua-1 is no longer named.
		edited := head + "  - {addresses: 10.0.0.0/8, source: \"https://mirror.example/\"}\n"
		var er api.LintResult
		if err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyLint, nil, api.PutPolicy{Document: edited}, &er); err != nil {
			t.Fatal(err)
		}
		if er.PolicyVersion != 0 || len(er.Warnings) != 1 || er.Warnings[0].Kind != lint.UnusedAgent || er.Warnings[0].Agent != "ua-1" {
			t.Fatalf("lint edited: %+v", er)
		}

		// An invalid policy is 400 with every problem.
		bad := head + "  - {addresses: 10.9.0.0-10.8.0.0, source: \"agent:ua-1\"}\n  - {addresses: 10.1.0.0/16, source: \"ftp://x\"}\n"
		err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyLint, nil, api.PutPolicy{Document: bad}, nil)
		var se *api.StatusError
		if !asStatus(err, &se) || se.Code != http.StatusBadRequest || len(se.Problems) != 2 ||
			!strings.Contains(se.Problems[0], "custom_sources entry 1") || !strings.Contains(se.Problems[1], "custom_sources entry 2") {
			t.Fatalf("lint of an invalid policy: %v %+v", err, se)
		}
		err = e.admin.Call(ctx, http.MethodPost, api.PathPolicyWhatIf, nil, api.WhatIfRequest{Document: bad}, nil)
		if statusCode(err) != http.StatusBadRequest {
			t.Fatalf("what-if of an invalid policy: %v", err)
		}

		// Preview: by hostname, by id, and by addresses.
		preq := api.PreviewRequest{Document: edited, Targets: []api.PreviewTarget{
			{Endpoint: "C2"}, {Endpoint: agent.EndpointID}, {Addresses: []string{"10.1.0.99", "192.0.2.1"}}}}
		var pr api.PreviewResult
		if err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyPreview, nil, preq, &pr); err != nil {
			t.Fatal(err)
		}
		if len(pr.Previews) != 3 || pr.PolicyVersion != lr.PolicyVersion {
			t.Fatalf("preview: %+v", pr)
		}
		p0 := pr.Previews[0]
		if p0.Target.Hostname != "c2" || p0.Target.Role != "client" || !reflect.DeepEqual(p0.Target.Addresses, []string{"10.1.0.11"}) {
			t.Fatalf("preview target: %+v", p0.Target)
		}
		comp := p0.Current.Categories[category.Components]
		if len(comp) != 2 || comp[0].Source != "agent:ua-1" || comp[0].Why != "entry 1 (10.1.0.0/16) covers 10.1.0.11" || comp[1].Source != "server" {
			t.Fatalf("preview current: %+v", comp)
		}
		if ed := p0.Edited.Categories[category.Components]; len(ed) != 2 || ed[0].Source != "https://mirror.example/" {
			t.Fatalf("preview edited: %+v", ed)
		}
		if len(p0.Changed) != 3 || p0.Changed[0].Category != category.Components || !reflect.DeepEqual(p0.Changed[0].Positions, []int{1}) {
			t.Fatalf("preview changed: %+v", p0.Changed)
		}
		if a := pr.Previews[1]; a.Target.Role != "agent" || a.Target.AgentID != "ua-1" || a.Current.Rule != "customized" {
			t.Fatalf("preview of the agent: %+v", a)
		}
		for _, bad := range []api.PreviewTarget{{Endpoint: "nobody"}, {Endpoint: "gone"}, {Addresses: []string{"10.1"}}, {}} {
			err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyPreview, nil, api.PreviewRequest{Document: edited, Targets: []api.PreviewTarget{bad}}, nil)
			if statusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "targets[0]") {
				t.Errorf("preview of %+v: %v", bad, err)
			}
		}

		// What-if under the policy in force with ua-1 down: c1, c2 fall
		// back to the server; c3 (ua-9 unknown) too; the agent itself
		// has no entry but its own and ends at the server.
		var wr api.WhatIfResult
		if err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyWhatIf, nil, api.WhatIfRequest{Down: []string{"agent:ua-1"}}, &wr); err != nil {
			t.Fatal(err)
		}
		size := int64(len(strings.Repeat("pattern 2.0\n", 100)))
		cr := wr.Categories[category.Components]
		if wr.PolicyVersion != lr.PolicyVersion || wr.Endpoints != 4 || cr == nil || cr.Server != 4 || cr.Quit != 0 ||
			!reflect.DeepEqual(wr.Unavailable, []string{"ua-9"}) ||
			wr.Deployed["pattern"] != (whatif.Component{Version: "2.0", Bytes: size}) || wr.Bytes.Server != 3*size || wr.Bytes.WAN != 0 {
			t.Fatalf("what-if: %+v %+v", wr.Result, cr)
		}
		// ... and with the edited policy, the server and the mirror down:
		// every client ends at the origin (fallback off, not in the list).
		noFallback := strings.Replace(edited, "custom_sources:", "fallback_to_server: {components: false}\ncustom_sources:", 1)
		wr = api.WhatIfResult{}
		if err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyWhatIf, nil,
			api.WhatIfRequest{Document: noFallback, Down: []string{"server", "https://MIRROR.example"}}, &wr); err != nil {
			t.Fatal(err)
		}
		if cr := wr.Categories[category.Components]; wr.PolicyVersion != 0 || wr.Unavailable != nil || cr.Origin != 4 || cr.FellBack != 4 || wr.Bytes.WAN != 3*size || wr.Bytes.Server != 0 {
			t.Fatalf("what-if edited: %+v %+v", wr.Result, cr)
		}
		if err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyWhatIf, nil, api.WhatIfRequest{Down: []string{"ftp://x"}}, nil); statusCode(err) != http.StatusBadRequest {
			t.Fatalf("what-if with a bad down source: %v", err)
		}
	})
}

func asStatus(err error, se **api.StatusError) bool {
	s, ok := err.(*api.StatusError)
	*se = s
	return ok
}

// TestWhatIfCountsReportedVersions: an endpoint's status is sent when a
// run starts, its report when the run ends; the what-if takes the
// versions the last report left installed, as the agent report does,
// so an endpoint that has just updated is not counted as behind.
func TestWhatIfCountsReportedVersions(t *testing.T) {
	e := newEnv(t, sqliteDB)
	ctx := context.Background()
	e.origin.publish(t, "components", "pattern", "2.0")
	e.sync()
	c1, _ := e.enroll("c1", "10.1.0.10")
	e.enroll("c2", "10.1.0.11")
	// Both started their run at 1.0; c1's report says it ended at 2.0.
	for _, id := range []string{c1.EndpointID} {
		if _, err := e.st.UpdateEndpointStatus(ctx, id, store.StatusUpdate{
			Installed: store.Installed{category.Components: {"pattern": "1.0"}}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if err := e.st.AddReports(ctx, []store.Report{{EndpointID: c1.EndpointID, Trigger: "scheduled", Started: now, Finished: now, Result: "success",
		Categories: []store.CategoryReport{{Category: category.Components, Result: "updated", Source: "server",
			VersionsAfter: map[string]string{"pattern": "2.0"}}}}}); err != nil {
		t.Fatal(err)
	}
	var rep api.AgentReport
	e.call(http.MethodGet, "/api/v1/agents/report", nil, &rep)
	if rep.Unassigned.States[api.StateUpToDate] != 1 {
		t.Fatalf("agent report: %+v", rep.Unassigned)
	}
	var wr api.WhatIfResult
	e.call(http.MethodPost, api.PathPolicyWhatIf, api.WhatIfRequest{}, &wr)
	size := int64(len(strings.Repeat("pattern 2.0\n", 100)))
	need := 0
	for _, g := range wr.Groups {
		need += g.NeedUpdate
	}
	if need != 1 || wr.Bytes.Server != size {
		t.Fatalf("what-if: %d endpoints need an update and the server carries %d bytes; want 1 (c2) and %d", need, wr.Bytes.Server, size)
	}
}
