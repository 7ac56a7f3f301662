package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
)

// uploadReport uploads a report whose components category ended with
// result from source, leaving version of pattern installed.
func uploadReport(t *testing.T, c *api.Client, result report.Result, source, version string) string {
	t.Helper()
	now := time.Now().UTC()
	rep := report.Report{ID: fmt.Sprint(now.UnixNano()), Role: "client", Trigger: "scheduled", Started: now, Finished: now,
		Categories: []*report.Category{{Category: category.Components, Result: result, Source: source,
			After: map[string]string{"pattern": version}}}}
	if result == report.Updated { // by a delta: 1 KB of a 100 KB file
		rep.Categories[0].Bytes, rep.Categories[0].FullBytes, rep.Categories[0].Deltas = 1000, 100000, 1
	}
	rep.Finish(now)
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var acc api.ReportAccepted
	if err := c.Call(context.Background(), http.MethodPost, api.PathReports, nil, api.ReportUpload{Report: raw}, &acc); err != nil {
		t.Fatal(err)
	}
	return acc.ID
}

func testAgentReport(t *testing.T, e *env) {
	e.origin.publish(t, "components", "pattern", "2.0")
	e.sync()
	pol := fmt.Sprintf("origin: %s\nserver: %s\nclients: {source: customized}\nagents: {source: customized}\ncustom_sources:\n"+
		"  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n"+
		"  - {addresses: 10.2.0.0/16, source: \"https://mirror.example/\"}\n"+
		"  - {addresses: 10.9.0.0/16, source: \"agent:ua-ghost\"}\n", e.origin.url, e.url)
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: pol}, nil)
	agent, agentC := e.enroll("agent-1", "10.1.0.1")
	agentURL := "http://10.1.0.1:8080/"
	var ep api.Endpoint
	e.call(http.MethodPut, "/api/v1/endpoints/"+agent.EndpointID+"/role", api.SetRole{Role: "agent", AgentID: "ua-1", AgentURL: &agentURL}, &ep)
	if ep.Role != "agent" || ep.AgentID != "ua-1" || ep.AgentURL != agentURL {
		t.Fatalf("set role: %+v", ep)
	}
	var dir []api.Agent
	if err := agentC.Call(context.Background(), http.MethodGet, api.PathAgentDir, nil, nil, &dir); err != nil || len(dir) != 1 || dir[0].URL != agentURL {
		t.Fatalf("agent directory: %+v %v", dir, err)
	}
	c1, c1C := e.enroll("c1", "10.1.0.10")
	_, c2C := e.enroll("c2", "10.1.0.11")
	_, c3C := e.enroll("c3", "10.1.0.12")
	_, c4C := e.enroll("c4", "10.2.0.5")
	e.enroll("c5", "10.3.0.1")
	_, c6C := e.enroll("c6", "10.9.0.1")
	uploadReport(t, c1C, report.Updated, "agent:ua-1", "2.0")
	uploadReport(t, c2C, report.Updated, "server", "2.0")
	uploadReport(t, c3C, report.Failed, "", "1.0")
	uploadReport(t, c4C, report.UpToDate, "https://mirror.example/", "2.0")
	uploadReport(t, c6C, report.UpToDate, "origin", "1.0")
	uploadReport(t, agentC, report.Updated, "server", "2.0")

	var rep api.AgentReport
	if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/agents/report", url.Values{"members": {"true"}}, nil, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Agents) != 2 || rep.Deployed["pattern"] != "2.0" {
		t.Fatalf("agents: %+v", rep)
	}
	ua := rep.Agents[0]
	if ua.AgentID != "ua-1" || !ua.InDirectory || ua.EndpointID != agent.EndpointID || ua.Endpoints != 3 ||
		ua.States[api.StateUpToDate] != 2 || ua.States[api.StateFailing] != 1 ||
		ua.Sources["components"]["agent:ua-1"] != 1 || ua.Sources["components"]["server"] != 1 || len(ua.Members) != 3 ||
		ua.Bytes != 2000 || ua.FullBytes != 200000 {
		t.Fatalf("ua-1: %+v", ua)
	}
	ghost := rep.Agents[1]
	if ghost.AgentID != "ua-ghost" || ghost.InDirectory || ghost.Endpoints != 1 || ghost.States[api.StateBehind] != 1 ||
		ghost.Members[0].Behind["pattern"] != "1.0" || ghost.Sources["components"]["origin"] != 1 {
		t.Fatalf("ua-ghost: %+v", ghost)
	}
	// The agent (which never lists itself), c4 (URL first) and c5 (no entry).
	un := rep.Unassigned
	if un.Endpoints != 3 || un.States[api.StateNoReport] != 1 || un.States[api.StateUpToDate] != 2 {
		t.Fatalf("unassigned: %+v", un)
	}
	// The last report of c1 is in its registry entry.
	var got api.Endpoint
	e.call(http.MethodGet, "/api/v1/endpoints/"+c1.EndpointID, nil, &got)
	if got.LastReport == nil || got.LastReport.Categories[0].Source != "agent:ua-1" ||
		got.LastReport.Categories[0].Bytes != 1000 || got.LastReport.Categories[0].FullBytes != 100000 {
		t.Fatalf("c1: %+v", got)
	}
	var hist []api.Report
	if err := e.admin.Call(context.Background(), http.MethodGet, "/api/v1/reports", url.Values{"limit": {"3"}}, nil, &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("report history: %d", len(hist))
	}
}
