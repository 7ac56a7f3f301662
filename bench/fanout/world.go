package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-update/cascade/internal/agent"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/httpserver"
	"github.com/cascade-update/cascade/internal/mirror"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// The scenarios.
const (
	direct    = "direct" // endpoints update from the server
	viaAgents = "agents" // endpoints update from their update agent
)

// The component the benchmark publishes: version 1 (small) during the
// setup, version 2 (config.Size bytes of random data) as the measured
// event.
const (
	component  = "pattern"
	oldVersion = "1"
	newVersion = "2"
	fileName   = "pattern.bin"
	oldSize    = 4 << 10
)

// config is one scenario's parameters.
type config struct {
	Endpoints   int
	Agents      int
	Size        int64
	Concurrency int
	Dir         string // parent of the working directory
	Bins        int    // hash bins of the vendor repository (0: repo.DefaultBins)
	ServerLink  int64  // bytes/s of the link all the server's responses share (0: unlimited)
	// Similar makes version 1 Size bytes too, and version 2 version 1
	// with 0.5% of its 64-byte records rewritten (the deltas comparison,
	// deltas.go); Deltas has the origin publish the delta from version 1
	// (otherwise its repository makes none) and the endpoints use it.
	Similar, Deltas bool
	Log             *log.Logger // progress; nil discards it
}

// withDefaults returns cfg with a discarding logger if it has none.
func (cfg config) withDefaults() config {
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	return cfg
}

// world is the origin, the server, the update agents (agents scenario)
// and the simulated endpoints of one scenario, all in this process, on
// loopback.
type world struct {
	cfg  config
	mode string
	work string
	now  func() time.Time

	origin      *repo.Repo
	originURL   string
	originBytes counter

	serverDir   string
	serverTrust *trust.Store
	serverFetch *fetch.Fetcher
	serverURL   string
	serverBytes counter

	agents  []*relay
	groups  []*group // connection pools of the endpoints, one per agent
	clients []string // the endpoints' trust store directories

	// base is version 1 of the file on disk, which every endpoint holds
	// (Similar): they share this one read-only copy as the base of the
	// delta they apply. deltas counts the endpoints that used the delta;
	// serverRebuilt and agentsRebuilt the files the server and the
	// agents rebuilt from a delta during the event.
	base                         *os.File
	baseSHA                      string
	deltas                       atomic.Int64
	serverRebuilt, agentsRebuilt atomic.Int64
	deltaBytes                   int64 // of the delta the origin published last

	root     []byte
	handlers []*static.Handler
	servers  []*http.Server
	services sync.WaitGroup // the servers' Serve calls
}

// relay is a running update agent.
type relay struct {
	*agent.Agent
	url   string
	dir   string // its served tree
	bytes counter
}

