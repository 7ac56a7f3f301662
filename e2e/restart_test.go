//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// fanOut is the site of TestServerRestartDuringFanOut: two update agents,
// each with three clients.
type fanOut struct {
	s        *site
	hangAddr string // the agents' first source: accepts, never answers
	agents   []*member
	clients  [][]*member // per agent
}

// agentHeaderTimeout is how long the agents wait for their first source
// before moving on: the window in which the test restarts the server.
const agentHeaderTimeout = 6 * time.Second

// TestServerRestartDuringFanOut: a sync deploys a new pattern and
// notifies the site, agents first; the server goes down while the agents
// are still updating (their first source hangs, then they update from
// the origin) and the clients are held. Once the server is back, the
// agents' reports reach it, which releases the clients; every endpoint
// ends up with the new version, the notification is done for all, and
// every report every endpoint made is at the server. Done three times: a
// graceful restart (SIGTERM) and a crash (SIGKILL), both over before the
// agents finish, then an outage that outlasts the agents' runs (their
// reports wait in their outboxes).
func TestServerRestartDuringFanOut(t *testing.T) {
	t.Parallel()
	f := &fanOut{s: newSite(t, 13, siteOptions{AgentTimeout: 10 * time.Minute})}
	s := f.s
	f.hangAddr = s.deadAddr() // refuses connections until the fan-out
	s.setPolicy(fmt.Sprintf(`origin: %s
server: %s
clients: {source: customized}
agents: {source: customized}
fallback_to_server: {components: true, domain_settings: true, programs: true}
custom_sources:
  - {addresses: 10.31.0.0/24, source: "http://%s/"}
  - {addresses: 10.31.0.0/24, source: %q}
  - {addresses: 10.31.1.0/24, source: "agent:ua-1"}
  - {addresses: 10.31.2.0/24, source: "agent:ua-2"}
`, s.originURL, s.serverURL, f.hangAddr, s.originURL))
	// No probing ahead (hedge): the agents go on to the origin only once
	// the hanging source has timed out.
	agentConfig := map[string]any{"fetch": map[string]any{"header_timeout": agentHeaderTimeout.String()},
		"failover": map[string]any{"hedge": "1m"}}
	for i := 1; i <= 2; i++ {
		f.agents = append(f.agents, s.enroll(fmt.Sprintf("agent-%d", i),
			memberOptions{Address: fmt.Sprintf("10.31.0.%d", i), AgentID: fmt.Sprintf("ua-%d", i), Config: agentConfig}))
		var cs []*member
		for j := 1; j <= 3; j++ {
			cs = append(cs, s.enroll(fmt.Sprintf("client-%d-%d", i, j), memberOptions{Address: fmt.Sprintf("10.31.%d.%d", i, j)}))
		}
		f.clients = append(f.clients, cs)
	}
	f.firstRound()
	if t.Failed() {
		return
	}
	hang(t, f.hangAddr)
	for _, round := range []struct {
		version, how string
		down         func(ntf string)
	}{
		{"2.0", "restarted (SIGTERM)", func(string) { s.restartServer(syscall.SIGTERM) }},
		{"3.0", "restarted after a crash (SIGKILL)", func(string) { s.restartServer(syscall.SIGKILL) }},
		{"4.0", "down until the agents finished", f.outage},
	} {
		if f.fanOutRound(round.version, round.how, round.down); t.Failed() {
			return
		}
	}
}

// all is every endpoint of the site, agents first.
func (f *fanOut) all() []*member {
	ms := slices.Clone(f.agents)
	for _, cs := range f.clients {
		ms = append(ms, cs...)
	}
	return ms
}

// firstRound updates every endpoint to pattern 1.0: agents from the
// origin (their first source refuses connections), clients from their
// agent.
func (f *fanOut) firstRound() {
	s, t := f.s, f.s.t
	t.Log("== first round")
	dead := "http://" + f.hangAddr + "/"
	for i, a := range f.agents {
		checkCategory(t, a.name, s.serverReport(a, a.updateNow()), category.Components, report.Updated, "origin",
			attempt{dead, failure.Unreachable})
		for _, c := range f.clients[i] {
			checkCategory(t, c.name, s.serverReport(c, c.updateNow()), category.Components, report.Updated, "agent:"+a.agentID)
		}
	}
}

