package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
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

// openPostgres opens a store on a new schema, both removed at cleanup.
func openPostgres(t testing.TB, clock func() time.Time) store.Store {
	return openDSN(t, pgtest.DSN(t), clock)
}
