package server_test

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
)

// TestEnrollUnknownTokenWhileWriterHeld: an enrollment with a guessed
// token is refused (403) while another process holds SQLite's only
// writer: it is looked up without the write lock, so a flood of them
// cannot stall heartbeats, reports and admin writes. Waiting for the
// writer would end in the request's deadline instead of the refusal.
func TestEnrollUnknownTokenWhileWriterHeld(t *testing.T) {
	e := newEnv(t, sqliteDB)
	// The server writes now and then (its start's sync, publish, prune):
	// wait for it rather than fail the BEGIN IMMEDIATE below.
	raw, err := sql.Open("sqlite", filepath.Join(e.dir, "cascade.db")+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = e.client("").Call(ctx, http.MethodPost, api.PathEnroll, nil,
		api.EnrollRequest{Token: "cascade_enroll_guessed", Hostname: "x"}, nil)
	if !api.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("enrollment with an unknown token while the writer is held: %v, want 403", err)
	}
}
