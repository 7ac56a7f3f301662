package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/endpoint"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// runDaemon runs an endpoint's daemon (schedule, control socket, event
// stream, agent serving) until the test ends.
func runDaemon(t *testing.T, ep *endpoint.Endpoint) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ep.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("endpoint daemon: %v", err)
		}
	})
}

// quietSchedule leaves the daemon's runs to notifications and the test.
func quietSchedule(c *endpoint.Config) {
	c.Schedule.Interval, c.Schedule.Jitter = 24*time.Hour, 24*time.Hour
}

// endpointID finds an endpoint's id by its host name.
func endpointID(e *env, hostname string) string {
	e.t.Helper()
	var list server.EndpointList
	e.call(http.MethodGet, "/api/v1/endpoints", nil, &list)
	for _, ep := range list.Endpoints {
		if ep.Hostname == hostname {
			return ep.ID
		}
	}
	e.t.Fatalf("no endpoint %s", hostname)
	return ""
}

// waitConnected waits until each endpoint holds its event stream.
func waitConnected(e *env, ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		testkit.Eventually(e.t, 30*time.Second, "endpoint "+id+" to connect its event stream", func() bool {
			var ep api.Endpoint
			e.call(http.MethodGet, "/api/v1/endpoints/"+id, nil, &ep)
			return ep.Connected
		})
	}
}

// waitNotifiedRun waits for the report of endpoint id's run for
// notification n and returns it.
func waitNotifiedRun(e *env, id, n string) *report.Report {
	e.t.Helper()
	var found *report.Report
	testkit.Eventually(e.t, 30*time.Second, "endpoint "+id+"'s report of its run for notification "+n, func() bool {
		var rs []api.Report
		e.call(http.MethodGet, "/api/v1/endpoints/"+id+"/reports", nil, &rs)
		for _, r := range rs {
			if r.Trigger != string(plan.NotifyComponents) {
				continue
			}
			e.call(http.MethodGet, "/api/v1/reports/"+r.ID, nil, &r) // with its document
			var rep report.Report
			if err := json.Unmarshal(r.Document, &rep); err != nil {
				e.t.Fatal(err)
			}
			if rep.Notification == n {
				found = &rep
				return true
			}
		}
		return false
	})
	return found
}

// TestNotificationAgentsFirst: a new component synced from the origin is
// deployed and announced; the update agent is notified at once and
// updates from the server; its report releases the client (long before
// the agent timeout), which then updates from the agent with a
// notify-components run: components only, the announced version.
func TestNotificationAgentsFirst(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db, func(c *server.Config) { c.AgentTimeout = server.Duration(time.Hour) })
		e.origin.publish(t, "components", "pattern", "1.0")
		e.sync()
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: agentPolicy(e, false)}, nil)

		agentAddr := testkit.FreeAddr(t, "127.0.0.1")
		agentEP := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "agent-1", Addresses: []string{"10.1.0.1"},
			Role: "agent", AgentID: "ua-1", AgentURL: "http://" + agentAddr + "/"}, func(c *endpoint.Config) {
			c.Serve.Listen = agentAddr
			quietSchedule(c)
		})
		runDaemon(t, agentEP)
		if rep := runUpdate(t, agentEP); rep.Result != report.Updated {
			t.Fatalf("agent's first run: %+v", rep.Categories)
		}
		client := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.4.20"}}, quietSchedule)
		runDaemon(t, client)
		if rep := runUpdate(t, client); rep.Category(category.Components).Source != "agent:ua-1" {
			t.Fatalf("client's first run: %+v", rep.Categories)
		}
		agentID, clientID := endpointID(e, "agent-1"), endpointID(e, "client-1")
		waitConnected(e, agentID, clientID)

		e.origin.publish(t, "components", "pattern", "1.1")
		res := e.sync()
		if res.Notification == "" || res.Deployed["pattern"] != "1.1" {
			t.Fatalf("sync: %+v", res)
		}
		agentRep := waitNotifiedRun(e, agentID, res.Notification)
		clientRep := waitNotifiedRun(e, clientID, res.Notification)
		for who, rep := range map[string]*report.Report{"agent": agentRep, "client": clientRep} {
			if rep.Trigger != plan.NotifyComponents || len(rep.Categories) != 1 || rep.Announced["pattern"] != "1.1" {
				t.Fatalf("%s's notified run: trigger %s, announced %v, %d categories", who, rep.Trigger, rep.Announced, len(rep.Categories))
			}
		}
		if c := agentRep.Category(category.Components); c.Result != report.Updated || c.Source != "server" || c.After["pattern"] != "1.1" {
			t.Fatalf("agent's notified run: %+v", c)
		}
		if c := clientRep.Category(category.Components); c.Result != report.Updated || c.Source != "agent:ua-1" || c.After["pattern"] != "1.1" {
			t.Fatalf("client's notified run: %+v", c)
		}
		if clientRep.Started.Before(agentRep.Finished) {
			t.Fatalf("the client ran (%v) before the agent finished (%v)", clientRep.Started, agentRep.Finished)
		}
		// The server stores a report before it records the delivery done
		// (api_endpoint.go, handleReport): the client's report may be
		// listed a moment before.
		var n api.Notification
		testkit.Eventually(t, 30*time.Second, "the client's delivery recorded done", func() bool {
			e.call(http.MethodGet, "/api/v1/notifications/"+res.Notification, nil, &n)
			return n.Deliveries["client"]["done"] == 1
		})
		if !n.AgentsFirst || n.ClientsReleased == nil || n.Deliveries["agent"]["done"] != 1 || n.Deliveries["client"]["done"] != 1 {
			t.Fatalf("notification: %+v", n)
		}
	})
}

