package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestDuplicateAgentIDAnswer: an agent id already in use is refused with
// 409 in the API's words, naming the agent id and the endpoint holding
// it, on both databases, when an agent enrolls and when an administrator
// designates one; no database driver's message reaches the client.
func TestDuplicateAgentIDAnswer(t *testing.T) {
	forEachDB(t, func(t *testing.T, db dbKind) {
		e := newEnv(t, db)
		ctx := context.Background()
		tok := e.agentToken("default", 0)
		var first api.EnrollResponse
		if err := e.client("").Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: tok,
			Hostname: "pc-4711", Role: "agent", AgentID: "ua-1"}, &first); err != nil {
			t.Fatal(err)
		}
		want := "agent id ua-1 is already used by endpoint pc-4711 (" + first.EndpointID + ")"
		check := func(what string, err error) {
			t.Helper()
			var se *api.StatusError
			if !errors.As(err, &se) || se.Code != http.StatusConflict || se.Message != want {
				t.Fatalf("%s: %v, want 409 %q", what, err, want)
			}
		}
		err := e.client("").Call(ctx, http.MethodPost, api.PathEnroll, nil, api.EnrollRequest{Token: tok,
			Hostname: "pc-4712", Role: "agent", AgentID: "ua-1"}, nil)
		check("enrollment", err)

		second, _ := e.enroll("pc-4713")
		err = e.admin.Call(ctx, http.MethodPut, "/api/v1/endpoints/"+second.EndpointID+"/role", nil,
			api.SetRole{Role: "agent", AgentID: "ua-1"}, nil)
		check("designation", err)
	})
}

// TestServerRefusesReadOnlyDatabase: a server whose database cannot be
// written does not start: New fails with one line naming the database
// (without its password) instead of serving and failing every write.
func TestServerRefusesReadOnlyDatabase(t *testing.T) {
	dsn := postgresDB.dsn(t)
	dir := filepath.Join(t.TempDir(), "server")
	o := newOrigin(t)
	root, err := o.repo.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	ln := testkit.Listen(t, "127.0.0.1")
	defer ln.Close()
	cfg := server.Config{Listen: ln.Addr().String(), URL: "https://" + ln.Addr().String() + "/", Origin: o.url, Database: dsn}
	if _, err := server.Init(dir, server.InitOptions{Config: cfg, VendorRoot: root, SiteBins: 16, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on")
	u.RawQuery = q.Encode()
	cfg.Database = u.String()
	srv, err := server.New(context.Background(), server.Options{Dir: dir, Config: &cfg, Listener: ln, Logger: testLogger(t)})
	if err == nil {
		srv.Close()
		t.Fatal("the server started on a read-only database")
	}
	want := "database " + store.RedactDSN(cfg.Database) + " cannot be written: "
	if !errors.Is(err, store.ErrReadOnly) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q: want one line with %q", err, want)
	}
	if pw, ok := u.User.Password(); ok && strings.Contains(err.Error(), ":"+pw+"@") {
		t.Fatalf("error %q shows the password", err)
	}
}

// TestDatabasePasswordNotShown: a PostgreSQL password given in the URL's
// query string (password=) appears neither in the server's log nor in
// its status answer.
func TestDatabasePasswordNotShown(t *testing.T) {
	dsn := postgresDB.dsn(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := u.User.Password()
	if !ok {
		t.Skip("CASCADE_TEST_POSTGRES has no password to move into the query string")
	}
	q := u.Query()
	q.Set("password", pw)
	u.User = url.User(u.User.Username())
	u.RawQuery = q.Encode()
	secret := "password=" + url.QueryEscape(pw)

	var logs testkit.Buffer
	e := newEnv(t, sqliteDB)
	e.stop()
	cfg, err := server.LoadConfig(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = u.String()
	ln := testkit.Listen(t, "127.0.0.1")
	e.addr, e.url = ln.Addr().String(), "https://"+ln.Addr().String()+"/"
	srv, err := server.New(context.Background(), server.Options{Dir: e.dir, Config: cfg, Listener: ln,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), SyncRetry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		srv.Close()
	}()
	_, adminSecret, err := server.CreateAdminToken(ctx, srv.Store(), "test admin")
	if err != nil {
		t.Fatal(err)
	}
	e.admin = e.client(adminSecret)
	var st api.Status
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for {
		err := e.admin.Call(wctx, http.MethodGet, "/api/v1/status", nil, nil, &st)
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("status: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(st.Database, "password=xxxxx") || strings.Contains(st.Database, secret) {
		t.Errorf("status shows database %q", st.Database)
	}
	if l := logs.String(); !strings.Contains(l, "password=xxxxx") || strings.Contains(l, secret) {
		t.Errorf("log:\n%s", l)
	}
}
