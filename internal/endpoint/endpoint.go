package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/agent"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/notify"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/sitedoc"
	"github.com/cascade-update/cascade/internal/trust"
	"github.com/cascade-update/cascade/internal/update"
)

// Options are what an Endpoint needs besides its configuration.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (required).
	Now func() time.Time
	// Progress, if set, receives download progress (for progress bars).
	Progress func(cat category.Category, file string, done, total int64)
}

// Endpoint is an opened endpoint: its stores and update runner. It holds
// the install store's lock until Close, so one process at a time updates
// a data directory.
type Endpoint struct {
	cfg     *Config
	log     *slog.Logger
	now     func() time.Time
	vendor  *trust.Store
	site    *trust.Store
	inst    *install.Store
	reports *report.Store
	runner  *update.Runner
	server  *serverLink   // nil unless enrolled with a server (server.go)
	agent   *agentService // nil unless the role is agent (agent.go)
}

// Layout of the data directory.
const (
	trustDir   = "trust"
	installDir = "installed"
	reportsDir = "reports"
	socketName = "control.sock"
)

// Open opens the endpoint's stores, creating them on first start from the
// configured trusted roots.
func Open(cfg *Config, o Options) (*Endpoint, error) {
	if o.Now == nil {
		return nil, errors.New("open endpoint: Options.Now is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Endpoint{cfg: cfg, log: log, now: o.Now}
	var err error
	if e.vendor, err = openTrust(cfg, "vendor", cfg.TrustedRoots.Vendor, o.Now, log); err != nil {
		return nil, err
	}
	if cfg.TrustedRoots.Site != "" {
		if e.site, err = openTrust(cfg, "site", cfg.TrustedRoots.Site, o.Now, log); err != nil {
			return nil, err
		}
	}
	if e.reports, err = report.OpenStore(filepath.Join(cfg.DataDir, reportsDir), cfg.ReportsKeep); err != nil {
		return nil, err
	}
	if e.inst, err = install.Open(filepath.Join(cfg.DataDir, installDir), install.Options{Logger: log, Now: o.Now}); err != nil {
		return nil, fmt.Errorf("open endpoint: %w", err)
	}
	fo := fetch.Options{ConnectTimeout: cfg.Fetch.ConnectTimeout, ResponseHeaderTimeout: cfg.Fetch.HeaderTimeout,
		MinRate: cfg.Fetch.MinRate, RateWindow: cfg.Fetch.RateWindow, UserAgent: "cascade-endpoint/" + cfg.ID, Logger: log}
	health := failover.NewHealth(o.Now, cfg.Failover.FailedTTL)
	if e.server, err = openServerLink(cfg, &fo, health, log); err != nil {
		e.inst.Close()
		return nil, err
	}
	e.runner, err = update.New(update.Options{Vendor: e.vendor, Site: e.site, Install: e.inst,
		Fetcher: fetch.New(fo), Resolve: e.resolve, Domain: cfg.Domain,
		Health:   health,
		Failover: failover.Options{MaxInFlight: cfg.Failover.MaxInFlight, Hedge: cfg.Failover.Hedge},
		Hooks:    cfg.Hooks, HookTimeout: cfg.HookTimeout, Progress: o.Progress,
		Endpoint: cfg.ID, Logger: log, Now: o.Now})
	if err == nil {
		e.agent, err = openAgent(e, fo)
	}
	if err != nil {
		e.inst.Close()
		return nil, err
	}
	return e, nil
}

func openTrust(cfg *Config, kind, rootFile string, now func() time.Time, log *slog.Logger) (*trust.Store, error) {
	dir := filepath.Join(cfg.DataDir, trustDir, kind)
	o := trust.Options{Kind: kind, Now: now, Logger: log}
	if _, err := os.Lstat(filepath.Join(dir, "current")); err == nil {
		return trust.Open(dir, o)
	}
	root, err := os.ReadFile(cfg.path(rootFile))
	if err != nil {
		return nil, fmt.Errorf("open endpoint: trusted %s root: %w", kind, err)
	}
	return trust.Init(dir, root, o)
}

// Close releases the endpoint's stores.
func (e *Endpoint) Close() error {
	e.agent.close()
	return e.inst.Close()
}

// Policy returns the update-source policy in force: the one installed with
// the domain settings (signed by the server) if any, else the configured
// file.
func (e *Endpoint) Policy() (*policy.Policy, error) {
	if v, err := e.inst.Current(category.DomainSettings); err == nil {
		for _, f := range v.Files {
			if strings.HasPrefix(f.Path, sitedoc.PolicyItem+"/") {
				return policy.Load(filepath.Join(v.Dir, filepath.FromSlash(f.Path)))
			}
		}
	}
	if e.cfg.Policy == "" {
		return nil, errors.New("no update-source policy: none installed and none configured")
	}
	return policy.Load(e.cfg.path(e.cfg.Policy))
}

// Addresses returns the endpoint's configured addresses, or those of the
// machine's interfaces (loopback excluded).
func (e *Endpoint) Addresses() ([]netip.Addr, error) {
	if len(e.cfg.addrs) > 0 {
		return e.cfg.addrs, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// resolve maps a plan source to the base URLs of its source tree: one,
// or the server's, in order (update.Resolver).
func (e *Endpoint) resolve(src policy.Source) ([]string, error) {
	if u, ok := e.server.resolve(src); ok {
		return u, nil
	}
	switch src.Kind {
	case policy.URL, policy.Origin:
		if src.URL == "" {
			p, err := e.Policy()
			if err != nil {
				return nil, failure.New(failure.Local, "resolve origin", err)
			}
			return []string{p.Origin}, nil
		}
		return []string{src.URL}, nil
	case policy.Server:
		if len(e.cfg.Server) > 0 {
			return e.cfg.Server, nil
		}
		p, err := e.Policy()
		if err != nil {
			return nil, failure.New(failure.Local, "resolve server", err)
		}
		return []string{p.Server}, nil
	case policy.Agent:
		if u, ok := e.cfg.Agents[src.AgentID]; ok {
			return []string{u}, nil
		}
		return nil, failure.Newf(failure.NotFound, src.String(), "update agent %s is not in the agent directory", src.AgentID)
	}
	return nil, failure.Newf(failure.Local, "resolve", "unknown source %q", src)
}

// Update makes one update run with trigger t and keeps its report.
// announced are the component versions a notification announced (a
// source behind them is stale), nil otherwise.
func (e *Endpoint) Update(ctx context.Context, t plan.Trigger, announced map[string]string) (*report.Report, error) {
	return e.update(ctx, t, announced, "")
}

// Notified makes the notify-components run a server notification asks
// for: components only, sources behind the announced versions skipped,
// and the report names the notification so that the server knows this
// endpoint's run for it is over (agents first: clients wait for agents).
func (e *Endpoint) Notified(ctx context.Context, ev notify.Event) (*report.Report, error) {
	return e.update(ctx, plan.NotifyComponents, ev.Versions, ev.ID)
}

func (e *Endpoint) update(ctx context.Context, t plan.Trigger, announced map[string]string, notification string) (*report.Report, error) {
	e.server.refresh(ctx, e)
	p, err := e.Policy()
	if err != nil {
		return nil, err
	}
	addrs, err := e.Addresses()
	if err != nil {
		return nil, err
	}
	me := plan.Endpoint{Role: e.cfg.Role, AgentID: e.cfg.AgentID, Addresses: addrs}
	replan := func() (plan.Plan, error) {
		p, err := e.Policy()
		if err != nil {
			return plan.Plan{}, err
		}
		return plan.For(p, me, t), nil
	}
	rep := e.runner.Run(ctx, update.Request{Plan: plan.For(p, me, t), Announced: announced, Notification: notification, Replan: replan})
	if err := e.reports.Save(rep); err != nil {
		e.log.Warn("keep report", "error", err)
	}
	// An agent serves what it just installed before it reports the run:
	// the report of a notified run releases the clients waiting for it.
	e.agent.afterRun(ctx, e, rep)
	e.server.upload(ctx, rep)
	return rep, nil
}

// Rollback switches a category back to its previous version and runs its
// hook.
func (e *Endpoint) Rollback(ctx context.Context, cat category.Category) (install.Result, error) {
	res, err := e.inst.Rollback(cat)
	if err != nil {
		return res, err
	}
	if cmd := e.cfg.Hooks[cat]; len(cmd) > 0 {
		if _, err := install.RunHook(ctx, install.HookOptions{Command: cmd, Env: res.HookEnv(), Timeout: e.cfg.HookTimeout, Logger: e.log}); err != nil {
			e.log.Warn("rollback hook failed", "category", cat, "error", err)
		}
		if err := e.inst.HookDone(cat, res.Current.ID); err != nil {
			e.log.Warn("record hook run", "error", err)
		}
	}
	return res, nil
}

// Status is what `cascade endpoint status` shows.
type Status struct {
	ID         string                   `json:"id"`
	Role       plan.Role                `json:"role"`
	Installed  []install.CategoryStatus `json:"installed"`
	LastReport *report.Report           `json:"last_report,omitempty"`
	Agent      *agent.Status            `json:"agent,omitempty"` // what an update agent serves
}

// ReadStatus reads an endpoint's status from its data directory without
// taking its lock, so it works while the daemon runs.
func ReadStatus(cfg *Config) (*Status, error) {
	st := &Status{ID: cfg.ID, Role: cfg.Role}
	var err error
	if st.Installed, err = install.Inspect(filepath.Join(cfg.DataDir, installDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rs, err := report.OpenStore(filepath.Join(cfg.DataDir, reportsDir), cfg.ReportsKeep)
	if err != nil {
		return nil, err
	}
	if st.LastReport, err = rs.Last(); err != nil {
		return nil, err
	}
	if st.Agent, err = readAgentStatus(cfg); err != nil {
		return nil, err
	}
	return st, nil
}
