package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the schema migrations, one directory per dialect.
// A migration is NNNN_name.sql; it runs once, in its own transaction, in
// ascending order, and is recorded in schema_migrations. Migrations are
// never edited once released: a change is a new file in both directories.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int64
	name    string
	sql     string
}

// migrations returns the dialect's migrations in ascending order.
func migrations(kind dialectKind) ([]migration, error) {
	dir := "migrations/" + kind.String()
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("read migrations: bad file name %s (want NNNN_name.sql)", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("read migrations: version %d twice", out[i].version)
		}
	}
	return out, nil
}

// goSteps are the migrations' steps that SQL alone cannot do, by
// version: each runs after the migration's SQL, in its transaction.
func (s *sqlStore) goSteps() map[int64]func(context.Context, *sql.Tx) error {
	return map[int64]func(context.Context, *sql.Tx) error{
		11: s.backfillAddresses, // 0011: index the addresses of existing endpoints
	}
}

// migrate applies the migrations the database lacks. On PostgreSQL it holds
// an advisory lock (one per schema) for the whole run, so server processes
// starting together apply each migration once; on SQLite each migration's
// BEGIN IMMEDIATE transaction does the same.
func (s *sqlStore) migrate(ctx context.Context) error {
	ms, err := migrations(s.kind)
	if err != nil {
		return err
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", translate(err))
	}
	defer conn.Close()
	if s.kind == dialectPostgres {
		const lock = "SELECT pg_advisory_lock(hashtext('cascade.store.migrate:' || coalesce(current_schema(), '')))"
		const unlock = "SELECT pg_advisory_unlock(hashtext('cascade.store.migrate:' || coalesce(current_schema(), '')))"
		if _, err := conn.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("migrate: take advisory lock: %w", translate(err))
		}
		// Unlock even if ctx is done; closing the session would too.
		defer conn.ExecContext(context.WithoutCancel(ctx), unlock) //nolint:errcheck
	}
	create := `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`
	if s.kind == dialectPostgres {
		create = `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`
	}
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", translate(err))
	}
	if err := s.checkNotNewer(ctx, conn, ms); err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.apply(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// checkNotNewer refuses a database that a newer program already migrated:
// this one would not know its schema.
func (s *sqlStore) checkNotNewer(ctx context.Context, conn *sql.Conn, ms []migration) error {
	var top sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&top); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", translate(err))
	}
	known := int64(0)
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
	}
	if top.Valid && top.Int64 > known {
		return fmt.Errorf("migrate: database schema version %d is newer than this program's %d", top.Int64, known)
	}
	return nil
}

// apply runs one migration in a transaction unless it is recorded already.
func (s *sqlStore) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", m.name, translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var n int
	if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, translate(err))
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate %s: %w", m.name, translate(err))
	}
	if step := s.goSteps()[m.version]; step != nil {
		if err := step(ctx, tx); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, translate(err))
		}
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, s.t(s.now())); err != nil {
		return fmt.Errorf("migrate %s: record: %w", m.name, translate(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", m.name, translate(err))
	}
	return nil
}