// TestNotificationAlwaysFromStandardSource: with
// agents.always_from_standard_source, a notified agent "updates directly
// from the OfficeScan server and disregards the update source list"
// (seed), while its scheduled runs walk the list.
func TestNotificationAlwaysFromStandardSource(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()
	dead := testkit.Listen(t, "127.0.0.1") // a mirror that accepts and never answers
	t.Cleanup(func() { dead.Close() })
	doc := fmt.Sprintf("origin: %s\nserver: %s\nagents: {source: customized, always_from_standard_source: true}\n"+
		"custom_sources:\n  - {addresses: 10.1.0.0/16, source: \"http://%s/\"}\n", e.origin.url, e.url, dead.Addr())
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: doc}, nil)

	agentAddr := testkit.FreeAddr(t, "127.0.0.1")
	agentEP := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "agent-1", Addresses: []string{"10.1.0.1"},
		Role: "agent", AgentID: "ua-1", AgentURL: "http://" + agentAddr + "/"}, func(c *endpoint.Config) {
		c.Serve.Listen = agentAddr
		c.Fetch.HeaderTimeout = 300 * time.Millisecond
		quietSchedule(c)
	})
	runDaemon(t, agentEP)
	rep := runUpdate(t, agentEP)
	comps := rep.Category(category.Components)
	if len(comps.Attempts) == 0 || comps.Attempts[0].Source != "http://"+dead.Addr().String()+"/" || comps.Source != "server" {
		t.Fatalf("manual run: the list's mirror should be tried first: %+v", comps)
	}
	id := endpointID(e, "agent-1")
	waitConnected(e, id)

	e.origin.publish(t, "components", "pattern", "1.1")
	res := e.sync()
	rep = waitNotifiedRun(e, id, res.Notification)
	comps = rep.Category(category.Components)
	if comps.Result != report.Updated || comps.Source != "server" || len(comps.Attempts) != 0 || comps.After["pattern"] != "1.1" {
		t.Fatalf("notified run: %+v", comps)
	}
}

// TestNotificationReleasesHold: a held component's newer version reaches
// no endpoint, even on a manual run; releasing the hold, and later
// rolling back to the older version, each notify the endpoints, whose
// notify-components runs install the announced version at once (the
// signed caps they hold predate the change).
func TestNotificationReleasesHold(t *testing.T) {
	e := newEnv(t, sqliteDB)
	e.origin.publish(t, "components", "pattern", "1.0")
	e.sync()
	e.call(http.MethodPost, "/api/v1/content/components/pattern/hold", nil, nil)
	e.origin.publish(t, "components", "pattern", "1.1")
	if res := e.sync(); res.Notification != "" || res.Deployed["pattern"] != "" {
		t.Fatalf("sync of a held component: %+v", res)
	}
	client := enrollEndpoint(t, e, endpoint.EnrollOptions{Hostname: "client-1", Addresses: []string{"10.1.4.20"}}, quietSchedule)
	runDaemon(t, client)
	if rep := runUpdate(t, client); rep.Category(category.Components).After["pattern"] != "1.0" {
		t.Fatalf("run while held: %+v", rep.Categories)
	}
	id := endpointID(e, "client-1")
	waitConnected(e, id)
	for _, step := range []struct{ path, version string }{{"release", "1.1"}, {"deploy", "1.0"}} {
		var c api.Component
		var body any
		if step.path == "deploy" {
			body = api.Deploy{Version: step.version}
		}
		e.call(http.MethodPost, "/api/v1/content/components/pattern/"+step.path, body, &c)
		if c.Notification == "" || c.Deployed != step.version {
			t.Fatalf("%s: %+v", step.path, c)
		}
		rep := waitNotifiedRun(e, id, c.Notification)
		if comps := rep.Category(category.Components); comps.Result != report.Updated || comps.After["pattern"] != step.version {
			t.Fatalf("run notified by %s: %+v", step.path, comps)
		}
	}
}
