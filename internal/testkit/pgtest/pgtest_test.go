package pgtest

import (
	"context"
	"database/sql"
	"testing"
)

// TestDSN: the schema exists and is the search_path while the test runs,
// and is dropped with what it holds when the test ends.
func TestDSN(t *testing.T) {
	var dsn, schema string
	t.Run("inner", func(t *testing.T) {
		dsn = DSN(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow("SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("create a table in the schema: %v", err)
		}
	})
	if dsn == "" || t.Skipped() {
		return
	}
	if schema == "" {
		t.Fatal("no current schema")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(context.Background(),
		"SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s left behind", schema)
	}
}
