package pgtest

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"
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

// TestCluster: a private cluster serves a database of its own over TCP;
// what was committed before a restart is there after it, the session
// open across the restart fails and a new one works; at cleanup the
// server is stopped and its directory removed.
func TestCluster(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		c := StartCluster(t)
		dir = c.dir
		db, err := sql.Open("pgx", c.CreateDatabase(t, "restart_test"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if _, err := db.Exec("CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var pid int
		if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if err := c.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err == nil {
			t.Fatal("a session opened before the restart still works: the server did not restart")
		}
		conn.Close()
		var x int
		if err := db.QueryRowContext(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
			t.Fatalf("after the restart: %d %v", x, err)
		}
	})
	if dir == "" {
		return // skipped: no PostgreSQL server programs
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the private cluster's directory %s was left behind (%v)", dir, err)
	}
}
