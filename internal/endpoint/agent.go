package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cascade-update/cascade/internal/agent"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/trust"
)

// agentService is the serving side of an update agent (internal/agent):
// opened with the endpoint, refreshed after every update run, served
// while the daemon runs. A nil *agentService is a client: every method is
// a no-op.
type agentService struct {
	a         *agent.Agent
	cfg       *Config
	log       *slog.Logger
	accessLog io.Closer // the access log file, if any
}

// openAgent opens the agent service of an endpoint with the agent role.
// fo are the endpoint's fetch options (with the server link's transport),
// used for upstream requests too.
func openAgent(e *Endpoint, fo fetch.Options) (*agentService, error) {
	cfg := e.cfg
	if cfg.Role != plan.RoleAgent {
		return nil, nil
	}
	s := &agentService{cfg: cfg, log: e.log.With("component", "agent")}
	roots := map[string][]byte{}
	for kind, file := range map[string]string{"vendor": cfg.TrustedRoots.Vendor, "site": cfg.TrustedRoots.Site} {
		if file == "" {
			continue
		}
		b, err := os.ReadFile(cfg.path(file))
		if err != nil {
			return nil, fmt.Errorf("open update agent: trusted %s root: %w", kind, err)
		}
		roots[kind] = b
	}
	access, err := s.openAccessLog()
	if err != nil {
		return nil, err
	}
	sv := cfg.Serve
	s.a, err = agent.New(agent.Options{ID: cfg.AgentID, Dir: sv.Dir, StateDir: cfg.agentState(), Roots: roots,
		Fetch: fo, Local: e.installedFile, Listen: sv.Listen, CertFile: sv.TLSCert, KeyFile: sv.TLSKey,
		MaxDownloads: sv.MaxDownloads, RetryAfter: sv.RetryAfter, BandwidthLimit: sv.BandwidthLimit,
		MutableMaxAge: sv.TimestampMaxAge, NoFastPath: !sv.fastPath(), Logger: s.log, AccessLog: access, Now: e.now})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("open update agent: %w", err)
	}
	return s, nil
}

// openAccessLog opens the configured access log.
func (s *agentService) openAccessLog() (*slog.Logger, error) {
	switch s.cfg.Serve.AccessLog {
	case "":
		return nil, nil
	case "stderr":
		return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nil
	}
	f, err := os.OpenFile(s.cfg.Serve.AccessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open update agent: access log: %w", err)
	}
	s.accessLog = f
	return slog.New(slog.NewJSONHandler(f, nil)), nil
}

func (s *agentService) close() {
	if s == nil {
		return
	}
	if s.a != nil {
		s.a.Close()
	}
	if s.accessLog != nil {
		s.accessLog.Close()
	}
}

// start listens at once (so that a busy address fails the daemon's
// start) and serves until ctx is cancelled; stop waits for the end.
func (s *agentService) start(ctx context.Context) (stop func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	ln, err := agent.Listen(ctx, s.cfg.Serve.Listen)
	if err != nil {
		return nil, fmt.Errorf("update agent: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.a.Serve(ctx, ln); err != nil {
			s.log.Error("update agent stopped serving", "error", err)
		}
	}()
	return func() { cancel(); wg.Wait() }, nil
}

// afterRun is the prefetch: after each update run, the served copy of
// each repository is refreshed from the sources the run used for its
// categories (vendor: components and programs; site: domain settings),
// so clients find the new content on the agent before they ask. A source
// behind what the agent already serves changes nothing.
func (s *agentService) afterRun(ctx context.Context, e *Endpoint, rep *report.Report) {
	if s == nil || rep == nil {
		return
	}
	for _, kind := range agent.Kinds {
		if !s.a.Serves(kind) {
			continue
		}
		for _, src := range s.sources(e, rep, kind) {
			if _, err := s.a.Refresh(ctx, kind, src); err != nil {
				if failure.Is(err, failure.Stale) {
					s.log.Debug("agent refresh: source behind the served copy", "repository", kind, "source", src.Name)
					continue
				}
				s.log.Warn("agent refresh failed; serving the previous verified copy", "repository", kind, "error", err)
			}
		}
	}
}

// sources are the distinct sources that brought kind's categories up to
// date in rep, resolved to URLs, in report order.
func (s *agentService) sources(e *Endpoint, rep *report.Report, kind string) []trust.Source {
	cats := []category.Category{category.Components, category.Programs}
	if kind == "site" {
		cats = []category.Category{category.DomainSettings}
	}
	var out []trust.Source
	for _, rc := range rep.Categories {
		if !slices.Contains(cats, rc.Category) || rc.Source == "" ||
			(rc.Result != report.Updated && rc.Result != report.UpToDate) {
			continue
		}
		if slices.ContainsFunc(out, func(t trust.Source) bool { return t.Name == rc.Source }) {
			continue
		}
		for _, step := range rep.Plan.Categories[rc.Category] {
			if step.Source.String() != rc.Source {
				continue
			}
			switch u, err := e.resolve(step.Source); {
			case rc.URL != "": // the URL of a source with several that served
				out = append(out, trust.Source{Name: rc.Source, Base: rc.URL})
			case err == nil && len(u) > 0:
				out = append(out, trust.Source{Name: rc.Source, Base: u[0]})
			}
			break
		}
	}
	return out
}

// installedFile returns an installed file with content sha256 (hex) and
// length, so the agent copies what it installed rather than download it
// again; "" if there is none. The copy is verified like a download.
func (e *Endpoint) installedFile(sha256 string, length int64) string {
	for _, cat := range category.All {
		v, err := e.inst.Current(cat)
		if err != nil {
			continue
		}
		for _, f := range v.Files {
			if f.SHA256 == sha256 && f.Length == length {
				return filepath.Join(v.Dir, filepath.FromSlash(f.Path))
			}
		}
	}
	return ""
}

// readAgentStatus reads what an agent serves, for ReadStatus; nil for a
// client or an agent that has not served yet.
func readAgentStatus(cfg *Config) (*agent.Status, error) {
	if cfg.Role != plan.RoleAgent {
		return nil, nil
	}
	st, err := agent.ReadStatus(cfg.agentState())
	if err != nil {
		return nil, errors.Join(errors.New("update agent status"), err)
	}
	return st, nil
}
