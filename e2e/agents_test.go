//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
)

// agentsSite is the site of TestAgentRules: two update agents (ua-1 at
// 10.21.0.1, ua-2 at 10.21.0.2), a client at 10.22.0.1, and an honest
// mirror.
type agentsSite struct {
	s                   *site
	m                   *mirrorSource
	ua1, ua2, c1        *member
	ds, comps, programs category.Category
}

// TestAgentRules exercises, over the network, the plans of update agents
// and the standard sources (docs/update-process.md): an agent never lists
// itself and its clients update from it (all three categories);
// clients.source standard; agents.source standard; agents.only_from_server;
// and the agents.always_from_standard_source notification flow: the
// notified agents go to the server disregarding their lists, then to the
// origin only for the agent whose list starts with it, and the clients,
// held until both agents reported, update from their agent.
func TestAgentRules(t *testing.T) {
	t.Parallel()
	a := &agentsSite{s: newSite(t, 12, siteOptions{}), ds: category.DomainSettings, comps: category.Components, programs: category.Programs}
	s := a.s
	a.m = s.mirror("mirror")
	s.setPolicy(a.policy("clients: {source: customized}\nagents: {source: customized}\n", a.selfEntries()))
	a.ua1 = s.enroll("agent-1", memberOptions{Address: "10.21.0.1", AgentID: "ua-1"})
	a.ua2 = s.enroll("agent-2", memberOptions{Address: "10.21.0.2", AgentID: "ua-2"})
	a.c1 = s.enroll("client-1", memberOptions{Address: "10.22.0.1"})
	for _, phase := range []func(){a.throughAgents, a.agentDown, a.clientsStandard, a.agentsStandard, a.onlyFromServer, a.alwaysFromStandardSource} {
		if phase(); t.Failed() {
			return
		}
	}
}

// policy is a policy of the site with the given source options, every
// fallback_to_server on, and the given custom_sources entries.
func (a *agentsSite) policy(options, entries string) string {
	return fmt.Sprintf("origin: %s\nserver: %s\n%sfallback_to_server: {components: true, domain_settings: true, programs: true}\ncustom_sources:\n%s",
		a.s.originURL, a.s.serverURL, options, entries)
}

// selfEntries lists ua-1 first for every agent (ua-1 included) and for
// the client, then the mirror.
func (a *agentsSite) selfEntries() string {
	return fmt.Sprintf("  - {addresses: 10.21.0.0/16, source: \"agent:ua-1\"}\n  - {addresses: 10.21.0.0/16, source: %q}\n"+
		"  - {addresses: 10.22.0.0/16, source: \"agent:ua-1\"}\n  - {addresses: 10.22.0.0/16, source: %q}\n", a.m.url, a.m.url)
}

// throughAgents: ua-1 skips itself and updates components from the
// mirror (domain settings and programs from the server: a URL entry
// cannot serve them); ua-2 and the client update every category from
// ua-1.
func (a *agentsSite) throughAgents() {
	s, t := a.s, a.s.t
	t.Log("== an agent never lists itself; clients and agents update from an agent")
	custom := plan.RuleCustomized
	l1 := a.ua1.updateNow()
	checkPlan(t, "ua-1", l1, custom, a.comps, a.m.url, "server")
	checkPlan(t, "ua-1", l1, custom, a.ds, "server")
	checkPlan(t, "ua-1", l1, custom, a.programs, "server")
	r1 := s.serverReport(a.ua1, l1)
	checkCategory(t, "ua-1", r1, a.comps, report.Updated, a.m.url)
	checkCategory(t, "ua-1", r1, a.ds, report.Updated, "server")
	checkCategory(t, "ua-1", r1, a.programs, report.Updated, "server")
	for _, m := range []*member{a.ua2, a.c1} {
		l := m.updateNow()
		checkPlan(t, m.name, l, custom, a.comps, "agent:ua-1", a.m.url, "server")
		checkPlan(t, m.name, l, custom, a.ds, "agent:ua-1", "server")
		checkPlan(t, m.name, l, custom, a.programs, "agent:ua-1", "server")
		r := s.serverReport(m, l)
		for _, cat := range []category.Category{a.comps, a.ds, a.programs} {
			checkCategory(t, m.name, r, cat, report.Updated, "agent:ua-1")
		}
		m.wantInstalled(a.comps, "pattern", "1.0")
		m.wantInstalled(a.programs, "agent-core", "1.0")
	}
}

