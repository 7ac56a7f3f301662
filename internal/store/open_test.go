package store_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// checkReadOnlyRefusal fails the test unless err refuses a database that
// cannot be written, in one line naming it as name.
func checkReadOnlyRefusal(t *testing.T, err error, name string) {
	t.Helper()
	if !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("open: %v, want ErrReadOnly", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "database "+name+" cannot be written: ") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q: want one line starting %q", msg, "database "+name+" cannot be written: ")
	}
}

// TestOpenReadOnlySQLite: an SQLite database that can be read but not
// written is refused at Open, naming the file.
func TestOpenReadOnlySQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cascade.db")
	st, err := store.Open(t.Context(), "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("uri_mode_ro", func(t *testing.T) {
		// Read-only by the URI: works for every user, root included.
		uri := "file:" + path + "?mode=ro"
		_, err := store.Open(t.Context(), "sqlite:"+uri, store.Options{})
		checkReadOnlyRefusal(t, err, uri)
		t.Log(err)
	})
	t.Run("file_mode_0444", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes read-only files; the uri_mode_ro case covers the check")
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Chmod(p, 0o444); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Chmod(p, 0o644)
			}
		})
		_, err := store.Open(t.Context(), path, store.Options{})
		checkReadOnlyRefusal(t, err, path)
	})
}

// TestOpenReadOnlyPostgres: a PostgreSQL database that accepts only
// reads (default_transaction_read_only, as on a standby) is refused at
// Open, naming the database without its password.
func TestOpenReadOnlyPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	st, err := store.Open(t.Context(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on")
	u.RawQuery = q.Encode()
	ro := u.String()
	_, err = store.Open(t.Context(), ro, store.Options{})
	checkReadOnlyRefusal(t, err, store.RedactDSN(ro))
	if pw, ok := u.User.Password(); ok && strings.Contains(err.Error(), ":"+pw+"@") {
		t.Fatalf("error %q shows the password", err)
	}
}

// TestOpenWritable: the write check leaves nothing behind.
func TestOpenWritable(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", sqliteDSN}, {"postgres", pgtest.DSN}} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := tc.dsn(t)
			for range 2 {
				st, err := store.Open(context.Background(), dsn, store.Options{Clock: time.Now})
				if err != nil {
					t.Fatal(err)
				}
				st.Close()
			}
			kind := tc.name
			var n int
			if err := rawDB(t, kind, dsn).QueryRow("SELECT COUNT(*) FROM domains").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d write-check rows left in domains", n)
			}
		})
	}
}

// TestOpenReadOnlyRolePostgres: a PostgreSQL role that may only read the
// store's tables is refused at Open, naming the database. (It may create
// tables in the schema, so the migrations find nothing to refuse: the
// write check does.)
func TestOpenReadOnlyRolePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	st, err := store.Open(t.Context(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	role := "reader_" + strings.TrimPrefix(schema, "cascade_test_")
	admin := rawDB(t, "postgres", dsn)
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD 'reader'",
		"GRANT USAGE, CREATE ON SCHEMA " + schema + " TO " + role,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + role,
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := admin.Exec(q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	u.User = url.UserPassword(role, "reader")
	_, err = store.Open(t.Context(), u.String(), store.Options{})
	checkReadOnlyRefusal(t, err, store.RedactDSN(u.String()))
}

// TestOpenMigrationFailureNamed: a migration the database refuses names
// the migration and the database, in the store's words.
func TestOpenMigrationFailureNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cascade.db")
	raw := rawDB(t, "sqlite", "sqlite:"+path)
	// A table the first migration creates, already there: it fails.
	if _, err := raw.Exec("CREATE TABLE admin_tokens (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(t.Context(), "sqlite:"+path, store.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "open database "+path+": migrate 0001_init.sql: ") ||
		strings.Contains(err.Error(), "already exists") {
		t.Fatalf("open: %v", err)
	}
}
