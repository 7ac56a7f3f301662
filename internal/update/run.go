// Package update runs the update process of docs/update-process.md for one
// endpoint: for each category of a plan it walks the sources in order
// (with fast ordered failover), takes the first source that can bring the
// category up to date, verifies everything against the trusted metadata,
// installs atomically, and reports what happened for every source.
package update

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/trust"
)

// Resolver turns a plan's source into the base URLs of its source tree,
// in the order they are tried: the server and origin URLs of the policy,
// an update agent's URL from the agent directory, a URL entry as written.
// A source has one URL, except the server of a site with several
// management servers: the one logical `server` source fails over across
// its URLs (docs/update-process.md). An agent missing from the directory
// is failure.NotFound.
type Resolver func(src policy.Source) ([]string, error)

// URLKey names URL u of a source that has several (Resolver): the
// connection-level failures of each URL are remembered apart (Health)
// under this key, and its errors are named by it.
func URLKey(src policy.Source, u string) string { return src.String() + " " + u }

// Options are what a Runner needs. Vendor, Install, Fetcher, Resolve and
// Now are required.
type Options struct {
	// Vendor is the trusted vendor repository (components, programs).
	Vendor *trust.Store
	// Site is the trusted site repository (domain settings, program
	// approvals); nil on a standalone endpoint, whose plan then skips
	// those categories.
	Site *trust.Store
	// Install holds the installed categories.
	Install *install.Store
	// Fetcher downloads from every source; its timeouts bound each probe.
	Fetcher *fetch.Fetcher
	// Resolve maps plan sources to URLs.
	Resolve Resolver
	// Domain is the endpoint's domain: it selects the domain settings
	// document to install.
	Domain string
	// Health remembers connection-level failures across runs (nil: only
	// within a run).
	Health *failover.Health
	// Failover tunes the probe-ahead walk.
	Failover failover.Options
	// Hooks are run after a category is installed (see install.RunHook).
	Hooks map[category.Category][]string
	// HookTimeout bounds each hook (default 5 minutes).
	HookTimeout time.Duration
	// Progress, if set, is told of download progress.
	Progress func(cat category.Category, file string, done, total int64)
	// Endpoint names the endpoint in reports.
	Endpoint string
	Logger   *slog.Logger
	Now      func() time.Time
}

// Runner runs update runs; one at a time (Run serialises them).
type Runner struct {
	o   Options
	log *slog.Logger
	mu  sync.Mutex
}

// New returns a Runner.
func New(o Options) (*Runner, error) {
	if o.Vendor == nil || o.Install == nil || o.Fetcher == nil || o.Resolve == nil || o.Now == nil {
		return nil, errors.New("update options: Vendor, Install, Fetcher, Resolve and Now are required")
	}
	if o.HookTimeout <= 0 {
		o.HookTimeout = 5 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o, log: log}, nil
}

// Request is one update run to make.
type Request struct {
	Plan plan.Plan
	// Announced are the component versions the server announced with a
	// notify-components trigger: a source holding an older version of any
	// of them is stale.
	Announced map[string]string
	// Notification is the id of the notification that triggered the run.
	Notification string
	// Replan, if set, returns the plan of the run's trigger under the
	// policy installed now. It is called after the run installed new
	// domain settings, so that a new update-source policy applies to the
	// categories that follow in the same run; the report then carries
	// that plan.
	Replan func() (plan.Plan, error)
}

// run is the state of one update run.
type run struct {
	r   *Runner
	req Request
	// failed holds the sources that failed at connection level in this
	// run: they are not contacted again.
	mu     sync.Mutex
	failed map[string]error
}

// Run makes one update run and returns its report. It never returns an
// error: every failure is in the report.
func (r *Runner) Run(ctx context.Context, req Request) *report.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &report.Report{ID: newID(), Endpoint: r.o.Endpoint, Role: req.Plan.Role, Trigger: req.Plan.Trigger,
		Announced: req.Announced, Notification: req.Notification, Started: r.o.Now(), Plan: req.Plan}
	ru := &run{r: r, req: req, failed: map[string]error{}}
	ru.pendingHooks(ctx)
	for _, cat := range runOrder {
		steps, ok := rep.Plan.Categories[cat]
		if !ok {
			continue
		}
		c := ru.category(ctx, cat, steps)
		rep.Categories = append(rep.Categories, c)
		if cat == category.DomainSettings && c.Result == report.Updated && req.Replan != nil {
			ru.replan(rep)
		}
	}
	rep.Finish(r.o.Now())
	rep.Log(r.log)
	return rep
}

// replan switches the rest of the run to the plan of the policy just
// installed; the domain settings keep the steps they were updated by.
func (ru *run) replan(rep *report.Report) {
	np, err := ru.req.Replan()
	if err != nil {
		ru.r.log.Warn("plan under the new policy: the run keeps its plan", "error", err)
		return
	}
	cats := maps.Clone(np.Categories)
	cats[category.DomainSettings] = rep.Plan.Categories[category.DomainSettings]
	np.Categories = cats
	rep.Plan = np
}

