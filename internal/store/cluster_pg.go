package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// On PostgreSQL the writer holds a session advisory lock on a connection
// of its own: the database releases it the moment that session ends (the
// process died, its connection broke), and the writer's commits run on
// that same session, so a process that lost the lock cannot commit. The
// lock, like the signal channel, is named after the schema
// (current_schema()), so that databases shared by several sites (or
// tests) keep them apart.
const writerLockKey = `hashtextextended('cascade.server.writer:' || coalesce(current_schema(), ''), 0)`

// writerPing is how often the writer checks its session; a failed check
// ends its hold (Lost), well before another process can take over.
const writerPing = 2 * time.Second

type pgWriter struct {
	s      *sqlStore
	holder string
	mu     sync.Mutex // one use of conn at a time
	conn   *sql.Conn
	lost   chan struct{}
	once   sync.Once
	stop   chan struct{}
}

func (s *sqlStore) tryPostgresWriter(ctx context.Context, holder string) (Writer, bool, error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("take the writer lock: %w", translate(err))
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(`+writerLockKey+`)`).Scan(&ok); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("take the writer lock: %w", translate(err))
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	// A writer cut off by the network holds the lock until the database
	// notices: keepalives bound that to about 11 s (on TCP connections).
	for _, set := range []string{"SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 3"} {
		_, _ = conn.ExecContext(ctx, set)
	}
	w := &pgWriter{s: s, holder: holder, conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	go w.watch()
	return w, true, nil
}

// watch checks the session every writerPing and ends the hold when it
// fails.
func (w *pgWriter) watch() {
	t := time.NewTicker(writerPing)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), writerPing)
		var one int
		err := w.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
		cancel()
		w.mu.Unlock()
		if err != nil {
			w.end()
			return
		}
	}
}

// end closes the session (releasing the lock if the database still
// holds it) and Lost.
func (w *pgWriter) end() {
	w.once.Do(func() {
		close(w.stop)
		w.conn.Close()
		close(w.lost)
	})
}

func (w *pgWriter) CommitSite(ctx context.Context, c SiteCommit) error {
	err := w.inTx(ctx, fmt.Sprintf("commit site version %d", c.Version), func(tx *sql.Tx) error {
		return w.s.commitSite(ctx, tx, c, w.holder)
	})
	if err != nil {
		return err
	}
	// The version is committed: a notice that does not go out is made up
	// for by the other processes' periodic check (Listen's contract).
	_ = w.s.Signal(ctx, TopicServer, fmt.Sprintf("site %d", c.Version))
	return nil
}

func (w *pgWriter) PruneSite(ctx context.Context, p SitePrune) (SitePruned, error) {
	var res SitePruned
	err := w.inTx(ctx, "prune the site repository's history", func(tx *sql.Tx) error {
		var err error
		res, err = w.s.pruneSite(ctx, tx, p)
		return err
	})
	if err != nil {
		return SitePruned{}, err
	}
	return res, nil
}

// inTx runs fn in a transaction on the writer's own session, which holds
// the lock: a writer that lost it does nothing (ErrConflict), and a
// session the database dropped ends the writer. fn's errors are returned
// as they are; op names the others.
func (w *pgWriter) inTx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.lost:
		return fmt.Errorf("%s: %w", op, &dbError{kind: ErrConflict, msg: "this process is no longer the writer"})
	default:
	}
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		err = translate(err)
		if errors.Is(err, ErrUnavailable) {
			go w.end()
		}
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", op, translate(err))
	}
	return nil
}

func (w *pgWriter) Lost() <-chan struct{} { return w.lost }

func (w *pgWriter) Release() error {
	w.mu.Lock()
	select {
	case <-w.lost:
		w.mu.Unlock()
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := w.conn.ExecContext(ctx, `SELECT pg_advisory_unlock(`+writerLockKey+`)`)
	cancel()
	w.mu.Unlock()
	w.end()
	if err != nil {
		return fmt.Errorf("release the writer lock: %w", translate(err))
	}
	return nil
}
