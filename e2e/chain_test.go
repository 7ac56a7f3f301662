//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
)

// hop is one endpoint of the chain and the source it updates from.
type hop struct {
	m        *member
	upstream string
}

// TestAgentChain: a client updates through a chain of three update
// agents (client → ua-c → ua-b → ua-a → server), every category of every
// hop from the next one up. Then a notification reaches the three agents
// at once (each takes the new pattern from its upstream agent, or from
// the server when that agent does not hold it yet: stale), the client is
// held until all three reported, and updates from ua-c; a manual round
// finds every hop up to date at its upstream, and so does a "notify all".
func TestAgentChain(t *testing.T) {
	t.Parallel()
	s := newSite(t, 14, siteOptions{})
	s.setPolicy(fmt.Sprintf(`origin: %s
server: %s
clients: {source: customized}
agents: {source: customized}
fallback_to_server: {components: true, domain_settings: true, programs: true}
custom_sources:
  - {addresses: 10.41.0.3/32, source: "agent:ua-b"}
  - {addresses: 10.41.0.2/32, source: "agent:ua-a"}
  - {addresses: 10.41.1.0/24, source: "agent:ua-c"}
`, s.originURL, s.serverURL))
	a := s.enroll("agent-a", memberOptions{Address: "10.41.0.1", AgentID: "ua-a"})
	b := s.enroll("agent-b", memberOptions{Address: "10.41.0.2", AgentID: "ua-b"})
	c := s.enroll("agent-c", memberOptions{Address: "10.41.0.3", AgentID: "ua-c"})
	client := s.enroll("client", memberOptions{Address: "10.41.1.1"})
	chain := []hop{{a, "server"}, {b, "agent:ua-a"}, {c, "agent:ua-b"}, {client, "agent:ua-c"}}
	chainRound(s, chain, report.Updated, "1.0")
	if t.Failed() {
		return
	}
	chainNotified(s, chain)
	if t.Failed() {
		return
	}
	chainRound(s, chain, report.UpToDate, "2.0")
	if t.Failed() {
		return
	}
	chainNotifyAll(s, chain)
}

// chainNotifyAll: "notify all" (`cascade server notify`) announces the
// deployed pattern 2.0, which every agent already serves: each hop's
// notified run finds it up to date at its upstream, none stale, and the
// client runs last.
func chainNotifyAll(s *site, chain []hop) {
	t := s.t
	t.Log("== chain of agents, notify all")
	var n api.Notification
	s.adminJSON(&n, "server", "notify")
	var agentsFinished time.Time
	for i, h := range chain {
		r := s.notified(h.m, n.ID)
		checkComponentsOnly(t, h.m.name, r, "2.0")
		checkCategory(t, h.m.name, r, category.Components, report.UpToDate, h.upstream)
		if i < 3 && r.Finished.After(agentsFinished) {
			agentsFinished = r.Finished
		}
		if i == 3 && r.Started.Before(agentsFinished) {
			t.Errorf("the client ran at %v, before the agents finished (%v)", r.Started, agentsFinished)
		}
	}
}

// chainRound runs every hop manually, from the top of the chain down,
// and checks that each updated every category from its upstream.
func chainRound(s *site, chain []hop, result report.Result, version string) {
	t := s.t
	t.Logf("== chain of agents, manual round (pattern %s)", version)
	for _, h := range chain {
		l := h.m.updateNow()
		r := s.serverReport(h.m, l)
		for _, cat := range category.All {
			if h.upstream == "server" {
				checkPlan(t, h.m.name, l, plan.RuleCustomized, cat, "server")
			} else {
				checkPlan(t, h.m.name, l, plan.RuleCustomized, cat, h.upstream, "server")
			}
			want := result
			if cat != category.Components {
				want = report.UpToDate // domain settings and programs do not change after the first round
				if version == "1.0" {
					want = report.Updated
				}
			}
			checkCategory(t, h.m.name, r, cat, want, h.upstream)
		}
		h.m.wantInstalled(category.Components, "pattern", version)
		h.m.wantInstalled(category.Programs, "agent-core", "1.0")
	}
}

// chainNotified publishes pattern 2.0 and follows the notification
// down the chain.
func chainNotified(s *site, chain []hop) {
	t := s.t
	t.Log("== chain of agents, notified")
	var ms []*member
	for _, h := range chain {
		ms = append(ms, h.m)
	}
	s.waitConnected(ms...)
	s.publish("--component", "pattern", "2.0")
	res := s.sync()
	if res.Notification == "" {
		t.Fatalf("sync deployed %v without a notification", res.Deployed)
	}
	var agentsDone []*report.Report
	for _, h := range chain[:3] {
		r := s.notified(h.m, res.Notification)
		checkComponentsOnly(t, h.m.name, r, "2.0")
		// An upstream agent that has not refreshed yet holds 1.0: older
		// than announced, it is stale, and the agent falls back to the
		// server.
		rc := r.Category(category.Components)
		if rc != nil {
			t.Logf("%s: notified run updated components from %s", h.m.name, rc.Source)
		}
		if rc != nil && rc.Source == "server" && h.upstream != "server" {
			checkCategory(t, h.m.name, r, category.Components, report.Updated, "server", attempt{h.upstream, failure.Stale})
		} else {
			checkCategory(t, h.m.name, r, category.Components, report.Updated, h.upstream)
		}
		h.m.wantInstalled(category.Components, "pattern", "2.0")
		agentsDone = append(agentsDone, r)
	}
	rc := s.notified(chain[3].m, res.Notification)
	checkComponentsOnly(t, "client", rc, "2.0")
	checkCategory(t, "client", rc, category.Components, report.Updated, "agent:ua-c")
	chain[3].m.wantInstalled(category.Components, "pattern", "2.0")
	for _, r := range agentsDone {
		if rc.Started.Before(r.Finished) {
			t.Errorf("the client ran at %v, before agent %s finished at %v", rc.Started, r.Endpoint, r.Finished)
		}
	}
	settled := func(n api.Notification) bool {
		return n.Deliveries["agent"]["done"] == 3 && n.Deliveries["client"]["done"] == 1
	}
	if n := s.settledNotification(res.Notification, settled); !settled(n) {
		t.Errorf("notification %s: deliveries %v, want 3 agents and the client done", n.ID, n.Deliveries)
	}
}
