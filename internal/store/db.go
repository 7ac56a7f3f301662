package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialectKind says which database a sqlStore talks to.
type dialectKind int

const (
	dialectSQLite dialectKind = iota
	dialectPostgres
)

func (k dialectKind) String() string {
	if k == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// sqlStore implements Store over database/sql. Queries are written once
// with "?" placeholders and rebound for PostgreSQL.
type sqlStore struct {
	kind dialectKind
	// w runs every write. On SQLite it holds a single connection, so the
	// process's writers queue in database/sql (honouring their contexts)
	// instead of failing with SQLITE_BUSY; on PostgreSQL w == r.
	w *sql.DB
	// r runs reads. On SQLite a pool of read-only connections that WAL
	// lets run alongside the writer.
	r     *sql.DB
	clock func() time.Time
	// rebound caches queries rewritten with $n placeholders.
	rebound sync.Map
	// stmts holds statements prepared on w (SQLite's bulk inserts), by
	// query; filled at Open, read-only afterwards.
	stmts map[string]*sql.Stmt
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteTimeLayout stores SQLite times as fixed-width UTC text, so that
// comparing the text compares the times.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// openSQLite opens the SQLite database at dsn ("sqlite:PATH" or PATH).
func openSQLite(ctx context.Context, dsn string, opts Options) (*sqlStore, error) {
	path := sqlitePath(dsn)
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalid)
	}
	params := sqliteParams(opts.BusyTimeout)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	w, err := sql.Open("sqlite", path+sep+params.Encode())
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := pingSQLite(ctx, w, opts.BusyTimeout); err != nil {
		w.Close()
		return nil, err
	}
	s := &sqlStore{kind: dialectSQLite, w: w, r: w, clock: opts.Clock}
	if path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return s, nil // one connection holds the whole database
	}
	params.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+sep+params.Encode())
	if err != nil {
		w.Close()
		return nil, err
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 8
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	return s, nil
}

// pingSQLite opens db's first connection, whose pragmas switch a new
// database to WAL. That switch needs the file to itself and answers
// SQLITE_BUSY at once, without waiting for busy_timeout, when another
// process opens the same new database at the same moment: it is retried
// until busy (busy_timeout's value) has passed.
func pingSQLite(ctx context.Context, db *sql.DB, busy time.Duration) error {
	if busy <= 0 {
		busy = 10 * time.Second
	}
	deadline := time.Now().Add(busy)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// sqlitePath returns the file path (or URI) of an SQLite DSN.
func sqlitePath(dsn string) string {
	if hasPrefixFold(dsn, "sqlite:") {
		return dsn[len("sqlite:"):]
	}
	return dsn
}

// sqliteParams returns the DSN parameters of every SQLite connection.
func sqliteParams(busy time.Duration) url.Values {
	if busy <= 0 {
		busy = 10 * time.Second
	}
	params := url.Values{}
	params.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "foreign_keys(1)")
	// FULL: a commit returns once the WAL is on disk, so what the server
	// acknowledged (an enrollment, a credential, a policy version) survives
	// a power cut; NORMAL syncs the WAL only at checkpoints. Reports cost
	// one sync per ingestion batch, the ingester's batches grow with load
	// (BENCHMARKS.md, report ingestion).
	params.Add("_pragma", "synchronous(FULL)")
	// A page cache of 64 MiB per connection (the default is 2 MiB) keeps
	// a large ingestion batch from spilling to the file mid-transaction.
	params.Add("_pragma", "cache_size(-65536)")
	// BEGIN IMMEDIATE takes the write lock at the start of a transaction,
	// so transactions of other processes wait (busy_timeout) rather than
	// fail when a read lock would need upgrading.
	params.Set("_txlock", "immediate")
	return params
}

// openPostgres opens the PostgreSQL database at dsn.
func openPostgres(ctx context.Context, dsn string, opts Options) (*sqlStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &sqlStore{kind: dialectPostgres, w: db, r: db, clock: opts.Clock}, nil
}

// Close closes the connection pools.
func (s *sqlStore) Close() error {
	var err error
	for _, st := range s.stmts {
		err = errors.Join(err, st.Close())
	}
	err = errors.Join(err, s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// q returns query with placeholders in the dialect's form.
func (s *sqlStore) q(query string) string {
	if s.kind != dialectPostgres {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	s.rebound.Store(query, out) // the set of queries is bounded
	return out
}

// now returns the clock's time in the stored precision.
func (s *sqlStore) now() time.Time { return normTime(s.clock()) }

// normTime converts t to the stored form: UTC, microseconds.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// t encodes a time as a query argument; the zero time is NULL.
func (s *sqlStore) t(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = normTime(t)
	if s.kind == dialectSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// timeCol scans a nullable time column of either dialect.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = normTime(v)
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

func (c timeCol) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("scan time: %w", err)
	}
	*c.t = normTime(t)
	return nil
}

// hashCol scans a hex hash column.
type hashCol struct{ h *Hash }

func (c hashCol) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("scan hash: unexpected %T", src)
	}
	h, err := ParseHash(s)
	if err != nil {
		return err
	}
	*c.h = h
	return nil
}

// nullStr encodes "" as NULL.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// strCol scans a nullable text column, NULL as "".
type strCol struct{ s *string }

func (c strCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.s = ""
	case string:
		*c.s = v
	case []byte:
		*c.s = string(v)
	default:
		return fmt.Errorf("scan text: unexpected %T", src)
	}
	return nil
}

// dbErrorKind classifies a driver error.
type dbErrorKind int

const (
	dbOther dbErrorKind = iota
	dbUnique
	dbForeignKey
)

func classify(err error) dbErrorKind {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return dbUnique
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return dbForeignKey
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return dbUnique
		case "23503":
			return dbForeignKey
		}
	}
	return dbOther
}

// tx runs fn in a write transaction, committing when fn returns nil.
// When ctx carries an audit entry still to write (WithAudit), the entry
// is written in the same transaction, after fn's change: both are
// committed, or neither.
func (s *sqlStore) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	a := pendingAudit(ctx)
	if a != nil {
		defer a.mu.Unlock()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	var entry AuditEntry
	if a != nil {
		if entry, err = s.insertAudit(ctx, tx, a.entry); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("record audit entry: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if a != nil {
		a.entry, a.written = entry, true
	}
	return nil
}

// affected returns ErrNotFound when res changed no row.
func affected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// timeZero is the zero time: "not set".
var timeZero time.Time

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// prefixed returns the comma-separated columns cols, each qualified with
// prefix ("e.").
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