// agentDown: with ua-1 stopped (its address accepting connections and
// dropping them), the client fails over category by category: domain
// settings and programs to the server, components to the mirror. ua-1,
// unable to update at connection level for the first category (domain
// settings: the site repository), is not contacted again in the same run
// (components and programs: the vendor repository).
func (a *agentsSite) agentDown() {
	s, t := a.s, a.s.t
	t.Log("== a stopped agent: failover per category, a source failed at connection level not contacted again")
	a.ua1.proc.stop(syscall.SIGTERM)
	r := refuse(t, a.ua1.listen)
	l := a.c1.updateNow()
	rc := s.serverReport(a.c1, l)
	down := attempt{"agent:ua-1", failure.Unreachable}
	checkCategory(t, "client", rc, a.ds, report.UpToDate, "server", down)
	checkCategory(t, "client", rc, a.comps, report.UpToDate, a.m.url, down)
	checkCategory(t, "client", rc, a.programs, report.UpToDate, "server", down)
	for cat, cached := range map[category.Category]bool{a.ds: false, a.comps: true, a.programs: true} {
		if rc := rc.Category(cat); rc != nil && len(rc.Attempts) == 1 && rc.Attempts[0].Cached != cached {
			t.Errorf("client, %s: the attempt of the stopped agent is cached=%v, want %v (domain settings are updated first)", cat, !cached, cached)
		}
	}
	// Only the domain settings' probe (of the site repository) reached
	// the agent's address, none of the vendor repository's. A connection
	// that carried no request is the probe's own: it asks for the next
	// root and the timestamp at once, and when the first fails it cancels
	// the second, which may not have been written yet (the vendor
	// attempts are cached, checked above).
	reqs := r.requests()
	for _, line := range reqs {
		if line != "" && !strings.HasPrefix(line, "GET /site/") {
			t.Errorf("the client contacted the stopped agent again for %q; all requests: %q", line, reqs)
		}
	}
	if !slices.ContainsFunc(reqs, func(l string) bool { return l != "" }) {
		t.Error("the client never contacted the stopped agent")
	}
	r.close()
	a.ua1.start()
}

// clientsStandard: clients.source standard sends the client to the
// server (then the origin, with download_from_origin), its list
// disregarded; agents keep their customized lists.
func (a *agentsSite) clientsStandard() {
	s, t := a.s, a.s.t
	t.Log("== clients.source standard")
	installPolicy(s, a.policy("download_from_origin: true\nclients: {source: standard}\nagents: {source: customized}\n", a.selfEntries()),
		a.ua1, a.ua2, a.c1)
	lc := a.c1.updateNow()
	checkPlan(t, "client", lc, plan.RuleStandard, a.comps, "server", "origin")
	checkPlan(t, "client", lc, plan.RuleStandard, a.ds, "server")
	checkPlan(t, "client", lc, plan.RuleStandard, a.programs, "server")
	rc := s.serverReport(a.c1, lc)
	for _, cat := range []category.Category{a.comps, a.ds, a.programs} {
		checkCategory(t, "client", rc, cat, report.UpToDate, "server")
	}
	l2 := a.ua2.updateNow()
	checkPlan(t, "ua-2", l2, plan.RuleCustomized, a.comps, "agent:ua-1", a.m.url, "server")
	checkCategory(t, "ua-2", s.serverReport(a.ua2, l2), a.comps, report.UpToDate, "agent:ua-1")
}

