package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cascade-update/cascade/bench/internal/benchdb"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/bigregistry"
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
	clock := &bigregistry.Clock{}
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
	if st, err = store.Open(ctx, dsn, store.Options{Clock: clock.Now}); err != nil {
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

// load fills the registry (internal/testkit/bigregistry), stores a
// policy naming every agent, and makes a console account with a session.
func (w *world) load(ctx context.Context, n int, clock *bigregistry.Clock) error {
	st := w.st
	var err error
	if w.reports, err = bigregistry.Load(ctx, st, n, clock); err != nil {
		return err
	}
	doc := bigregistry.Policy(w.srv.URL())
	if _, err := policy.Parse([]byte(doc)); err != nil {
		return fmt.Errorf("the benchmark's policy: %w", err)
	}
	if _, err := st.PutPolicy(ctx, doc, "bench", store.AnyVersion); err != nil {
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
