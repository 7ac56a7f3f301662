package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/server/api"
)

// TestPreviewRanges previews sets of addresses through the API: the
// groups split at both lists' boundaries, each with both plans, whether
// it changed and the enrolled endpoints in it; the limit and start page
// through a range; bad ranges are 400 naming the target.
func TestPreviewRanges(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		ctx := context.Background()
		agent, _ := e.enroll("agent-1", "10.1.0.1")
		agentURL := "http://10.1.0.1:8080/"
		e.call(http.MethodPut, "/api/v1/endpoints/"+agent.EndpointID+"/role", api.SetRole{Role: "agent", AgentID: "ua-1", AgentURL: &agentURL}, nil)
		e.enroll("c1", "10.1.0.10", "10.1.0.11") // counted once
		e.enroll("c2", "10.1.200.1")
		e.enroll("c3", "10.2.0.5", "2001:db8:10::5")
		gone, _ := e.enroll("gone", "10.1.0.12")
		e.call(http.MethodPost, "/api/v1/endpoints/"+gone.EndpointID+"/revoke", nil, nil)
		head := fmt.Sprintf("origin: %s\nserver: %s\nclients: {source: customized}\nagents: {source: customized}\ncustom_sources:\n", e.origin.url, e.url)
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: head +
			"  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n" +
			"  - {addresses: \"2001:db8:10::/48\", source: \"agent:ua-1\"}\n"}, nil)
		edited := head +
			"  - {addresses: 10.1.0.0-10.1.127.255, source: \"agent:ua-1\"}\n" +
			"  - {addresses: 10.1.128.0/17, source: \"https://mirror.example/\"}\n"

		preview := func(targets ...api.PreviewTarget) (api.PreviewResult, error) {
			var pr api.PreviewResult
			err := e.admin.Call(ctx, http.MethodPost, api.PathPolicyPreview, nil, api.PreviewRequest{Document: edited, Targets: targets}, &pr)
			return pr, err
		}
		type group struct {
			Addresses, Current, Edited string
			Endpoints                  int
			Changed                    bool
		}
		groups := func(p api.Preview) []group {
			var out []group
			for _, g := range p.Groups {
				first := func(ex []string) string { return strings.Join(ex, " ") }
				var cur, ed []string
				for _, s := range g.Current.Categories[category.Components] {
					cur = append(cur, s.Source)
				}
				for _, s := range g.Edited.Categories[category.Components] {
					ed = append(ed, s.Source)
				}
				out = append(out, group{g.Addresses, first(cur), first(ed), g.Endpoints, len(g.Changed) > 0})
			}
			return out
		}
		pr, err := preview(api.PreviewTarget{Ranges: []string{"10.0.0.0/8", "2001:db8::/32"}},
			api.PreviewTarget{Ranges: []string{"10.1.0.10", "10.1.200.1", "10.9.9.9"}, Role: "agent", AgentID: "ua-2"})
		if err != nil {
			t.Fatal(err)
		}
		want := []group{
			{"10.0.0.0-10.0.255.255", "server", "server", 0, false},
			{"10.1.0.0-10.1.127.255", "agent:ua-1 server", "agent:ua-1 server", 2, false}, // the agent and c1, not the revoked one
			{"10.1.128.0-10.1.255.255", "agent:ua-1 server", "https://mirror.example/ server", 1, true},
			{"10.2.0.0-10.255.255.255", "server", "server", 1, false},
			{"2001:db8::-2001:db8:f:ffff:ffff:ffff:ffff:ffff", "server", "server", 0, false},
			{"2001:db8:10::-2001:db8:10:ffff:ffff:ffff:ffff:ffff", "agent:ua-1 server", "server", 1, true},
			{"2001:db8:11::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "server", "server", 0, false},
		}
		p0 := pr.Previews[0]
		if got := groups(p0); !reflect.DeepEqual(got, want) {
			t.Fatalf("groups\n%+v\nwant\n%+v", got, want)
		}
		if p0.Next != "" || p0.ChangedGroups != 2 || p0.Target.Role != "client" ||
			!reflect.DeepEqual(p0.Target.Addresses, []string{"10.0.0.0-10.255.255.255", "2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}) {
			t.Fatalf("preview of ranges: next %q, changed %d, target %+v", p0.Next, p0.ChangedGroups, p0.Target)
		}
		if why := p0.Groups[2].Edited.Categories[category.Components][0].Why; why != "entry 2 (10.1.128.0/17) covers 10.1.128.0" {
			t.Fatalf("reason: %q", why)
		}
		// Single addresses, as an agent: one group each.
		if got := groups(pr.Previews[1]); len(got) != 3 || got[0].Addresses != "10.1.0.10" || got[0].Endpoints != 1 ||
			got[1] != (group{"10.1.200.1", "agent:ua-1 server", "https://mirror.example/ server", 1, true}) || got[2].Endpoints != 0 {
			t.Fatalf("single addresses: %+v", got)
		}
		// A range target has no comparison of its own in JSON.
		raw, err := json.Marshal(p0)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"current", "edited", "changed"} {
			if _, ok := fields[k]; ok {
				t.Fatalf("a range preview carries %q of its own: %.300s", k, raw)
			}
		}

		// Paging: two groups at a time, then from next.
		var paged []group
		start := ""
		for range 10 {
			pr, err := preview(api.PreviewTarget{Ranges: []string{"10.0.0.0/8", "2001:db8::/32"}, Limit: 2, Start: start})
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, groups(pr.Previews[0])...)
			if start = pr.Previews[0].Next; start == "" {
				break
			}
		}
		if !reflect.DeepEqual(paged, want) {
			t.Fatalf("paged groups\n%+v\nwant\n%+v", paged, want)
		}

		for _, bad := range []struct {
			t    api.PreviewTarget
			want string
		}{
			{api.PreviewTarget{Ranges: []string{"10.3.0.5/16"}}, "did you mean 10.3.0.0/16"},
			{api.PreviewTarget{Ranges: []string{"10.9.0.0-10.8.0.0"}}, "is after its end"},
			{api.PreviewTarget{Ranges: []string{"10.0.0.0/8"}, Limit: 5000}, "limit 5000"},
			{api.PreviewTarget{Ranges: []string{"10.0.0.0/8"}, Start: "x"}, `start "x"`},
			{api.PreviewTarget{Ranges: []string{"10.0.0.0/8"}, Endpoint: "c1"}, "not several"},
			{api.PreviewTarget{Ranges: []string{"10.0.0.0/8"}, AgentID: "ua-1"}, "with role agent"},
			{api.PreviewTarget{Addresses: []string{"10.0.0.1"}, Limit: 3}, "go with ranges"},
		} {
			_, err := preview(bad.t)
			if statusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "targets[0]") || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("preview of %+v: %v, want 400 with %q", bad.t, err, bad.want)
			}
		}
		var many []api.PreviewTarget
		for range api.MaxRangeTargets + 1 {
			many = append(many, api.PreviewTarget{Ranges: []string{"10.0.0.1"}})
		}
		if _, err := preview(many...); statusCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "at most 10 targets with ranges") {
			t.Errorf("too many range targets: %v", err)
		}
	})
}