// newWorld builds a scenario's world up to date with version 1: the
// origin, the server's mirror, the agents (agents scenario) refreshed
// from the server, every endpoint enrolled and updated from its source.
func newWorld(ctx context.Context, cfg config, mode string) (w *world, err error) {
	cfg = cfg.withDefaults()
	work, err := os.MkdirTemp(cfg.Dir, "cascade-fanout-")
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	w = &world{cfg: cfg, mode: mode, work: work, now: func() time.Time { return time.Now().UTC() }}
	defer func() {
		if err != nil {
			w.Close()
			w = nil
		}
	}()
	steps := []func(context.Context) error{w.startOrigin, w.startServer, w.startAgents, w.startGroups, w.enroll}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Close stops the servers (at once: nothing is in flight any more) and
// removes the working directory.
func (w *world) Close() {
	for _, g := range w.groups {
		g.transport.CloseIdleConnections()
	}
	if w.serverFetch != nil {
		w.serverFetch.CloseIdleConnections()
	}
	for _, srv := range w.servers {
		srv.Close()
	}
	w.services.Wait()
	for _, a := range w.agents {
		a.Close()
	}
	for _, h := range w.handlers {
		h.Close()
	}
	if w.base != nil {
		w.base.Close()
	}
	os.RemoveAll(w.work)
}

// startOrigin creates the vendor repository, publishes version 1 and
// serves the published tree on 127.0.0.2.
func (w *world) startOrigin(ctx context.Context) error {
	settings := repo.Settings{Kind: repo.Vendor, Bins: w.cfg.Bins}
	if w.cfg.Similar && !w.cfg.Deltas {
		settings.Deltas = new(int) // the baseline: no deltas at all
	}
	r, err := repo.Init(filepath.Join(w.work, "origin"), repo.InitOptions{Options: repo.Options{Now: w.now}, Settings: settings})
	if err != nil {
		return fmt.Errorf("init the origin repository: %w", err)
	}
	w.origin = r
	if w.root, err = r.TrustedRoot(); err != nil {
		return fmt.Errorf("origin root: %w", err)
	}
	size := int64(oldSize)
	if w.cfg.Similar {
		size = w.cfg.Size
	}
	if err := w.publish(ctx, oldVersion, size); err != nil {
		return err
	}
	h, err := static.New(filepath.Dir(r.PublishedDir()), static.Options{})
	if err != nil {
		return fmt.Errorf("serve the origin: %w", err)
	}
	w.handlers = append(w.handlers, h)
	w.originURL, err = w.serve("127.0.0.2", w.originBytes.wrap(h))
	return err
}

// publish publishes a version of the component: size bytes of random
// data, written to a file first so that the repository copies it.
func (w *world) publish(ctx context.Context, version string, size int64) error {
	name := filepath.Join(w.work, "payload-"+version)
	if w.cfg.Similar {
		if err := w.writeSimilar(name, version); err != nil {
			return err
		}
	} else if err := writeRandom(name, size, version); err != nil {
		return err
	}
	if !w.cfg.Similar || version != oldVersion {
		defer os.Remove(name) // version 1 of Similar stays: the endpoints' base
	}
	it := repo.Item{Category: "components", Name: component, Version: version,
		Files: []repo.File{{Name: fileName, Path: name}}}
	res, err := w.origin.Publish(ctx, it)
	if err != nil {
		return fmt.Errorf("publish %s %s: %w", component, version, err)
	}
	for _, d := range res.Deltas {
		w.deltaBytes = d.Length
	}
	return nil
}

// writeRandom writes size pseudo-random bytes (seeded by seed) to name.
func writeRandom(name string, size int64, seed string) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("write the payload: %w", err)
	}
	var key [32]byte
	copy(key[:], seed)
	rng := rand.NewChaCha8(key)
	if _, err := io.Copy(f, io.LimitReader(rng, size)); err != nil {
		f.Close()
		return fmt.Errorf("write the payload: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the payload: %w", err)
	}
	return nil
}

// startServer mirrors the origin into the server's tree, verified, and
// serves it on 127.0.0.1 as the management server does (internal/static,
// one-minute max-age for timestamp.json).
func (w *world) startServer(ctx context.Context) error {
	w.serverDir = filepath.Join(w.work, "server", "content")
	if err := os.MkdirAll(filepath.Join(w.serverDir, string(repo.Vendor)), 0o755); err != nil {
		return fmt.Errorf("server tree: %w", err)
	}
	var err error
	w.serverTrust, err = trust.Init(filepath.Join(w.work, "server", "trust"), w.root,
		trust.Options{Kind: string(repo.Vendor), Now: w.now})
	if err != nil {
		return fmt.Errorf("server trust store: %w", err)
	}
	w.serverFetch = fetch.New(fetch.Options{})
	if err := w.syncServer(ctx); err != nil {
		return err
	}
	h, err := static.New(w.serverDir, static.Options{MutableMaxAge: time.Minute})
	if err != nil {
		return fmt.Errorf("serve the server's tree: %w", err)
	}
	w.handlers = append(w.handlers, h)
	var served http.Handler = h
	if w.cfg.ServerLink > 0 {
		served = newLink(w.cfg.ServerLink).wrap(h)
	}
	w.serverURL, err = w.serve("127.0.0.1", w.serverBytes.wrap(served))
	return err
}

// syncServer is the server's sync: a verified copy of the origin.
func (w *world) syncServer(ctx context.Context) error {
	res, err := mirror.Copy(ctx, mirror.Options{Store: w.serverTrust, Fetcher: w.serverFetch, Dir: w.serverDir,
		Source: trust.Source{Name: "origin", Base: w.originURL}})
	if err != nil {
		return fmt.Errorf("server: mirror the origin: %w", err)
	}
	w.serverRebuilt.Add(int64(res.Rebuilt))
	return nil
}

