package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// SiteVersion is one signed state of the site repository as the database
// holds it: the version and bytes of its timestamp.json. The files it
// names are site files (Cluster.SiteFile).
type SiteVersion struct {
	Version int64
	// Timestamp is the signed timestamp.json, byte for byte.
	Timestamp []byte
	// Writer names the process that committed it.
	Writer  string
	Created time.Time
}

// SiteCommit is a new signed state of the site repository.
type SiteCommit struct {
	// Previous is the version it follows; 0 for the first version the
	// database holds (which may be any version: a repository made before
	// the database held it).
	Previous int64
	// Version is Previous+1 (or any positive version for the first).
	Version   int64
	Timestamp []byte
	// Files are the files of the published tree the state adds, by path
	// relative to it ("metadata/3.snapshot.json", "targets/..."). Files
	// are immutable: a path the database holds already keeps its bytes.
	Files map[string][]byte
}

// SitePrune says what Writer.PruneSite keeps: the newest Keep versions,
// every version created at or after Before, the files any of them needs
// and the files Always keeps. A version is pruned only with every version
// before it, so the versions left are still one chain.
type SitePrune struct {
	// Keep is how many of the newest versions are kept whatever their
	// age (at least 1: the newest is always kept).
	Keep int
	// Before: versions created before it (and beyond Keep) are pruned;
	// zero: age keeps none.
	Before time.Time
	// Needs returns the paths of the site files a version needs, given
	// its timestamp.json and a reader of site files (ErrNotFound for a
	// file the database lacks). An error abandons the prune: nothing is
	// deleted unless every version kept is accounted for.
	Needs func(ctx context.Context, timestamp []byte, read func(path string) ([]byte, error)) ([]string, error)
	// Always reports the files never pruned (the root metadata, which
	// clients walk from their first root to the newest); nil: none.
	Always func(path string) bool
}

// SitePruned is what Writer.PruneSite deleted.
type SitePruned struct {
	Versions, Files int64
	// Oldest is the oldest version kept (0: the database holds none).
	Oldest int64
}

// Cluster is what the server processes sharing one database have in
// common besides the Store: the site repository's signed states and
// files, small shared values and the choice of the one writer (signals
// between the processes are the Store's Signals, TopicServer). The SQLite and PostgreSQL stores implement it
// (see ClusterOf).
type Cluster interface {
	// SiteHead returns the newest site version; ErrNotFound if there is
	// none yet.
	SiteHead(ctx context.Context) (SiteVersion, error)
	// SiteFile returns a site file by path; ErrNotFound if unknown.
	SiteFile(ctx context.Context, path string) ([]byte, error)
	// Shared returns a shared value; ErrNotFound if unset.
	Shared(ctx context.Context, name string) ([]byte, error)
	// PutShared sets a shared value; with keep, a value already set is
	// left as it is (and no error is returned).
	PutShared(ctx context.Context, name string, data []byte, keep bool) error
	// TryWriter makes this process the writer if no other process is:
	// ok is false when another one is. On SQLite the one process always
	// is. The Writer is held until Release or until Lost is closed.
	TryWriter(ctx context.Context, holder string) (w Writer, ok bool, err error)
	// RecordServerKey records (or refreshes) a server process's key.
	RecordServerKey(ctx context.Context, k ServerKey) error
	// ServerKeys returns every recorded key, oldest first.
	ServerKeys(ctx context.Context) ([]ServerKey, error)
	// ForgetServerKey removes a recorded key; ErrNotFound if unknown.
	ForgetServerKey(ctx context.Context, fingerprint string) error
}

// Writer is the right to do the work that must happen once among the
// server processes; see Cluster.TryWriter.
type Writer interface {
	// CommitSite records a new site version and its files in one
	// transaction. A version that does not follow the newest one is
	// ErrConflict (another writer committed it: this one is stale or its
	// copy is behind); a writer that lost its lock cannot commit at all.
	CommitSite(ctx context.Context, c SiteCommit) error
	// PruneSite deletes, in one transaction, the site versions outside
	// p's retention window and every site file that no version left
	// needs (p.Needs) and that p.Always does not keep. Like CommitSite,
	// only a process that still holds the writer role can prune.
	PruneSite(ctx context.Context, p SitePrune) (SitePruned, error)
	// Lost is closed when the writer's hold ended: its database session
	// failed (another process may be the writer now) or Release was
	// called.
	Lost() <-chan struct{}
	// Release gives the writer's hold up.
	Release() error
}