// pendingHooks re-runs the hook of any install whose hook did not finish,
// for example because the process was killed right after the switch.
func (ru *run) pendingHooks(ctx context.Context) {
	for _, cat := range category.All {
		res, err := ru.r.o.Install.PendingHook(cat)
		if err != nil {
			ru.r.log.Warn("pending hook", "category", cat, "error", err)
			continue
		}
		if res != nil {
			if h := ru.hook(ctx, *res); h != nil && h.Error != "" {
				ru.r.log.Warn("pending hook failed", "category", cat, "error", h.Error)
			}
		}
	}
}

// runOrder is the order categories are updated in: domain settings first,
// so that a new policy (Request.Replan), deployment caps and program
// approvals apply to the same run.
var runOrder = []category.Category{category.DomainSettings, category.Components, category.Programs}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// category updates one category from the first source that can.
func (ru *run) category(ctx context.Context, cat category.Category, steps []plan.Step) *report.Category {
	start := ru.r.o.Now()
	out := &report.Category{Category: cat, Before: ru.installedVersions(cat)}
	if reason := ru.unsupported(cat); reason != "" {
		out.Result, out.Error = report.Skipped, reason
		return out
	}
	tries := ru.resolve(steps)
	res := failover.Walk(ctx, len(tries), ru.r.o.Failover,
		func(ctx context.Context, i int) (*candidate, error) { return ru.probe(ctx, cat, tries[i]) },
		func(ctx context.Context, i int, c *candidate) error { return ru.apply(ctx, c, out) })
	for i, err := range res.Errs {
		if err == nil || errors.Is(err, failover.ErrNotTried) {
			continue
		}
		// The attempt names its source and class apart: its error says
		// what failed and why, without them.
		tr := tries[i]
		a := report.Attempt{Source: tr.source, URL: tr.url, Class: failure.ClassOf(err),
			Error: strings.TrimPrefix(strings.TrimPrefix(failure.Detail(err), tr.key+": "), tr.source+": ")}
		var ce *cachedError
		if errors.As(err, &ce) {
			a.Cached = true
		}
		if a.Class == "" {
			a.Class = failure.Local
		}
		out.Attempts = append(out.Attempts, a)
	}
	out.After = ru.installedVersions(cat)
	out.Duration = ru.r.o.Now().Sub(start)
	if res.Chosen < 0 {
		out.Result = report.Failed
		out.Error = quitReason(len(steps), out.Attempts)
		return out
	}
	out.Source, out.URL = tries[res.Chosen].source, tries[res.Chosen].url
	return out
}

// try is one URL of a plan's source, as the walk tries it: a source with
// several URLs (the server of a site with several management servers) is
// tried URL after URL, in order, before the next source, which is what a
// sequential walk of the one logical source does.
type try struct {
	// source names the source in reports; url is the URL, set only when
	// the source has several; key names it in errors and in what is
	// remembered of its failures (the source, or URLKey).
	source, url, key string
	base             string // the base URL of its source tree
	err              error  // why the source could not be resolved
}

// resolve expands the plan's steps into the URLs to try, in order.
func (ru *run) resolve(steps []plan.Step) []try {
	var out []try
	for _, st := range steps {
		src := st.Source.String()
		urls, err := ru.r.o.Resolve(st.Source)
		if err == nil && len(urls) == 0 {
			err = failure.Newf(failure.NotFound, src, "no URL for the source")
		}
		switch {
		case err != nil:
			out = append(out, try{source: src, key: src, err: err})
		case len(urls) == 1:
			out = append(out, try{source: src, key: src, base: urls[0]})
		default:
			for _, u := range urls {
				out = append(out, try{source: src, url: u, key: URLKey(st.Source, u), base: u})
			}
		}
	}
	return out
}

func quitReason(n int, attempts []report.Attempt) string {
	if n == 0 {
		return "no source in the plan: the category quits"
	}
	sources := map[string]bool{}
	for _, a := range attempts {
		if a.Delta == "" {
			sources[a.Source] = true
		}
	}
	return fmt.Sprintf("all %d sources were unable to update: the category quits", len(sources))
}

// unsupported says why a category cannot be updated on this endpoint.
func (ru *run) unsupported(cat category.Category) string {
	switch {
	case cat == category.Components:
		return ""
	case ru.r.o.Site == nil:
		return "no site repository is trusted (standalone endpoint): " + string(cat) + " come only from a server"
	case cat == category.Programs:
		pick, _, err := ru.choices(cat)
		if err != nil {
			return err.Error()
		}
		if len(pick) == 0 {
			return fmt.Sprintf("no program is approved for domain %q", ru.r.o.Domain)
		}
	}
	return ""
}

func (ru *run) installedVersions(cat category.Category) map[string]string {
	v, err := ru.r.o.Install.Current(cat)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, it := range v.Items {
		out[it.Name] = it.Version
	}
	return out
}
