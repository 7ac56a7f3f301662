package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/testkit"
)

// TestSecondServerOnSQLiteRefused: a second server process on a data
// directory whose SQLite database a running server uses is refused with
// one line naming PostgreSQL; once the first is closed, it opens.
func TestSecondServerOnSQLiteRefused(t *testing.T) {
	e := newEnv(t, sqliteDB)
	ln := testkit.Listen(t, "127.0.0.1")
	defer ln.Close()
	srv, err := server.New(context.Background(), server.Options{Dir: e.dir, Listener: ln})
	if err == nil {
		srv.Close()
		t.Fatal("a second server opened the data directory of a running one")
	}
	if msg := err.Error(); !strings.Contains(msg, "another cascade server is running on "+e.dir) ||
		!strings.Contains(msg, "PostgreSQL") || strings.Contains(msg, "\n") {
		t.Fatalf("second server: %q", msg)
	}
	e.stop()
	srv, err = server.New(context.Background(), server.Options{Dir: e.dir, Listener: ln})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}