// agentsStandard: agents.source standard sends agents to the server
// (without download_from_origin, not to the origin); clients keep their
// customized lists.
func (a *agentsSite) agentsStandard() {
	s, t := a.s, a.s.t
	t.Log("== agents.source standard")
	installPolicy(s, a.policy("download_from_origin: false\nclients: {source: customized}\nagents: {source: standard}\n", a.selfEntries()),
		a.ua1, a.ua2, a.c1)
	l2 := a.ua2.updateNow()
	for _, cat := range []category.Category{a.comps, a.ds, a.programs} {
		checkPlan(t, "ua-2", l2, plan.RuleStandard, cat, "server")
		checkCategory(t, "ua-2", s.serverReport(a.ua2, l2), cat, report.UpToDate, "server")
	}
	lc := a.c1.updateNow()
	checkPlan(t, "client", lc, plan.RuleCustomized, a.comps, "agent:ua-1", a.m.url, "server")
	checkCategory(t, "client", s.serverReport(a.c1, lc), a.comps, report.UpToDate, "agent:ua-1")
}

// onlyFromServer: agents.only_from_server sends agents to the server for
// every category, even with a customized list and download_from_origin.
func (a *agentsSite) onlyFromServer() {
	s, t := a.s, a.s.t
	t.Log("== agents.only_from_server")
	installPolicy(s, a.policy("download_from_origin: true\nclients: {source: customized}\nagents: {source: customized, only_from_server: true}\n",
		a.selfEntries()), a.ua1, a.ua2, a.c1)
	l2 := a.ua2.updateNow()
	r2 := s.serverReport(a.ua2, l2)
	for _, cat := range []category.Category{a.comps, a.ds, a.programs} {
		checkPlan(t, "ua-2", l2, plan.RuleOnlyFromServer, cat, "server")
		checkCategory(t, "ua-2", r2, cat, report.UpToDate, "server")
	}
}

// alwaysEntries start ua-1's list with the origin, ua-2's with the
// mirror (the origin second), and send the client to ua-1.
func (a *agentsSite) alwaysEntries() string {
	return fmt.Sprintf("  - {addresses: 10.21.0.1/32, source: %q}\n  - {addresses: 10.21.0.0/16, source: %q}\n"+
		"  - {addresses: 10.21.0.0/16, source: %q}\n  - {addresses: 10.22.0.0/16, source: \"agent:ua-1\"}\n",
		a.s.originURL, a.m.url, a.s.originURL)
}

// alwaysFromStandardSource: with agents.always_from_standard_source,
// manual runs walk the lists, but a notification sends each agent to the
// server first, its list disregarded. The server's copy of the vendor
// repository is corrupted (its timestamp.json), so the server is unable
// to update: ua-1, whose list starts with the origin, goes on to the
// origin; ua-2 (the origin second in its list, download_from_origin off)
// quits although its list's mirror would have served it. The client,
// released once both agents reported, updates from ua-1.
func (a *agentsSite) alwaysFromStandardSource() {
	s, t := a.s, a.s.t
	t.Log("== agents.always_from_standard_source: manual runs walk the list")
	installPolicy(s, a.policy("download_from_origin: false\nclients: {source: customized}\n"+
		"agents: {source: customized, always_from_standard_source: true}\n", a.alwaysEntries()), a.ua1, a.ua2, a.c1)
	l1 := a.ua1.updateNow()
	checkPlan(t, "ua-1", l1, plan.RuleCustomized, a.comps, "origin", a.m.url, "server")
	checkCategory(t, "ua-1", s.serverReport(a.ua1, l1), a.comps, report.UpToDate, "origin")
	l2 := a.ua2.updateNow()
	checkPlan(t, "ua-2", l2, plan.RuleCustomized, a.comps, a.m.url, "origin", "server")
	checkCategory(t, "ua-2", s.serverReport(a.ua2, l2), a.comps, report.UpToDate, a.m.url)

	t.Log("== agents.always_from_standard_source: the notified flow")
	ntf := a.releaseWithBrokenServer()
	r1, r2, rc := s.notified(a.ua1, ntf), s.notified(a.ua2, ntf), s.notified(a.c1, ntf)
	for who, r := range map[string]*report.Report{"ua-1": r1, "ua-2": r2, "client": rc} {
		checkComponentsOnly(t, who, r, "2.0")
	}
	checkPlan(t, "ua-1", a.ua1.localReport(r1.ID), plan.RuleAlwaysFromServer, a.comps, "server", "origin")
	checkCategory(t, "ua-1", r1, a.comps, report.Updated, "origin", attempt{"server", failure.Verification})
	checkPlan(t, "ua-2", a.ua2.localReport(r2.ID), plan.RuleAlwaysFromServer, a.comps, "server")
	checkCategory(t, "ua-2", r2, a.comps, report.Failed, "", attempt{"server", failure.Verification})
	checkPlan(t, "client", a.c1.localReport(rc.ID), plan.RuleCustomized, a.comps, "agent:ua-1", "server")
	checkCategory(t, "client", rc, a.comps, report.Updated, "agent:ua-1")
	a.ua1.wantInstalled(a.comps, "pattern", "2.0")
	a.ua2.wantInstalled(a.comps, "pattern", "1.0")
	a.c1.wantInstalled(a.comps, "pattern", "2.0")
	if rc.Started.Before(r1.Finished) || rc.Started.Before(r2.Finished) {
		t.Errorf("the client ran at %v, before the agents finished (%v, %v)", rc.Started, r1.Finished, r2.Finished)
	}
	settled := func(n api.Notification) bool {
		return n.AgentsFirst && n.Deliveries["agent"]["done"] == 1 && n.Deliveries["agent"]["failed"] == 1 && n.Deliveries["client"]["done"] == 1
	}
	if n := s.settledNotification(ntf, settled); !settled(n) {
		t.Errorf("notification %s: agents first %v, deliveries %v; want agents first, agents 1 done 1 failed, client done", ntf, n.AgentsFirst, n.Deliveries)
	}
}

// releaseWithBrokenServer holds the pattern, publishes pattern 2.0 at
// the origin and has the server mirror it (a held component is not
// deployed: nobody is notified), corrupts the server's copy of the
// vendor timestamp, then releases the hold, which deploys 2.0 and
// notifies the endpoints. It returns the notification's id.
func (a *agentsSite) releaseWithBrokenServer() string {
	s, t := a.s, a.s.t
	s.waitConnected(a.ua1, a.ua2, a.c1)
	s.admin("server", "components", "hold", "pattern")
	s.publish("--component", "pattern", "2.0")
	if res := s.sync(); res.Notification != "" || len(res.Deployed) != 0 {
		t.Fatalf("sync of a held component deployed %v, notification %q", res.Deployed, res.Notification)
	}
	ts := filepath.Join(s.serverDir, "content", "vendor", "metadata", "timestamp.json")
	b, err := os.ReadFile(ts)
	if err != nil {
		t.Fatal(err)
	}
	// Same length, one signature byte changed: a bad signature.
	i := strings.Index(string(b), `"sig"`)
	if i < 0 {
		t.Fatalf("no signature in %s", ts)
	}
	i = strings.IndexAny(string(b[i+6:]), "0123456789abcdef") + i + 6
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	if err := os.WriteFile(ts, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var c api.Component
	s.call(http.MethodPost, "/api/v1/content/components/pattern/release", nil, nil, &c)
	if c.Deployed != "2.0" || c.Notification == "" {
		t.Fatalf("release: deployed %q, notification %q", c.Deployed, c.Notification)
	}
	return c.Notification
}