// ClusterOf returns st's Cluster, or false for a Store without one (a
// test double).
func ClusterOf(st Store) (Cluster, bool) {
	c, ok := st.(Cluster)
	return c, ok
}

// SiteHead implements Cluster.
func (s *sqlStore) SiteHead(ctx context.Context) (SiteVersion, error) {
	var v SiteVersion
	err := s.r.QueryRowContext(ctx, `SELECT version, timestamp_json, writer, created_at FROM site_versions
		ORDER BY version DESC LIMIT 1`).Scan(&v.Version, &v.Timestamp, &v.Writer, timeCol{&v.Created})
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("read the newest site version: %w", ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("read the newest site version: %w", translate(err))
	}
	return v, nil
}

// SiteFile implements Cluster.
func (s *sqlStore) SiteFile(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, s.q(`SELECT data FROM site_files WHERE path = ?`), path).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read site file %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read site file %s: %w", path, translate(err))
	}
	return b, nil
}

// Shared implements Cluster.
func (s *sqlStore) Shared(ctx context.Context, name string) ([]byte, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, s.q(`SELECT data FROM server_shared WHERE name = ?`), name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read shared %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read shared %s: %w", name, translate(err))
	}
	return b, nil
}

// PutShared implements Cluster.
func (s *sqlStore) PutShared(ctx context.Context, name string, data []byte, keep bool) error {
	q := `INSERT INTO server_shared (name, data, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`
	if keep {
		q = `INSERT INTO server_shared (name, data, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`
	}
	if data == nil {
		data = []byte{}
	}
	if _, err := s.w.ExecContext(ctx, s.q(q), name, data, s.t(s.now())); err != nil {
		return fmt.Errorf("write shared %s: %w", name, translate(err))
	}
	return nil
}

