// Package benchdb gives a benchmark program an empty database of its own:
// a new SQLite file in a temporary directory, or a new schema in a
// PostgreSQL database, removed when the run ends.
package benchdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// New returns the DSN of an empty database: with pg "", a new SQLite
// file; else a new schema (named prefix and random hex) in the PostgreSQL
// database pg, the DSN's search_path set to it. cleanup removes it.
func New(ctx context.Context, pg, prefix string) (dsn string, cleanup func(), err error) {
	if pg == "" {
		dir, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", nil, err
		}
		return "sqlite:" + filepath.Join(dir, "cascade.db"), func() { os.RemoveAll(dir) }, nil
	}
	u, err := url.Parse(pg)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL DSN: %w", err)
	}
	admin, err := sql.Open("pgx", pg)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	cleanup = func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			fmt.Fprintln(os.Stderr, "drop schema:", err)
		}
		admin.Close()
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), cleanup, nil
}
