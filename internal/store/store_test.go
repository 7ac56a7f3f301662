package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
	"github.com/cascade-update/cascade/internal/testkit/storetest"
)

func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }

func TestPostgres(t *testing.T) { storetest.Run(t, openPostgres) }

// backends names a fresh database of each kind.
var backends = []struct {
	name string
	dsn  func(testing.TB) string
}{
	{"sqlite", sqliteDSN},
	{"postgres", pgtest.DSN},
}

// TestReopen: data survives Close and Open, and migrations run once.
func TestReopen(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			ctx := context.Background()
			st, err := store.Open(ctx, dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateDomain(ctx, "kept"); err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = openDSN(t, dsn, nil)
			if _, err := st.Domain(ctx, "kept"); err != nil {
				t.Fatalf("after reopening: %v", err)
			}
			if n := countMigrations(t, b.name, dsn); n != migrationCount {
				t.Fatalf("schema_migrations has %d rows, want %d", n, migrationCount)
			}
		})
	}
}

// TestConcurrentOpen: server processes starting together on one database
// each open it; the migrations are applied once.
func TestConcurrentOpen(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			const n = 6
			errs := make(chan error, n)
			stores := make(chan store.Store, n)
			for range n {
				go func() {
					st, err := store.Open(context.Background(), dsn, store.Options{})
					if err == nil {
						stores <- st
					}
					errs <- err
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			close(stores)
			for st := range stores {
				if _, err := st.ListDomains(context.Background()); err != nil {
					t.Error(err)
				}
				st.Close()
			}
			if got := countMigrations(t, b.name, dsn); got != migrationCount {
				t.Fatalf("schema_migrations has %d rows, want %d", got, migrationCount)
			}
		})
	}
}

// TestNewerSchema: a database migrated by a newer program is refused.
func TestNewerSchema(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			st, err := store.Open(context.Background(), dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			db := rawDB(t, b.name, dsn)
			if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at)
				VALUES (9999, '9999_future.sql', CURRENT_TIMESTAMP)`); err != nil {
				t.Fatal(err)
			}
			_, err = store.Open(context.Background(), dsn, store.Options{})
			if err == nil || !strings.Contains(err.Error(), "newer") {
				t.Fatalf("opening a newer schema: %v", err)
			}
		})
	}
}

// TestSQLiteSettings: the SQLite file is in WAL mode and enforces foreign
// keys; both DSN forms name the same file.
func TestSQLiteSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	st := openDSN(t, path, nil)
	if _, err := st.CreateDomain(context.Background(), "d"); err != nil {
		t.Fatal(err)
	}
	st2 := openDSN(t, "sqlite:"+path, nil)
	if _, err := st2.Domain(context.Background(), "d"); err != nil {
		t.Fatalf("sqlite:PATH and PATH differ: %v", err)
	}
	var mode string
	if err := rawDB(t, "sqlite", path).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
	// A report of an unknown endpoint fails on the foreign key.
	err := st.AddReports(context.Background(), []store.Report{{EndpointID: "ep_none"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign keys not enforced: %v", err)
	}
	if _, err := store.Open(context.Background(), "sqlite:", store.Options{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty path: %v", err)
	}
}

// TestErrorsNameOperation: errors say what failed.
func TestErrorsNameOperation(t *testing.T) {
	st := openSQLite(t, time.Now)
	_, err := st.Endpoint(context.Background(), "ep_x")
	if err == nil || err.Error() != "get endpoint ep_x: not found" {
		t.Fatalf("error %q", err)
	}
	_, err = st.CreateDomain(context.Background(), "d")
	if err == nil {
		_, err = st.CreateDomain(context.Background(), "d")
	}
	if !errors.Is(err, store.ErrConflict) || err.Error() != "create domain d: domain name d is already used" {
		t.Fatalf("error %q", err)
	}
}

// rawDB opens the database of a store directly, closed at cleanup.
func rawDB(t *testing.T, kind, dsn string) *sql.DB {
	t.Helper()
	driver, name := "pgx", dsn
	if kind == "sqlite" {
		driver, name = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func countMigrations(t *testing.T, kind, dsn string) int {
	t.Helper()
	var n int
	if err := rawDB(t, kind, dsn).QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
