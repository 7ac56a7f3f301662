package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// sqliteDSN returns the DSN of a new SQLite database in a temporary
// directory.
func sqliteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "cascade.db")
}

// openSQLite opens a new SQLite store closed at cleanup.
func openSQLite(t testing.TB, clock func() time.Time) store.Store {
	return openDSN(t, sqliteDSN(t), clock)
}

// openDSN opens dsn and closes the store at cleanup.
func openDSN(t testing.TB, dsn string, clock func() time.Time) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// postgresDSN returns the DSN of a new, empty schema in the database named
// by CASCADE_TEST_POSTGRES (search_path set to it), dropped at cleanup.
// Without that variable the test is skipped, or fails when
// CASCADE_REQUIRE_POSTGRES=1.
func postgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("CASCADE_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CASCADE_REQUIRE_POSTGRES") == "1" {
			t.Fatal("CASCADE_REQUIRE_POSTGRES=1 but CASCADE_TEST_POSTGRES is not set (see scripts/postgres-test-setup)")
		}
		t.Skip("CASCADE_TEST_POSTGRES is not set (see scripts/postgres-test-setup)")
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "cascade_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse CASCADE_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openPostgres opens a store on a new schema, both removed at cleanup.
func openPostgres(t testing.TB, clock func() time.Time) store.Store {
	return openDSN(t, postgresDSN(t), clock)
}
