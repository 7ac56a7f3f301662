package server

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
)

// registryView is what the console's dashboard and its endpoint filters
// by state and by agent read: the agent report (without members), each
// endpoint's state and each agent's endpoints. Computing it reads every
// endpoint and its last report and evaluates the policy for each.
type registryView struct {
	// report has, in each group, the first viewMembers members by
	// hostname (a page's worth: the endpoint list has them all).
	report  *api.AgentReport
	states  map[string]string          // endpoint id: api.StateUpToDate, ...
	members map[string][]string        // agent id: the endpoints whose list starts with it
	own     map[string]api.AgentMember // update agents' own membership, by endpoint id
	// rows are the endpoints classified, with what the endpoint list
	// sorts them by, and orders their indexes in each of its sorts
	// (viewPage).
	rows   []viewRow
	orders map[string][]int32
	// lists are the filtered orders pages asked for (viewList).
	listsMu sync.Mutex
	lists   map[viewListKey][]int32
	at      time.Time     // when the computation started
	cost    time.Duration // how long it took
}

// Limits of the registry view's reuse.
const (
	// viewMembers is how many members of each group the view keeps.
	viewMembers = 20
	// viewFreshBelow: a view computed faster than this is recomputed for
	// every page (small registries: every page is exact).
	viewFreshBelow = 200 * time.Millisecond
	// viewMaxAge: a costlier view is reused for this long, then recomputed
	// in the background while pages keep showing it (BENCHMARKS.md,
	// "Console": seconds with 100,000 endpoints).
	viewMaxAge = 30 * time.Second
)

// viewCache keeps the last registry view. A page waits for a computation
// only when there is no view yet, when the last one was cheap, or after a
// change made through the API or the console (invalidate); otherwise an
// expired view is recomputed in the background and the pages meanwhile
// show the one they have, with its time.
type viewCache struct {
	compute func(ctx context.Context) (*registryView, error)
	now     func() time.Time
	log     *slog.Logger
	ctx     context.Context // background computations; cancelled by close
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu          sync.Mutex
	cur         *registryView
	invalidated bool
	refreshing  bool // a background computation runs
}

func newViewCache(compute func(ctx context.Context) (*registryView, error), now func() time.Time, log *slog.Logger) *viewCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &viewCache{compute: compute, now: now, log: log, ctx: ctx, cancel: cancel}
}

// get returns a registry view, as the type's comment says.
func (c *viewCache) get(ctx context.Context) (*registryView, error) {
	c.mu.Lock()
	v := c.cur
	switch {
	case v == nil || v.cost < viewFreshBelow || c.invalidated:
		c.mu.Unlock()
		return c.computeNow(ctx)
	case c.now().Sub(v.at) >= viewMaxAge && !c.refreshing:
		c.refreshing = true
		c.wg.Add(1)
		go c.refresh()
	}
	c.mu.Unlock()
	return v, nil
}

// computeNow computes a view for a waiting page and keeps it.
func (c *viewCache) computeNow(ctx context.Context) (*registryView, error) {
	c.mu.Lock()
	c.invalidated = false
	c.mu.Unlock()
	v, err := c.compute(ctx)
	if err != nil {
		return nil, err
	}
	c.keep(v)
	return v, nil
}

// refresh recomputes the view in the background.
func (c *viewCache) refresh() {
	defer c.wg.Done()
	v, err := c.compute(c.ctx)
	c.mu.Lock()
	c.refreshing = false
	c.mu.Unlock()
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Error("console: recompute the registry view", "err", err)
		}
		return
	}
	c.keep(v)
}

// keep makes v the current view unless a newer one is.
func (c *viewCache) keep(v *registryView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || !v.at.Before(c.cur.at) {
		c.cur = v
	}
}

// invalidate makes the next page wait for a new view (a change was made).
func (c *viewCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidated = true
}

// close stops a background computation and waits for it.
func (c *viewCache) close() {
	c.cancel()
	c.wg.Wait()
}

// registryView computes the view from the agent report with members.
func (s *Server) registryView(ctx context.Context) (*registryView, error) {
	start := s.now()
	began := time.Now()
	var eps []store.Endpoint
	rep, err := s.agentReportSeeing(ctx, true, func(r []store.Endpoint) { eps = r })
	if err != nil {
		return nil, err
	}
	v := &registryView{states: map[string]string{}, members: map[string][]string{}, own: map[string]api.AgentMember{}, at: start}
	agents := map[string]bool{}
	for _, g := range rep.Agents {
		if g.EndpointID != "" {
			agents[g.EndpointID] = true
		}
	}
	strip := func(g *api.AgentAnalysis) {
		ids := make([]string, len(g.Members))
		for i, m := range g.Members {
			v.states[m.EndpointID] = m.State
			ids[i] = m.EndpointID
			if agents[m.EndpointID] {
				v.own[m.EndpointID] = m
			}
		}
		if g.AgentID != "" {
			v.members[g.AgentID] = ids
		}
		slices.SortStableFunc(g.Members, func(a, b api.AgentMember) int { return strings.Compare(a.Hostname, b.Hostname) })
		g.Members = slices.Clip(g.Members[:min(len(g.Members), viewMembers)])
	}
	strip(&rep.Unassigned)
	for i := range rep.Agents {
		strip(&rep.Agents[i])
	}
	v.rows, v.orders = viewRows(eps, v.states, v.members)
	v.report, v.cost = rep, time.Since(began)
	return v, nil
}
