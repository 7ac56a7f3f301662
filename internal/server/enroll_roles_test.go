package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestEnrollmentRoles: only an enrollment token created with agents
// enrolls an update agent; a refused agent leaves the token usable.
func TestEnrollmentRoles(t *testing.T) {
	const refused = "enrollment token does not allow update agents (create one with: cascade server token create --agents)"
	tests := []struct {
		name   string
		agents bool   // the token allows agents
		role   string // the role the endpoint states
		want   int    // HTTP status of the enrollment
	}{
		{"client token, agent", false, "agent", http.StatusForbidden},
		{"agents token, agent", true, "agent", http.StatusCreated},
		{"agents token, client", true, "client", http.StatusCreated},
		{"client token, client", false, "client", http.StatusCreated},
		{"client token, default role", false, "", http.StatusCreated},
	}
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		ctx := context.Background()
		anon := e.client("")
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				one := 1
				tok := e.newToken(api.TokenRequest{Domain: "default", Uses: &one, Agents: tc.agents})
				if tok.Agents != tc.agents {
					t.Fatalf("created token: agents %v, want %v", tok.Agents, tc.agents)
				}
				req := api.EnrollRequest{Token: tok.Secret, Hostname: fmt.Sprintf("host-%d", i), Role: tc.role,
					Addresses: []string{fmt.Sprintf("10.1.0.%d", i+1)}}
				if tc.role == "agent" {
					req.AgentID = fmt.Sprintf("ua-%d", i)
					req.AgentURL = fmt.Sprintf("http://10.1.0.%d:8080/", i+1)
				}
				var res api.EnrollResponse
				err := anon.Call(ctx, http.MethodPost, api.PathEnroll, nil, req, &res)
				if tc.want == http.StatusForbidden {
					if statusCode(err) != http.StatusForbidden || err.Error() != refused {
						t.Fatalf("enroll: %v, want 403 %q", err, refused)
					}
					if l := listedToken(t, e, tok.ID); l.Uses != 0 || l.Agents {
						t.Fatalf("token after a refused agent: %+v", l)
					}
					// The agent id is still free for a token that allows agents.
					agent := req
					agent.Token, agent.Hostname = e.agentToken("default", 1), "the-real-agent"
					if err := anon.Call(ctx, http.MethodPost, api.PathEnroll, nil, agent, &res); err != nil || res.AgentID != req.AgentID {
						t.Fatalf("agent with its id after a refused one: %+v %v", res, err)
					}
					// The token still enrolls a client.
					req.Role, req.AgentID, req.AgentURL = "client", "", ""
					if err := anon.Call(ctx, http.MethodPost, api.PathEnroll, nil, req, &res); err != nil {
						t.Fatalf("client with the same token: %v", err)
					}
					if res.Role != "client" || listedToken(t, e, tok.ID).Uses != 1 {
						t.Fatalf("client after a refused agent: %+v", res)
					}
					return
				}
				if err != nil {
					t.Fatalf("enroll: %v", err)
				}
				wantRole := tc.role
				if wantRole == "" {
					wantRole = "client"
				}
				if res.Role != wantRole || res.AgentID != req.AgentID || res.Domain != "default" {
					t.Fatalf("enroll answer: role %q agent id %q domain %q", res.Role, res.AgentID, res.Domain)
				}
				var ep api.Endpoint
				e.call(http.MethodGet, "/api/v1/endpoints/"+res.EndpointID, nil, &ep)
				if ep.Role != wantRole || ep.AgentID != req.AgentID {
					t.Fatalf("endpoint: %+v", ep)
				}
				if l := listedToken(t, e, tok.ID); l.Uses != 1 || l.Agents != tc.agents {
					t.Fatalf("listed token: %+v", l)
				}
			})
		}
	})
}

// listedToken returns the enrollment token id as the admin API lists it.
func listedToken(t *testing.T, e *env, id string) api.Token {
	t.Helper()
	var ts []api.Token
	e.call(http.MethodGet, "/api/v1/tokens", nil, &ts)
	for _, tok := range ts {
		if tok.ID == id {
			return tok
		}
	}
	t.Fatalf("token %s not listed", id)
	return api.Token{}
}