// fanOutRound publishes version, has the server sync (which notifies),
// takes the server down at once with down, and checks that nothing was
// lost.
func (f *fanOut) fanOutRound(version, how string, down func(ntf string)) {
	s, t := f.s, f.s.t
	t.Logf("== fan-out of pattern %s, the server %s", version, how)
	s.waitConnected(f.all()...)
	s.publish("--component", "pattern", version)
	res := s.sync()
	if res.Notification == "" || res.Deployed["pattern"] != version {
		t.Fatalf("sync deployed %v, notification %q", res.Deployed, res.Notification)
	}
	start := time.Now()
	down(res.Notification)
	t.Logf("the server was down for %v", time.Since(start).Round(time.Millisecond))
	f.checkFanOut(res.Notification, version)
	f.checkNothingLost()
}

// outage stops the server until both agents have finished their run for
// notification ntf (they could not report it), then starts it again.
func (f *fanOut) outage(ntf string) {
	s := f.s
	s.server.stop(syscall.SIGTERM)
	for _, a := range f.agents {
		testkit.Eventually(s.t, time.Minute, a.name+"'s run for "+ntf, func() bool {
			for _, id := range a.localReportIDs() {
				if a.localReport(id).Notification == ntf {
					return true
				}
			}
			return false
		})
	}
	s.startServer()
}

// checkFanOut waits for every endpoint's run for notification ntf and
// checks it: agents from the origin after their hanging source, clients
// from their agent and only after both agents finished.
func (f *fanOut) checkFanOut(ntf, version string) {
	s, t := f.s, f.s.t
	hung := "http://" + f.hangAddr + "/"
	var agentsFinished time.Time
	for _, a := range f.agents {
		r := s.notified(a, ntf)
		checkComponentsOnly(t, a.name, r, version)
		checkCategory(t, a.name, r, category.Components, report.Updated, "origin", attempt{hung, failure.Unreachable})
		a.wantInstalled(category.Components, "pattern", version)
		if r.Finished.After(agentsFinished) {
			agentsFinished = r.Finished
		}
	}
	for i, cs := range f.clients {
		for _, c := range cs {
			r := s.notified(c, ntf)
			checkComponentsOnly(t, c.name, r, version)
			checkCategory(t, c.name, r, category.Components, report.Updated, "agent:"+f.agents[i].agentID)
			c.wantInstalled(category.Components, "pattern", version)
			if r.Started.Before(agentsFinished) {
				t.Errorf("%s ran at %v, before the agents finished (%v)", c.name, r.Started, agentsFinished)
			}
		}
	}
	n := s.settledNotification(ntf, func(n api.Notification) bool {
		return n.ClientsReleased != nil && n.Deliveries["agent"]["done"] == 2 && n.Deliveries["client"]["done"] == 6 && len(n.Deliveries) == 2
	})
	if n.ClientsReleased == nil || n.Deliveries["agent"]["done"] != 2 || n.Deliveries["client"]["done"] != 6 || len(n.Deliveries) != 2 {
		t.Errorf("notification %s: released %v, deliveries %v; want 2 agents and 6 clients done", ntf, n.ClientsReleased, n.Deliveries)
	}
}

// checkNothingLost checks that every report each endpoint keeps is at
// the server, once.
func (f *fanOut) checkNothingLost() {
	s, t := f.s, f.s.t
	for _, m := range f.all() {
		local := m.localReportIDs()
		var remote []string
		for _, r := range s.serverReports(m, 100) {
			remote = append(remote, r.ID)
		}
		slices.Sort(local)
		slices.Sort(remote)
		if !slices.Equal(local, remote) {
			t.Errorf("%s: reports kept %v, at the server %v", m.name, local, remote)
		}
	}
}