// startAgents creates and serves the update agents (agents scenario
// only) and refreshes them from the server.
func (w *world) startAgents(ctx context.Context) error {
	if w.mode != viaAgents {
		return nil
	}
	for i := range w.cfg.Agents {
		dir := filepath.Join(w.work, "agents", fmt.Sprint(i))
		a, err := agent.New(agent.Options{ID: fmt.Sprintf("ua-%d", i), Dir: filepath.Join(dir, "served"),
			StateDir: filepath.Join(dir, "state"), Roots: map[string][]byte{"vendor": w.root}, Now: w.now})
		if err != nil {
			return fmt.Errorf("agent %d: %w", i, err)
		}
		r := &relay{Agent: a, dir: filepath.Join(dir, "served")}
		w.agents = append(w.agents, r)
		if r.url, err = w.serve(agentIP(i), r.bytes.wrap(a.Handler())); err != nil {
			return err
		}
	}
	return w.refreshAgents(ctx)
}

// agentIP is agent i's loopback address: 127.0.0.21 and up.
func agentIP(i int) string {
	n := i + 20
	return fmt.Sprintf("127.0.%d.%d", n/250, n%250+1)
}

// refreshAgents refreshes every agent from the server at once, as after
// a notification.
func (w *world) refreshAgents(ctx context.Context) error {
	errs := make([]error, len(w.agents))
	var wg sync.WaitGroup
	for i, a := range w.agents {
		wg.Go(func() {
			res, err := a.Refresh(ctx, "vendor", trust.Source{Name: "server", Base: w.serverURL})
			if err != nil {
				errs[i] = fmt.Errorf("agent %d: %w", i, err)
				return
			}
			w.agentsRebuilt.Add(int64(res.Rebuilt))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// serve serves h on ip, port 0, with the limits of the cascade services
// (httpserver.NewServer) until the world closes, and returns its base
// URL.
func (w *world) serve(ip string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", ip, err)
	}
	srv := httpserver.NewServer(h, nil)
	w.servers = append(w.servers, srv)
	w.services.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			w.cfg.Log.Printf("server on %s: %v", ip, err)
		}
	})
	return "http://" + ln.Addr().String() + "/", nil
}

// source returns where endpoint i updates from.
func (w *world) source(i int) trust.Source {
	if w.mode == viaAgents {
		a := i % len(w.agents)
		return trust.Source{Name: fmt.Sprintf("agent:ua-%d", a), Base: w.agents[a].url}
	}
	return trust.Source{Name: "server", Base: w.serverURL}
}

// resetCounters zeroes the byte counters (after the setup).
func (w *world) resetCounters() {
	w.serverRebuilt.Store(0)
	w.agentsRebuilt.Store(0)
	w.originBytes.reset()
	w.serverBytes.reset()
	for _, a := range w.agents {
		a.bytes.reset()
	}
}

// agentsServed is the body bytes all agents served.
func (w *world) agentsServed() int64 {
	var n int64
	for _, a := range w.agents {
		n += a.bytes.n.Load()
	}
	return n
}

// counter counts the response body bytes and the requests of a handler,
// and apart the body bytes of targets (paths under /targets/: files,
// deltas, category indexes).
type counter struct {
	n        atomic.Int64
	targets  atomic.Int64
	requests atomic.Int64
}

func (c *counter) reset() { c.n.Store(0); c.targets.Store(0); c.requests.Store(0) }

// wrap returns h counting into c.
func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		cw := &countingWriter{ResponseWriter: rw, n: &c.n}
		h.ServeHTTP(cw, r)
		if strings.Contains(r.URL.Path, "/targets/") {
			c.targets.Add(cw.own)
		}
	})
}

// countingWriter counts the body bytes written. Its ReadFrom passes
// through to the server's, so files still go out with sendfile.
type countingWriter struct {
	http.ResponseWriter
	n   *atomic.Int64
	own int64 // this response's body bytes
}

func (cw *countingWriter) Write(b []byte) (int, error) {
	n, err := cw.ResponseWriter.Write(b)
	cw.n.Add(int64(n))
	cw.own += int64(n)
	return n, err
}

func (cw *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.Copy(cw.ResponseWriter, src)
	cw.n.Add(n)
	cw.own += n
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (cw *countingWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }
