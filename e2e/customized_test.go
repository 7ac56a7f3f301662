//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// customized is the site of TestCustomizedList: clients whose
// Customized Update Source Lists name URL sources (two honest mirrors, a
// dead address, a source answering 404, a stale mirror) and the origin.
type customized struct {
	s                   *site
	m1, m2              *mirrorSource
	dead, empty, broken string // URLs: nothing listens; every file is 404; every answer is 500
	staleAddr, stale    string // the stale mirror (served from phase 2 on)
	originEntry         string // the origin's URL spelled another way
	x, y, f, b, o, sch  *member
	ds, comps, programs category.Category
}

// TestCustomizedList exercises, over the network, the customized plan of
// clients (docs/update-process.md): list order and first entry wins,
// de-duplication, failover past a dead source, a 404 source, a failing
// one (500) and a stale one, fallback_to_server on and off per category (components to the
// origin when off, domain settings and programs quitting), URL entries
// never used for domain settings or programs, the origin as a list
// entry tried once; and the three triggers (a scheduled run, manual runs,
// notified runs).
func TestCustomizedList(t *testing.T) {
	t.Parallel()
	c := &customized{s: newSite(t, 11, siteOptions{}), ds: category.DomainSettings, comps: category.Components, programs: category.Programs}
	s := c.s
	c.m1, c.m2 = s.mirror("mirror-1"), s.mirror("mirror-2")
	c.dead, c.empty, c.broken = "http://"+s.deadAddr()+"/", s.emptySource(), s.brokenSource()
	c.staleAddr = s.deadAddr() // nothing listens until phase 2
	c.stale = "http://" + c.staleAddr + "/"
	c.originEntry = "HTTP://" + s.originListen // scheme case and trailing slash differ: still the origin
	s.setPolicy(c.policy("{components: true, domain_settings: true, programs: true}", false))
	c.x = s.enroll("client-x", memberOptions{Address: "10.11.1.5"})
	c.y = s.enroll("client-y", memberOptions{Address: "10.11.2.5"})
	c.f = s.enroll("client-f", memberOptions{Address: "10.12.0.5"})
	c.b = s.enroll("client-b", memberOptions{Address: "10.13.0.5"})
	c.o = s.enroll("client-o", memberOptions{Address: "10.14.0.5"})
	// Its first scheduled run comes within a millisecond of its start.
	c.sch = s.enroll("client-s", memberOptions{Address: "10.11.1.6", Config: map[string]any{"schedule": map[string]any{"jitter": "1ms"}}})
	c.listOrderAndFailover()
	if t.Failed() {
		return
	}
	c.notifiedStale()
	if t.Failed() {
		return
	}
	c.componentsFallbackOff()
	if t.Failed() {
		return
	}
	c.everyFallbackOff()
}

// policy is the site's policy with the given fallback_to_server and
// download_from_origin settings.
func (c *customized) policy(fallback string, downloadFromOrigin bool) string {
	s := c.s
	return fmt.Sprintf(`origin: %s
server: %s
download_from_origin: %v
clients: {source: customized}
fallback_to_server: %s
custom_sources:
  - {addresses: 10.11.1.0/24, source: %q}
  - {addresses: 10.11.0.0/16, source: %q}
  - {addresses: 10.11.2.0/24, source: %q}
  - {addresses: 10.11.0.0/16, source: %q}
  - {addresses: 10.12.0.0/16, source: %q}
  - {addresses: 10.12.0.0/16, source: %q}
  - {addresses: 10.12.0.0/16, source: %q}
  - {addresses: 10.12.0.0/16, source: %q}
  - {addresses: 10.12.0.0/16, source: %q}
  - {addresses: 10.13.0.0/16, source: %q}
  - {addresses: 10.14.0.0/16, source: %q}
  - {addresses: 10.14.0.0/16, source: %q}
`, s.originURL, s.serverURL, downloadFromOrigin, fallback,
		c.m1.url, c.m2.url, c.m1.url, c.m1.url, // x: m1, m2 (the 4th entry repeats m1: dropped); y: m2, m1
		c.dead, c.empty, c.broken, c.stale, c.m1.url, // f
		c.dead,                // b
		c.dead, c.originEntry) // o
}

