package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// signalPatience bounds each wait for a signal: reaching it means a hang.
const signalPatience = 20 * time.Second

// listening is a running Store.Listen.
type listening struct {
	payloads chan string
	cancel   context.CancelFunc
	done     chan error
}

func listenTo(t *testing.T, st store.Store) *listening {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listening{payloads: make(chan string, 16), cancel: cancel, done: make(chan error, 1)}
	go func() {
		l.done <- st.Listen(ctx, store.TopicNotifications, func(p string) { l.payloads <- p })
	}()
	t.Cleanup(func() { cancel(); <-l.done })
	return l
}

func (l *listening) next(t *testing.T) string {
	t.Helper()
	select {
	case p := <-l.payloads:
		return p
	case err := <-l.done:
		t.Fatalf("listen ended: %v", err)
	case <-time.After(signalPatience):
		t.Fatal("no signal")
	}
	return ""
}

func (l *listening) expect(t *testing.T, want string) {
	t.Helper()
	if got := l.next(t); got != want {
		t.Fatalf("signal %q, want %q", got, want)
	}
}

func TestListenSQLite(t *testing.T) {
	st := openSQLite(t, nil)
	err := st.Listen(context.Background(), store.TopicNotifications, func(string) { t.Error("called") })
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("listen on SQLite: %v", err)
	}
}

// TestListenPostgres: a store hears the notifications created and
// released through another store on the same schema, in commit order,
// and not those of another schema of the database; cancelling ends
// Listen with nil, a lost connection with an error.
func TestListenPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openDSN(t, dsn, nil), openDSN(t, dsn, nil)
	other := openPostgres(t, nil)
	ctx := context.Background()
	la, lo := listenTo(t, a), listenTo(t, other)
	la.expect(t, "")
	lo.expect(t, "")

	n, err := b.CreateNotification(ctx, store.Notification{Versions: []byte(`{}`), AgentsFirst: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, released, err := b.ReleaseClientsIf(ctx, n.ID, store.ReleaseNoAgentRunning); err != nil || !released {
		t.Fatalf("release: %v, %v", released, err)
	}
	if _, released, err := b.ReleaseClientsIf(ctx, n.ID, store.ReleaseAlways); err != nil || released {
		t.Fatalf("release again: %v, %v", released, err)
	}
	mine, err := other.CreateNotification(ctx, store.Notification{Versions: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	la.expect(t, "created "+n.ID)
	la.expect(t, "released "+n.ID)
	// Signals reach a listener in commit order: the other schema's
	// listener would have heard n's before its own.
	lo.expect(t, "created "+mine.ID)
	// A failed transaction signals nothing: the next signal is the next
	// notification's.
	if _, err := b.CreateNotification(ctx, store.Notification{Versions: []byte(`{}`)}, []string{"ep_unknown"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("create for an unknown endpoint: %v", err)
	}
	n2, err := b.CreateNotification(ctx, store.Notification{Versions: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	la.expect(t, "created "+n2.ID)

	// The listening connection is killed: Listen fails, and listening
	// again works (the dead connection did not go back to the pool).
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var killed int
	err = db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query = 'LISTEN "cascade_notifications_' || current_schema() || '"'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listening connection: %d, %v", killed, err)
	}
	select {
	case err := <-la.done:
		if err == nil {
			t.Fatal("listen returned nil after its connection was killed")
		}
		la.done <- nil // for the cleanup
	case <-time.After(signalPatience):
		t.Fatal("listen did not end when its connection was killed")
	}
	la2 := listenTo(t, a)
	la2.expect(t, "")
	n3, err := b.CreateNotification(ctx, store.Notification{Versions: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	la2.expect(t, "created "+n3.ID)
	if _, err := a.ListNotifications(ctx, 0); err != nil {
		t.Fatalf("the store after its listening connection was killed: %v", err)
	}
}
