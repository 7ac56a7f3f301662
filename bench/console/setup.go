package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/bench/internal/benchdb"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/store"
)

// The registry's shape.
const (
	agents       = 100         // update agents, one per 10.k.0.0/16 site
	newest       = "19.103.00" // the deployed pattern version
	older        = "19.101.00" // what endpoints that are behind have
	engine       = "12.5.1003"
	loadBatch    = 5000 // endpoints or reports per store call
	notSeenEvery = 10   // every 10th endpoint was last seen 2-30 days ago
)

// world is a server over a database holding the registry, and a signed-in
// console session.
type world struct {
	srv     *server.Server
	st      store.Store
	dsn     string
	cookie  string // the session's secret
	now     time.Time
	reports int
	close   func()
}

// loadClock is the store's clock: while loading, each reading is one
// endpoint's last contact (most within two days, every notSeenEvery-th
// 2-30 days ago); afterwards the real time.
type loadClock struct {
	base    time.Time
	n       atomic.Int64
	loading atomic.Bool
}

func (c *loadClock) now() time.Time {
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

// site is the 10.k.0.0/16 network of endpoint i, and host its address.
func site(i int) int { return i % agents }
func address(i int) string {
	j := i / agents
	return fmt.Sprintf("10.%d.%d.%d", site(i), j/250, j%250+1)
}

// hostname is endpoint i's: a site, a kind of machine, a number.
func hostname(i int) string {
	kinds := []string{"ws", "lt", "srv", "kiosk"}
	return fmt.Sprintf("site%02d-%s-%06d.corp.example", site(i), kinds[i%len(kinds)], i)
}

// build makes the world on the database pg ("" for SQLite) with n
// endpoints.
func build(ctx context.Context, n int, pg string) (w *world, err error) {
	dsn, cleanup, err := benchdb.New(ctx, pg, "cascade_bench_console_")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cascade-bench-console-")
	if err != nil {
		cleanup()
		return nil, err
	}
	w = &world{dsn: dsn}
	clock := &loadClock{base: time.Now()}
	var st store.Store
	var srv *server.Server
	w.close = func() {
		if srv != nil {
			srv.Close()
		}
		if st != nil {
			st.Close()
		}
		os.RemoveAll(dir)
		cleanup()
	}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	origin, err := repo.Init(filepath.Join(dir, "origin"), repo.InitOptions{
		Options: repo.Options{Now: time.Now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		return nil, err
	}
	root, err := origin.TrustedRoot()
	if err != nil {
		return nil, err
	}
	sdir := filepath.Join(dir, "server")
	if _, err := server.Init(sdir, server.InitOptions{VendorRoot: root, SiteBins: 16, Now: time.Now,
		Config: server.Config{Listen: "127.0.0.1:8443", Origin: "https://origin.invalid/"}}); err != nil {
		return nil, err
	}
	if st, err = store.Open(ctx, dsn, store.Options{Clock: clock.now}); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if srv, err = server.New(ctx, server.Options{Dir: sdir, Store: st, Logger: quiet}); err != nil {
		return nil, err
	}
	w.srv, w.st = srv, st
	if err := w.load(ctx, n, clock); err != nil {
		return nil, err
	}
	return w, nil
}

// load fills the registry: the endpoints, their last reports, the
// deployed components, a policy naming every agent, and a console
// account with a session.
func (w *world) load(ctx context.Context, n int, clock *loadClock) error {
	st := w.st
	for _, c := range [][2]string{{"pattern", newest}, {"engine", engine}} {
		if _, err := st.RecordComponentSync(ctx, c[0], c[1]); err != nil {
			return err
		}
	}
	clock.loading.Store(true)
	var reports []store.Report
	for lo := 0; lo < n; lo += loadBatch {
		es := make([]store.Endpoint, 0, loadBatch)
		for i := lo; i < min(n, lo+loadBatch); i++ {
			e := store.Endpoint{Hostname: hostname(i), Domain: "default", Addresses: []string{address(i)},
				Installed: store.Installed{category.Components: {"pattern": version(i), "engine": engine}}}
			_, e.CredentialHash, _ = store.NewSecret("b")
			if i < agents {
				e.Role, e.AgentID, e.AgentURL = store.RoleAgent, agentID(i), "https://"+address(i)+":8080/"
			}
			es = append(es, e)
		}
		clock.n.Store(int64(lo))
		if err := st.CreateEndpoints(ctx, es); err != nil {
			return err
		}
		reports = reports[:0]
		for k, e := range es {
			if i := lo + k; i%20 != 0 { // 95% reported
				reports = append(reports, lastReport(i, e))
			}
		}
		if err := st.AddReports(ctx, reports); err != nil {
			return err
		}
		w.reports += len(reports)
	}
	clock.loading.Store(false)
	var doc strings.Builder
	fmt.Fprintf(&doc, "origin: https://origin.invalid/\nserver: %s\nclients:\n  source: customized\ncustom_sources:\n", w.srv.URL())
	for k := range agents {
		fmt.Fprintf(&doc, "  - addresses: 10.%d.0.0/16\n    source: agent:%s\n", k, agentID(k))
	}
	if _, err := policy.Parse([]byte(doc.String())); err != nil {
		return fmt.Errorf("the benchmark's policy: %w", err)
	}
	if _, err := st.PutPolicy(ctx, doc.String(), "bench", store.AnyVersion); err != nil {
		return err
	}
	a, err := st.CreateAccount(ctx, store.Account{Name: "bench", Role: store.AccountAdmin, PasswordHash: "not used: the session is made directly"})
	if err != nil {
		return err
	}
	secret, h, err := store.NewSecret("cs_")
	if err != nil {
		return err
	}
	if _, err := st.CreateSession(ctx, store.Session{Hash: h, AccountID: a.ID}); err != nil {
		return err
	}
	w.cookie, w.now = secret, time.Now()
	return nil
}

func agentID(i int) string { return fmt.Sprintf("ua-%03d", i) }

// version is endpoint i's pattern version: every fifth is behind.
func version(i int) string {
	if i%5 == 0 {
		return older
	}
	return newest
}

// lastReport is endpoint i's last run: about 3% failed; the components
// from its site's agent, or (every seventh) from the server.
func lastReport(i int, e store.Endpoint) store.Report {
	at := e.LastSeen
	result, src := "ok", "agent:"+agentID(site(i))
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
				VersionsBefore: map[string]string{"pattern": older, "engine": engine},
				VersionsAfter:  map[string]string{"pattern": version(i), "engine": engine}},
			{Category: category.DomainSettings, Result: "up-to-date", Source: "server"},
			{Category: category.Programs, Result: "up-to-date", Source: "server"},
		}}
}
