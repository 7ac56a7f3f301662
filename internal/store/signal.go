package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Signals carry short messages between the server processes sharing a
// PostgreSQL database (LISTEN/NOTIFY), so that one learns at once what
// another changed instead of at its next poll. A signal is a hint, never
// the state: it is delivered only to the processes listening when it is
// committed, so a listener reads the state it cares about again each
// time it starts listening. An SQLite database has one server process:
// it has no signals.
type Signals interface {
	// Listen calls fn with the payload of each signal sent on topic by
	// any process sharing the database, from a connection of its own,
	// until ctx is cancelled (it returns nil) or the connection fails (it
	// returns the error; the caller listens again after a pause). Once
	// listening, before any signal, it calls fn with "": signals sent
	// before then were missed, so the caller reads the state again.
	// fn runs on Listen's goroutine. On SQLite it returns an error
	// wrapping errors.ErrUnsupported at once.
	Listen(ctx context.Context, topic string, fn func(payload string)) error
	// Signal sends payload on topic to every process listening, this one
	// included, outside any transaction. On SQLite it does nothing: there
	// are no other processes.
	Signal(ctx context.Context, topic, payload string) error
}

// TopicNotifications is the topic of the signals the store sends when
// a notification is created ("created ID") and when its clients are
// released ("released ID"), with the transaction doing it.
const TopicNotifications = "notifications"

// TopicServer is the topic of the signals the server processes send each
// other about the site repository and the writer's work: "site N" (the
// writer committed site version N), "vendor N" (it synced the vendor
// timestamp N), "publish" and "sync" (another process asks the writer).
const TopicServer = "server"

// channelSQL is the SQL expression of topic's PostgreSQL channel:
// "cascade_TOPIC_SCHEMA", with the md5 of the schema when that is longer
// than a channel name may be (63 bytes). Channels are shared by every
// schema of a database, so two sites (or two tests) in one database, each
// in its own schema, do not hear each other. topic is one of the
// constants above (lower-case letters and "_").
func channelSQL(topic string) string {
	for _, r := range topic {
		if (r < 'a' || r > 'z') && r != '_' {
			panic("store: bad signal topic " + topic)
		}
	}
	name := `'cascade_` + topic + `_' || COALESCE(current_schema(), '')`
	return `CASE WHEN octet_length(` + name + `) <= 63 THEN ` + name +
		` ELSE 'cascade_` + topic + `_' || md5(current_schema()) END`
}

// signal sends payload on topic when tx commits (PostgreSQL only).
func (s *sqlStore) signal(ctx context.Context, tx *sql.Tx, topic, payload string) error {
	if s.kind != dialectPostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify(`+channelSQL(topic)+`, $1)`, payload)
	return err
}

// Signal implements Signals.
func (s *sqlStore) Signal(ctx context.Context, topic, payload string) error {
	if s.kind != dialectPostgres {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `SELECT pg_notify(`+channelSQL(topic)+`, $1)`, payload); err != nil {
		return fail("signal "+topic, err)
	}
	return nil
}

// Listen implements Signals. The connection is taken from the pool for
// as long as it listens and closed afterwards, never returned to it.
func (s *sqlStore) Listen(ctx context.Context, topic string, fn func(payload string)) error {
	op := "listen for " + topic + " signals"
	if s.kind != dialectPostgres {
		return fmt.Errorf("%s: %w: an SQLite database has one server process", op, errors.ErrUnsupported)
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fail(op, err)
	}
	defer conn.Close()
	var werr error
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			werr = fmt.Errorf("unexpected driver connection %T", dc)
			return driver.ErrBadConn
		}
		pc := sc.Conn()
		var ch string
		if err := pc.QueryRow(ctx, `SELECT `+channelSQL(topic)).Scan(&ch); err != nil {
			werr = err
			return driver.ErrBadConn
		}
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			werr = err
			return driver.ErrBadConn
		}
		fn("")
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				werr = err
				// A listening connection must not go back to the pool,
				// where it would collect signals nobody reads.
				return driver.ErrBadConn
			}
			fn(n.Payload)
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	if werr != nil {
		err = werr
	}
	return fail(op, err)
}
