// Package pgtest gives each test a PostgreSQL schema of its own: DSN
// creates an empty schema in the database named by CASCADE_TEST_POSTGRES
// (scripts/postgres-test-setup prints it) and drops it, with all it
// holds, when the test ends, so tests on one database run side by side
// and leave nothing behind.
//
// Without CASCADE_TEST_POSTGRES the test is skipped, so that the suite
// runs without a PostgreSQL server; CASCADE_REQUIRE_POSTGRES=1 turns the
// skip into a failure (CI sets it where PostgreSQL must be tested).
//
// A test that must stop or restart the database starts a private
// cluster of its own instead (StartCluster), never the machine's.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// DSN returns the DSN of a new, empty schema in the database named by
// CASCADE_TEST_POSTGRES (its search_path set to the schema), dropped at
// the test's cleanup.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("CASCADE_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CASCADE_REQUIRE_POSTGRES") == "1" {
			t.Fatal("CASCADE_REQUIRE_POSTGRES=1 but CASCADE_TEST_POSTGRES is not set (see scripts/postgres-test-setup)")
		}
		t.Skip("CASCADE_TEST_POSTGRES is not set (see scripts/postgres-test-setup)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse CASCADE_TEST_POSTGRES: %v", err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "cascade_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open CASCADE_TEST_POSTGRES: %v", err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
		admin.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
