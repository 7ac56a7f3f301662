package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// forEachDB runs fn against SQLite and against PostgreSQL (the database
// named by CASCADE_TEST_POSTGRES; skipped without it unless
// CASCADE_REQUIRE_POSTGRES=1, as in internal/store).
func forEachDB(t *testing.T, fn func(t *testing.T, db dbKind)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteDB) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresDB) })
}

type dbKind int

const (
	sqliteDB dbKind = iota
	postgresDB
)

// dsn returns a new empty database of kind k ("" for the server's default
// SQLite file).
func (k dbKind) dsn(t testing.TB) string {
	if k == sqliteDB {
		return ""
	}
	return pgtest.DSN(t)
}

// origin is a vendor repository served over plain HTTP.
type origin struct {
	repo *repo.Repo
	url  string
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "origin"), repo.InitOptions{
		Options: repo.Options{Now: time.Now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	url := testkit.Serve(t, testkit.Listen(t, "127.0.0.1"), http.FileServer(http.Dir(filepath.Dir(r.PublishedDir()))))
	return &origin{repo: r, url: url}
}

// publish publishes one version of an item with one file.
func (o *origin) publish(t testing.TB, cat, name, ver string) {
	t.Helper()
	if _, err := o.repo.Publish(context.Background(), repo.Item{Category: cat, Name: name, Version: ver,
		Files: []repo.File{{Name: name + ".bin", Data: []byte(strings.Repeat(name+" "+ver+"\n", 100))}}}); err != nil {
		t.Fatal(err)
	}
}

// env is a running server with its origin and an admin client.
type env struct {
	t      testing.TB
	origin *origin
	dir    string
	addr   string // host:port the server listens on
	url    string
	st     store.Store
	srv    *server.Server
	fp     api.Fingerprint
	admin  *api.Client
	stop   func()
	now    func() time.Time // the server's clock (nil: time.Now)
}

func newEnv(t testing.TB, db dbKind, tweak ...func(*server.Config)) *env {
	t.Helper()
	return newEnvAt(t, db, nil, tweak...)
}

// newEnvAt is newEnv with the server's clock now (a testkit.Clock's Now,
// for tests that move time; nil: time.Now).
func newEnvAt(t testing.TB, db dbKind, now func() time.Time, tweak ...func(*server.Config)) *env {
	t.Helper()
	e := &env{t: t, origin: newOrigin(t), dir: filepath.Join(t.TempDir(), "server"), now: now}
	ln := testkit.Listen(t, "127.0.0.1")
	e.addr = ln.Addr().String()
	e.url = "https://" + e.addr + "/"
	root, err := e.origin.repo.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Listen: e.addr, URL: e.url, Origin: e.origin.url, Database: db.dsn(t)}
	for _, f := range tweak {
		f(&cfg)
	}
	res, err := server.Init(e.dir, server.InitOptions{Config: cfg, VendorRoot: root, SiteBins: 16, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.fp = res.Fingerprint
	e.start(ln)
	tok, secret, err := server.CreateAdminToken(context.Background(), e.st, "test admin")
	if err != nil || tok.ID == "" {
		t.Fatal(err)
	}
	e.admin = e.client(secret)
	e.waitSynced()
	return e
}

// waitSynced waits for the sync the server makes when it starts, so that
// tests' own syncs do not race with it.
func (e *env) waitSynced() {
	e.t.Helper()
	testkit.Eventually(e.t, 30*time.Second, "the sync the server makes at start", func() bool {
		var st api.Status
		e.call(http.MethodGet, "/api/v1/status", nil, &st)
		return st.LastSync != nil
	})
}

// start runs the server on ln until stop.
func (e *env) start(ln net.Listener) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Options{Dir: e.dir, Listener: ln, Logger: testLogger(e.t), SyncRetry: time.Hour, Now: e.now})
	if err != nil {
		cancel()
		ln.Close()
		e.t.Fatal(err)
	}
	e.srv, e.st = srv, srv.Store()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("server run: %v", err)
		}
		if err := srv.Close(); err != nil {
			e.t.Errorf("server close: %v", err)
		}
	}
	e.t.Cleanup(e.stop)
	e.waitReady()
}

// restart starts the stopped server again on the same address.
func (e *env) restart() {
	e.t.Helper()
	var ln net.Listener
	testkit.Eventually(e.t, 30*time.Second, "the server's address to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", e.addr)
		return err == nil
	})
	e.start(ln)
}

// waitReady polls the server until it answers.
func (e *env) waitReady() {
	e.t.Helper()
	c := e.client("")
	testkit.Eventually(e.t, 30*time.Second, "the server to answer (401 to a request without a token)", func() bool {
		err := c.Call(context.Background(), http.MethodGet, "/api/v1/status", nil, nil, nil)
		return api.IsStatus(err, http.StatusUnauthorized)
	})
}

// client returns an API client pinned to the server with token.
func (e *env) client(token string) *api.Client {
	c, err := api.NewClient(api.ClientOptions{URL: e.url, Token: token, Fingerprint: e.fp})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// call makes an admin call that must succeed.
func (e *env) call(method, path string, in, out any) {
	e.t.Helper()
	if err := e.admin.Call(context.Background(), method, path, nil, in, out); err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// sync copies the origin now.
func (e *env) sync() api.SyncResult {
	e.t.Helper()
	var res api.SyncResult
	e.call(http.MethodPost, "/api/v1/content/sync", nil, &res)
	return res
}

// token creates an enrollment token for domain that enrolls clients.
func (e *env) token(domain string, uses int) string {
	e.t.Helper()
	return e.newToken(api.TokenRequest{Domain: domain, Uses: &uses}).Secret
}

// agentToken creates an enrollment token for domain that enrolls update
// agents (and clients).
func (e *env) agentToken(domain string, uses int) string {
	e.t.Helper()
	return e.newToken(api.TokenRequest{Domain: domain, Uses: &uses, Agents: true}).Secret
}

// newToken creates an enrollment token as req says.
func (e *env) newToken(req api.TokenRequest) api.Token {
	e.t.Helper()
	var tok api.Token
	e.call(http.MethodPost, "/api/v1/tokens", req, &tok)
	return tok
}

// enroll registers an endpoint through the API and returns its client.
func (e *env) enroll(hostname string, addrs ...string) (*api.EnrollResponse, *api.Client) {
	e.t.Helper()
	var res api.EnrollResponse
	err := e.client("").Call(context.Background(), http.MethodPost, api.PathEnroll, nil,
		api.EnrollRequest{Token: e.token("default", 1), Hostname: hostname, Addresses: addrs}, &res)
	if err != nil {
		e.t.Fatal(err)
	}
	return &res, e.client(res.Credential)
}

// testLogger logs through t, at warning level unless CASCADE_TEST_DEBUG.
func testLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("CASCADE_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// statusCode returns the HTTP status of an API error (0 for nil).
func statusCode(err error) int {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	if err != nil {
		return -1
	}
	return 0
}