// listOrderAndFailover: the first run of every client, all sources at
// pattern 1.0 except the dead ones.
func (c *customized) listOrderAndFailover() {
	s, t := c.s, c.s.t
	t.Log("== list order, first entry wins, failover, fallback to the server")
	custom := plan.RuleCustomized
	lx := c.x.updateNow()
	checkPlan(t, "x", lx, custom, c.comps, c.m1.url, c.m2.url, "server")
	checkPlan(t, "x", lx, custom, c.ds, "server") // URL entries never serve domain settings or programs
	checkPlan(t, "x", lx, custom, c.programs, "server")
	rx := s.serverReport(c.x, lx)
	checkCategory(t, "x", rx, c.comps, report.Updated, c.m1.url)
	checkCategory(t, "x", rx, c.ds, report.Updated, "server")
	checkCategory(t, "x", rx, c.programs, report.Updated, "server")
	c.x.wantInstalled(c.comps, "pattern", "1.0")
	c.x.wantInstalled(c.programs, "agent-core", "1.0")

	ly := c.y.updateNow()
	checkPlan(t, "y", ly, custom, c.comps, c.m2.url, c.m1.url, "server")
	checkCategory(t, "y", s.serverReport(c.y, ly), c.comps, report.Updated, c.m2.url)
	c.y.wantInstalled(c.comps, "pattern", "1.0")

	lf := c.f.updateNow()
	checkPlan(t, "f", lf, custom, c.comps, c.dead, c.empty, c.broken, c.stale, c.m1.url, "server")
	checkCategory(t, "f", s.serverReport(c.f, lf), c.comps, report.Updated, c.m1.url, attempt{c.dead, failure.Unreachable},
		attempt{c.empty, failure.NotFound}, attempt{c.broken, failure.HTTPError}, attempt{c.stale, failure.Unreachable})

	lb := c.b.updateNow()
	checkPlan(t, "b", lb, custom, c.comps, c.dead, "server")
	checkCategory(t, "b", s.serverReport(c.b, lb), c.comps, report.Updated, "server", attempt{c.dead, failure.Unreachable})

	lo := c.o.updateNow()
	checkPlan(t, "o", lo, custom, c.comps, c.dead, "origin", "server")
	checkCategory(t, "o", s.serverReport(c.o, lo), c.comps, report.Updated, "origin", attempt{c.dead, failure.Unreachable})
	c.o.wantInstalled(c.comps, "pattern", "1.0")

	rs := s.findReport(c.sch, 30*time.Second, "client-s's scheduled run", func(r *report.Report) bool { return r.Trigger == plan.Scheduled })
	if len(rs.Categories) != 3 {
		t.Errorf("scheduled run %s updated %d categories, want 3", rs.ID, len(rs.Categories))
	}
	checkCategory(t, "s", rs, c.comps, report.Updated, c.m1.url)
	checkCategory(t, "s", rs, c.ds, report.Updated, "server")
	checkCategory(t, "s", rs, c.programs, report.Updated, "server")
}

// notifiedStale: a stale mirror (a copy of pattern 1.0) comes up, the
// origin publishes pattern 2.0, the honest mirrors copy it and the
// server syncs, which notifies every client: the notified runs update
// components only, and the stale mirror is passed over, because it is
// older than the announced version and then than what the client trusts.
func (c *customized) notifiedStale() {
	s, t := c.s, c.s.t
	t.Log("== stale source, notify-components")
	staleDir := filepath.Join(s.dir, "mirror-stale")
	if err := testkit.CopyTree(filepath.Join(c.m1.dir, "published"), filepath.Join(staleDir, "published")); err != nil {
		t.Fatal(err)
	}
	serveTree(t, "mirror-stale", staleDir, c.staleAddr)
	s.waitConnected(c.x, c.y, c.f, c.b, c.o, c.sch)
	s.publish("--component", "pattern", "2.0")
	c.m1.refresh()
	c.m2.refresh()
	res := s.sync()
	if res.Notification == "" || res.Deployed["pattern"] != "2.0" {
		t.Fatalf("sync deployed %v, notification %q; want pattern 2.0 and a notification", res.Deployed, res.Notification)
	}
	want := map[*member][]any{
		c.x:   {c.m1.url},
		c.sch: {c.m1.url},
		c.y:   {c.m2.url},
		c.f: {c.m1.url, attempt{c.dead, failure.Unreachable}, attempt{c.empty, failure.NotFound},
			attempt{c.broken, failure.HTTPError}, attempt{c.stale, failure.Stale}},
		c.b: {"server", attempt{c.dead, failure.Unreachable}},
		c.o: {"origin", attempt{c.dead, failure.Unreachable}},
	}
	for m, w := range want {
		rep := s.notified(m, res.Notification)
		checkComponentsOnly(t, m.name, rep, "2.0")
		var as []attempt
		for _, a := range w[1:] {
			as = append(as, a.(attempt))
		}
		checkCategory(t, m.name, rep, c.comps, report.Updated, w[0].(string), as...)
		m.wantInstalled(c.comps, "pattern", "2.0")
	}
	settled := func(n api.Notification) bool { return n.Deliveries["client"]["done"] == 6 }
	if n := s.settledNotification(res.Notification, settled); !settled(n) {
		t.Errorf("notification %s: deliveries %v, want 6 clients done", n.ID, n.Deliveries)
	}
	lf := c.f.updateNow() // the stale mirror is now older than what f trusts
	checkCategory(t, "f", s.serverReport(c.f, lf), c.comps, report.UpToDate, c.m1.url, attempt{c.dead, failure.Unreachable},
		attempt{c.empty, failure.NotFound}, attempt{c.broken, failure.HTTPError}, attempt{c.stale, failure.Stale})
}

