package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestAgentURLOnlyFromAgents: a client cannot set an agent URL through
// its heartbeat or at enrollment, and a designation as update agent
// without a URL leaves none (not one reported earlier); a designation as
// client clears it.
func TestAgentURLOnlyFromAgents(t *testing.T) {
	e := newEnv(t, sqliteDB)
	ctx := context.Background()
	res, c := e.enroll("pc-1", "10.1.0.9")
	evil := "http://attacker.example/"
	err := c.Call(ctx, http.MethodPost, api.PathStatus, nil, api.StatusRequest{Hostname: "pc-1", AgentURL: evil}, nil)
	if statusCode(err) != http.StatusBadRequest {
		t.Fatalf("a client's heartbeat with an agent URL: %v, want 400", err)
	}
	err = e.client("").Call(ctx, http.MethodPost, api.PathEnroll, nil,
		api.EnrollRequest{Token: e.token("default", 1), Hostname: "pc-2", AgentURL: evil}, nil)
	if statusCode(err) != http.StatusBadRequest {
		t.Fatalf("a client's enrollment with an agent URL: %v, want 400", err)
	}
	// designate sets the role and returns the endpoint as answered.
	designate := func(req api.SetRole) api.Endpoint {
		t.Helper()
		var ep api.Endpoint
		e.call(http.MethodPut, "/api/v1/endpoints/"+res.EndpointID+"/role", req, &ep)
		return ep
	}
	ep := designate(api.SetRole{Role: "agent", AgentID: "ua-1"})
	if ep.AgentURL != "" {
		t.Fatalf("designated without a URL, the agent has %q", ep.AgentURL)
	}
	var dir []api.Agent
	if err := c.Call(ctx, http.MethodGet, api.PathAgentDir, nil, nil, &dir); err != nil || len(dir) != 0 {
		t.Fatalf("agent directory: %+v %v, want empty", dir, err)
	}

	// As an agent it reports its URL; designated again without one, or as
	// a client, the URL is gone.
	url := "http://10.1.0.9:8080/"
	if err := c.Call(ctx, http.MethodPost, api.PathStatus, nil, api.StatusRequest{Hostname: "pc-1", AgentURL: url}, nil); err != nil {
		t.Fatalf("an agent's heartbeat with its URL: %v", err)
	}
	ep = api.Endpoint{}
	e.call(http.MethodGet, "/api/v1/endpoints/"+res.EndpointID, nil, &ep)
	if ep.AgentURL != url {
		t.Fatalf("agent URL %q after the agent's heartbeat, want %q", ep.AgentURL, url)
	}
	if ep := designate(api.SetRole{Role: "agent", AgentID: "ua-2"}); ep.AgentURL != "" {
		t.Fatalf("designated again without a URL, the agent keeps %q", ep.AgentURL)
	}
	if ep := designate(api.SetRole{Role: "agent", AgentID: "ua-2", AgentURL: &url}); ep.AgentURL != url {
		t.Fatalf("designated with a URL: %q", ep.AgentURL)
	}
	if ep := designate(api.SetRole{Role: "client"}); ep.AgentURL != "" {
		t.Fatalf("designated as client, the endpoint keeps %q", ep.AgentURL)
	}
}
