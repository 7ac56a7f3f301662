package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// agentPolicy routes clients of 10.1.0.0/16 to update agent ua-1; agents
// update from the server. The second version adds an entry for a mirror.
func agentPolicy(e *env, second bool) string {
	doc := fmt.Sprintf("origin: %s\nserver: %s\nclients: {source: customized}\n"+
		"custom_sources:\n  - {addresses: 10.1.0.0/16, source: \"agent:ua-1\"}\n", e.origin.url, e.url)
	if second {
		doc += "  - {addresses: 10.2.0.0/16, source: \"https://mirror.example/\"}\n"
	}
	return doc
}

// TestPolicyThroughAgentWithServerDown: a client enrolls and updates
// through its update agent; the administrator changes the policy and
// deploys a new component; the agent picks both up; with the server down
// the client gets the new policy and component from the agent, and its
// report of that run reaches the server once it is back.
func TestPolicyThroughAgentWithServerDown(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		e.origin.publish(t, "components", "pattern", "1.0")
		e.sync()
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: agentPolicy(e, false)}, nil)

		agentAddr := testkit.FreeAddr(t, "127.0.0.1")
		agentEP := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "agent-1", Addresses: []string{"10.1.0.1"},
			Role: "agent", AgentID: "ua-1", AgentURL: "http://" + agentAddr + "/"}, func(c *endpoint.Config) {
			c.Serve.Listen = agentAddr
			c.Schedule.Interval, c.Schedule.Jitter = 24*time.Hour, 24*time.Hour
		})
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- agentEP.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("agent daemon: %v", err)
			}
		}()
		if rep := runUpdate(t, agentEP); rep.Result != report.Updated {
			t.Fatalf("agent's first run: %+v", rep.Categories)
		}

		client := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.4.20"}})
		rep := runUpdate(t, client)
		for _, c := range []category.Category{category.DomainSettings, category.Components} {
			if rc := rep.Category(c); rc.Result != report.Updated || rc.Source != "agent:ua-1" {
				t.Fatalf("client's first run, %s: %+v", c, rc)
			}
		}

		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: agentPolicy(e, true)}, nil)
		e.origin.publish(t, "components", "pattern", "1.1")
		e.sync()
		if rep := runUpdate(t, agentEP); rep.Result != report.Updated {
			t.Fatalf("agent's second run: %+v", rep.Categories)
		}

		e.stop()
		rep = runUpdate(t, client)
		ds, comps := rep.Category(category.DomainSettings), rep.Category(category.Components)
		if ds.Result != report.Updated || ds.Source != "agent:ua-1" || comps.Result != report.Updated ||
			comps.Source != "agent:ua-1" || comps.After["pattern"] != "1.1" {
			t.Fatalf("client's run with the server down: %+v %+v", ds, comps)
		}
		p, err := client.Policy()
		if err != nil {
			t.Fatal(err)
		}
		if len(p.CustomSources) != 2 {
			t.Fatalf("the client did not install the new policy: %+v", p.CustomSources)
		}

		e.restart()
		runUpdate(t, client)
		var eps struct{ Endpoints []api.Endpoint }
		e.call(http.MethodGet, "/api/v1/endpoints", nil, &eps)
		var id string
		for _, x := range eps.Endpoints {
			if x.Hostname == "client-1" {
				id = x.ID
			}
		}
		var hist []api.Report
		e.call(http.MethodGet, "/api/v1/endpoints/"+id+"/reports", nil, &hist)
		if len(hist) != 3 || hist[1].Categories[0].Source != "agent:ua-1" {
			t.Fatalf("client's history: %+v", hist)
		}
	})
}