// commitSite records c in tx (see Writer.CommitSite).
func (s *sqlStore) commitSite(ctx context.Context, tx *sql.Tx, c SiteCommit, holder string) error {
	op := fmt.Sprintf("commit site version %d", c.Version)
	if c.Version <= 0 || len(c.Timestamp) == 0 || (c.Previous != 0 && c.Version != c.Previous+1) {
		return fmt.Errorf("%s: %w: version %d cannot follow %d", op, ErrInvalid, c.Version, c.Previous)
	}
	var head sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM site_versions`).Scan(&head); err != nil {
		return fmt.Errorf("%s: %w", op, translate(err))
	}
	if head.Int64 != c.Previous {
		return fmt.Errorf("%s: %w", op, &dbError{kind: ErrConflict, msg: fmt.Sprintf(
			"the database's newest site version is %d, not %d: another writer committed it", head.Int64, c.Previous)})
	}
	now := s.t(s.now())
	for p, data := range c.Files {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO site_files (path, data, created_at) VALUES (?, ?, ?)
			ON CONFLICT (path) DO NOTHING`), p, data, now); err != nil {
			return fmt.Errorf("%s: file %s: %w", op, p, translate(err))
		}
	}
	var prev any
	if c.Previous != 0 {
		prev = c.Previous
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO site_versions (version, previous, timestamp_json, writer, created_at)
		VALUES (?, ?, ?, ?, ?)`), c.Version, prev, c.Timestamp, holder, now); err != nil {
		err = translate(err)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
			return fmt.Errorf("%s: %w", op, &dbError{kind: ErrConflict, msg: "another writer committed a site version first", cause: DriverError(err)})
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// sqliteWriter is the writer on SQLite: the one server process.
type sqliteWriter struct {
	s      *sqlStore
	holder string
	lost   chan struct{}
	once   sync.Once
}

func (w *sqliteWriter) CommitSite(ctx context.Context, c SiteCommit) error {
	return w.s.tx(ctx, func(tx *sql.Tx) error { return w.s.commitSite(ctx, tx, c, w.holder) })
}

func (w *sqliteWriter) PruneSite(ctx context.Context, p SitePrune) (SitePruned, error) {
	var res SitePruned
	err := w.s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = w.s.pruneSite(ctx, tx, p)
		return err
	})
	return res, err
}

func (w *sqliteWriter) Lost() <-chan struct{} { return w.lost }

func (w *sqliteWriter) Release() error {
	w.once.Do(func() { close(w.lost) })
	return nil
}

// TryWriter implements Cluster.
func (s *sqlStore) TryWriter(ctx context.Context, holder string) (Writer, bool, error) {
	if s.kind == dialectSQLite {
		return &sqliteWriter{s: s, holder: holder, lost: make(chan struct{})}, true, nil
	}
	return s.tryPostgresWriter(ctx, holder)
}

// sitePruneBatch bounds how many site files one DELETE names.
const sitePruneBatch = 500

// pruneSite prunes the site history in tx (see Writer.PruneSite).
func (s *sqlStore) pruneSite(ctx context.Context, tx *sql.Tx, p SitePrune) (SitePruned, error) {
	const op = "prune the site repository's history"
	var res SitePruned
	if p.Needs == nil {
		return res, fmt.Errorf("%s: %w: no rule for the files a version needs", op, ErrInvalid)
	}
	keep := max(p.Keep, 1)
	var head sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM site_versions`).Scan(&head); err != nil {
		return res, fmt.Errorf("%s: %w", op, translate(err))
	}
	if !head.Valid {
		return res, nil
	}
	oldest := head.Int64 - int64(keep) + 1
	if !p.Before.IsZero() {
		var young sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT MIN(version) FROM site_versions WHERE created_at >= ?`),
			s.t(p.Before)).Scan(&young); err != nil {
			return res, fmt.Errorf("%s: %w", op, translate(err))
		}
		if young.Valid && young.Int64 < oldest {
			oldest = young.Int64
		}
	}
	r, err := tx.ExecContext(ctx, s.q(`DELETE FROM site_versions WHERE version < ?`), oldest)
	if err != nil {
		return res, fmt.Errorf("%s: versions before %d: %w", op, oldest, translate(err))
	}
	res.Versions, _ = r.RowsAffected()
	if err := tx.QueryRowContext(ctx, `SELECT MIN(version) FROM site_versions`).Scan(&res.Oldest); err != nil {
		return res, fmt.Errorf("%s: %w", op, translate(err))
	}

	// The files every version left needs.
	read := func(path string) ([]byte, error) {
		var b []byte
		err := tx.QueryRowContext(ctx, s.q(`SELECT data FROM site_files WHERE path = ?`), path).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read site file %s: %w", path, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("read site file %s: %w", path, translate(err))
		}
		return b, nil
	}
	type version struct {
		v  int64
		ts []byte
	}
	rows, err := tx.QueryContext(ctx, `SELECT version, timestamp_json FROM site_versions ORDER BY version`)
	if err != nil {
		return res, fmt.Errorf("%s: %w", op, translate(err))
	}
	versions, err := collect(rows, func(row scanner) (version, error) {
		var v version
		err := row.Scan(&v.v, &v.ts)
		return v, err
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", op, translate(err))
	}
	needed := map[string]bool{}
	for _, v := range versions {
		paths, err := p.Needs(ctx, v.ts, read)
		if err != nil {
			return res, fmt.Errorf("%s: the files of version %d: %w", op, v.v, err)
		}
		for _, path := range paths {
			needed[path] = true
		}
	}

	if rows, err = tx.QueryContext(ctx, `SELECT path FROM site_files`); err != nil {
		return res, fmt.Errorf("%s: %w", op, translate(err))
	}
	paths, err := collect(rows, func(row scanner) (string, error) {
		var path string
		err := row.Scan(&path)
		return path, err
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", op, translate(err))
	}
	var drop []any
	for _, path := range paths {
		if !needed[path] && (p.Always == nil || !p.Always(path)) {
			drop = append(drop, path)
		}
	}
	for len(drop) > 0 {
		n := min(len(drop), sitePruneBatch)
		r, err := tx.ExecContext(ctx, s.q(`DELETE FROM site_files WHERE path IN (?`+strings.Repeat(", ?", n-1)+`)`), drop[:n]...)
		if err != nil {
			return res, fmt.Errorf("%s: files: %w", op, translate(err))
		}
		d, _ := r.RowsAffected()
		res.Files += d
		drop = drop[n:]
	}
	return res, nil
}
