// Package bigregistry fills a store with a large registry shaped like a
// real one, for the benchmarks and tests of the console's pages at scale
// (bench/console): endpoints on 100 sites of 10.k.0.0/16, each site with
// an update agent named by a policy entry; most endpoints seen within two
// days, every tenth 2-30 days ago; 95% with a last report (about 3%
// failed, every fifth behind the deployed pattern version). It writes
// through the store's bulk paths (CreateEndpoints, AddReports).
package bigregistry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/store"
)

// The registry's shape.
const (
	Agents = 100         // update agents, one per 10.k.0.0/16 site
	Newest = "19.103.00" // the deployed pattern version
	Older  = "19.101.00" // what endpoints that are behind have
	Engine = "12.5.1003"
	// Domain holds every endpoint (the server's first domain).
	Domain = "default"

	loadBatch    = 5000 // endpoints or reports per store call
	notSeenEvery = 10   // every 10th endpoint was last seen 2-30 days ago
)

// Clock is a store's clock (store.Options.Clock) that, while Load runs,
// gives each endpoint its last contact (the store reads its clock once
// per endpoint it creates); otherwise the real time.
type Clock struct {
	base    time.Time
	n       atomic.Int64
	loading atomic.Bool
}

// Now is the clock.
func (c *Clock) Now() time.Time {
	if !c.loading.Load() {
		return time.Now()
	}
	return c.base.Add(-age(int(c.n.Add(1) - 1)))
}

// age is how long ago endpoint i was last seen.
func age(i int) time.Duration {
	if i%notSeenEvery == 0 {
		return time.Duration(2+i%28)*24*time.Hour + time.Duration(i%1440)*time.Minute
	}
	return time.Duration(i%2880) * time.Minute
}

// site is the 10.k.0.0/16 network of endpoint i.
func site(i int) int { return i % Agents }

// Address is endpoint i's address.
func Address(i int) string {
	j := i / Agents
	return fmt.Sprintf("10.%d.%d.%d", site(i), j/250, j%250+1)
}

// Hostname is endpoint i's: a site, a kind of machine, a number.
func Hostname(i int) string {
	kinds := []string{"ws", "lt", "srv", "kiosk"}
	return fmt.Sprintf("site%02d-%s-%06d.corp.example", site(i), kinds[i%len(kinds)], i)
}

// AgentID is the agent id of site k's update agent (endpoint k).
func AgentID(k int) string { return fmt.Sprintf("ua-%03d", k) }

// Load adds n endpoints (the first Agents of them update agents) to the
// domain Domain, with their last reports, and records the deployed
// component versions. With clock (the store's, may be nil) the endpoints'
// last contacts are spread as the package says. It returns how many
// reports it stored.
func Load(ctx context.Context, st store.Store, n int, clock *Clock) (int, error) {
	for _, c := range [][2]string{{"pattern", Newest}, {"engine", Engine}} {
		if _, err := st.RecordComponentSync(ctx, c[0], c[1]); err != nil {
			return 0, err
		}
	}
	if clock != nil {
		clock.base = time.Now()
		clock.loading.Store(true)
		defer clock.loading.Store(false)
	}
	reports := 0
	var batch []store.Report
	for lo := 0; lo < n; lo += loadBatch {
		es := make([]store.Endpoint, 0, loadBatch)
		for i := lo; i < min(n, lo+loadBatch); i++ {
			e := store.Endpoint{Hostname: Hostname(i), Domain: Domain, Addresses: []string{Address(i)},
				Installed: store.Installed{category.Components: {"pattern": version(i), "engine": Engine}}}
			_, e.CredentialHash, _ = store.NewSecret("b")
			if i < Agents {
				e.Role, e.AgentID, e.AgentURL = store.RoleAgent, AgentID(i), "https://"+Address(i)+":8080/"
			}
			es = append(es, e)
		}
		if clock != nil {
			clock.n.Store(int64(lo))
		}
		if err := st.CreateEndpoints(ctx, es); err != nil {
			return reports, err
		}
		batch = batch[:0]
		for k, e := range es {
			if i := lo + k; i%20 != 0 { // 95% reported
				batch = append(batch, lastReport(i, e))
			}
		}
		if err := st.AddReports(ctx, batch); err != nil {
			return reports, err
		}
		reports += len(batch)
	}
	return reports, nil
}

// Policy is a policy sending each site's clients to its agent first.
func Policy(serverURL string) string {
	var doc strings.Builder
	fmt.Fprintf(&doc, "origin: https://origin.invalid/\nserver: %s\nclients:\n  source: customized\ncustom_sources:\n", serverURL)
	for k := range Agents {
		fmt.Fprintf(&doc, "  - addresses: 10.%d.0.0/16\n    source: agent:%s\n", k, AgentID(k))
	}
	return doc.String()
}

// version is endpoint i's pattern version: every fifth is behind.
func version(i int) string {
	if i%5 == 0 {
		return Older
	}
	return Newest
}

// lastReport is endpoint i's last run: about 3% failed; the components
// from its site's agent, or (every seventh) from the server.
func lastReport(i int, e store.Endpoint) store.Report {
	at := e.LastSeen
	result, src := "ok", "agent:"+AgentID(site(i))
	if i%33 == 0 {
		result = "failed"
	}
	if i%7 == 0 {
		src = "server"
	}
	doc, _ := json.Marshal(map[string]any{"endpoint": e.ID, "trigger": "scheduled", "result": result,
		"categories": map[string]any{
			"components":      map[string]any{"result": "updated", "source": src, "bytes": 48 << 20},
			"domain_settings": map[string]any{"result": "up-to-date", "source": "server"},
			"programs":        map[string]any{"result": "up-to-date", "source": "server"}}})
	return store.Report{EndpointID: e.ID, ReceivedAt: at, Trigger: "scheduled", Started: at.Add(-time.Minute), Finished: at,
		Result: result, Document: doc,
		Categories: []store.CategoryReport{
			{Category: category.Components, Result: "updated", Source: src, Bytes: 48 << 20,
				VersionsBefore: map[string]string{"pattern": Older, "engine": Engine},
				VersionsAfter:  map[string]string{"pattern": version(i), "engine": Engine}},
			{Category: category.DomainSettings, Result: "up-to-date", Source: "server"},
			{Category: category.Programs, Result: "up-to-date", Source: "server"},
		}}
}