// componentsFallbackOff: fallback_to_server off for components and
// programs, on for domain settings: components go to the origin when it
// is not in the list (b) and stay at its place when it is (o); domain
// settings still come from the server; programs quit.
func (c *customized) componentsFallbackOff() {
	s, t := c.s, c.s.t
	t.Log("== fallback_to_server off for components and programs, on for domain settings")
	installPolicy(s, c.policy("{components: false, domain_settings: true, programs: false}", false), c.b, c.o, c.x)
	custom := plan.RuleCustomized
	lb := c.b.updateNow()
	checkPlan(t, "b", lb, custom, c.comps, c.dead, "origin")
	checkPlan(t, "b", lb, custom, c.ds, "server")
	checkPlan(t, "b", lb, custom, c.programs)
	rb := s.serverReport(c.b, lb)
	checkCategory(t, "b", rb, c.comps, report.UpToDate, "origin", attempt{c.dead, failure.Unreachable})
	checkCategory(t, "b", rb, c.ds, report.UpToDate, "server")
	checkFailedNoSource(t, "b", rb, c.programs)

	lo := c.o.updateNow()
	checkPlan(t, "o", lo, custom, c.comps, c.dead, "origin")
	checkCategory(t, "o", s.serverReport(c.o, lo), c.comps, report.UpToDate, "origin", attempt{c.dead, failure.Unreachable})

	lx := c.x.updateNow()
	checkPlan(t, "x", lx, custom, c.comps, c.m1.url, c.m2.url, "origin")
	checkCategory(t, "x", s.serverReport(c.x, lx), c.comps, report.UpToDate, c.m1.url)
}

// everyFallbackOff: fallback_to_server off for every category and
// download_from_origin on: domain settings quit (URL entries cannot
// serve them); the origin, already in o's list, is not added again, so
// with the origin down it is tried once and components quit.
func (c *customized) everyFallbackOff() {
	s, t := c.s, c.s.t
	t.Log("== fallback_to_server off everywhere, download_from_origin on")
	installPolicy(s, c.policy("{components: false, domain_settings: false, programs: false}", true), c.x, c.o)
	custom := plan.RuleCustomized
	lx := c.x.updateNow()
	checkPlan(t, "x", lx, custom, c.ds)
	checkPlan(t, "x", lx, custom, c.comps, c.m1.url, c.m2.url, "origin")
	rx := s.serverReport(c.x, lx)
	checkFailedNoSource(t, "x", rx, c.ds)
	checkFailedNoSource(t, "x", rx, c.programs)
	checkCategory(t, "x", rx, c.comps, report.UpToDate, c.m1.url)

	s.origin.stop(syscall.SIGTERM)
	lo := c.o.updateNow()
	checkPlan(t, "o", lo, custom, c.comps, c.dead, "origin")
	ro := s.serverReport(c.o, lo)
	checkCategory(t, "o", ro, c.comps, report.Failed, "", attempt{c.dead, failure.Unreachable}, attempt{"origin", failure.Unreachable})
	checkFailedNoSource(t, "o", ro, c.ds)
	c.o.wantInstalled(c.comps, "pattern", "2.0")
}
