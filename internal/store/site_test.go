package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

func cluster(t *testing.T, st store.Store) store.Cluster {
	t.Helper()
	c, ok := store.ClusterOf(st)
	if !ok {
		t.Fatal("the store is not a Cluster")
	}
	return c
}

// TestSiteVersionChain: on both databases, site versions form one chain:
// the first may be any version, each next one must follow the newest
// (neither repeat, skip nor go back), and a commit that does not follow
// leaves nothing behind (not its files either).
func TestSiteVersionChain(t *testing.T) {
	for name, open := range map[string]func(testing.TB, func() time.Time) store.Store{
		"sqlite": openSQLite, "postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := cluster(t, open(t, time.Now))
			if _, err := c.SiteHead(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("head of an empty database: %v", err)
			}
			w, ok, err := c.TryWriter(ctx, "test")
			if err != nil || !ok {
				t.Fatalf("TryWriter: %v %v", ok, err)
			}
			defer w.Release()
			commit := func(prev, v int64, file string) error {
				return w.CommitSite(ctx, store.SiteCommit{Previous: prev, Version: v, Timestamp: []byte{byte(v)},
					Files: map[string][]byte{file: []byte(file)}})
			}
			if err := commit(0, 7, "metadata/7.snapshot.json"); err != nil {
				t.Fatal(err)
			}
			if err := commit(7, 8, "metadata/8.snapshot.json"); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []struct {
				prev, v int64
				want    error
			}{
				{7, 8, store.ErrConflict},  // repeats 8
				{0, 9, store.ErrConflict},  // a second first version
				{0, 3, store.ErrConflict},  // backwards
				{8, 10, store.ErrInvalid},  // skips 9
				{9, 10, store.ErrConflict}, // follows a version that does not exist
				{6, 7, store.ErrConflict},  // backwards, following
			} {
				err := commit(bad.prev, bad.v, "metadata/bad.json")
				if !errors.Is(err, bad.want) {
					t.Errorf("commit %d after %d: %v, want %v", bad.v, bad.prev, err, bad.want)
				}
			}
			if _, err := c.SiteFile(ctx, "metadata/bad.json"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused commit's file: %v, want not found", err)
			}
			head, err := c.SiteHead(ctx)
			if err != nil || head.Version != 8 || string(head.Timestamp) != "\x08" || head.Writer != "test" {
				t.Fatalf("head: %+v %v", head, err)
			}
			if b, err := c.SiteFile(ctx, "metadata/7.snapshot.json"); err != nil || string(b) != "metadata/7.snapshot.json" {
				t.Fatalf("file: %q %v", b, err)
			}
			if err := c.PutShared(ctx, "a", []byte("1"), true); err != nil {
				t.Fatal(err)
			}
			if err := c.PutShared(ctx, "a", []byte("2"), true); err != nil {
				t.Fatal(err)
			}
			if b, err := c.Shared(ctx, "a"); err != nil || string(b) != "1" {
				t.Fatalf("kept shared value: %q %v", b, err)
			}
			if err := c.PutShared(ctx, "a", []byte("3"), false); err != nil {
				t.Fatal(err)
			}
			if b, err := c.Shared(ctx, "a"); err != nil || string(b) != "3" {
				t.Fatalf("replaced shared value: %q %v", b, err)
			}
		})
	}
}

// TestPostgresOneWriter: of two stores on one schema only one is the
// writer; a writer whose session dies loses its hold (Lost), cannot
// commit, and the other takes over; a writer released hands over at once.
// Signals (store.TopicServer) reach every listener of the schema and no other schema's.
func TestPostgresOneWriter(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	sa, sb, so := openDSN(t, dsn, time.Now), openDSN(t, dsn, time.Now), openPostgres(t, time.Now)
	a, b, other := cluster(t, sa), cluster(t, sb), cluster(t, so)

	wa, ok, err := a.TryWriter(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if _, ok, err := b.TryWriter(ctx, "b"); err != nil || ok {
		t.Fatalf("b while a writes: %v %v", ok, err)
	}
	wo, ok, err := other.TryWriter(ctx, "other")
	if err != nil || !ok {
		t.Fatalf("another schema's writer: %v %v", ok, err)
	}
	defer wo.Release()
	if err := wa.CommitSite(ctx, store.SiteCommit{Version: 1, Timestamp: []byte("1")}); err != nil {
		t.Fatal(err)
	}

	got := make(chan string, 10)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	listen := func(st store.Store, prefix string) {
		done <- st.Listen(wctx, store.TopicServer, func(p string) {
			if p != "" { // "" says: now listening
				got <- prefix + p
			}
		})
	}
	go listen(sb, "")
	go listen(so, "other: ")
	testkit.Eventually(t, 10*time.Second, "a signal reaches the other process", func() bool {
		sa.Signal(ctx, store.TopicServer, "ping")
		select {
		case p := <-got:
			if p != "ping" {
				t.Fatalf("signal: %q", p)
			}
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})

	// Kill a's session from outside, as a crash or a network cut would.
	killWriterSessions(t, dsn)
	select {
	case <-wa.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not notice that its session ended")
	}
	err = wa.CommitSite(ctx, store.SiteCommit{Previous: 1, Version: 2, Timestamp: []byte("2")})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a stale writer's commit: %v, want conflict", err)
	}
	var wb store.Writer
	testkit.Eventually(t, 10*time.Second, "b becomes the writer", func() bool {
		wb, ok, err = b.TryWriter(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if err := wb.CommitSite(ctx, store.SiteCommit{Previous: 1, Version: 2, Timestamp: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if err := wb.Release(); err != nil {
		t.Fatal(err)
	}
	wa2, ok, err := a.TryWriter(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("a after b released: %v %v", ok, err)
	}
	wa2.Release()
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for len(got) > 0 {
		if p := <-got; p != "ping" && p != "site 2" {
			t.Fatalf("unexpected signal %q (another schema's?)", p)
		}
	}
}

// killWriterSessions terminates the sessions holding an advisory lock in
// dsn's database (the schema's writer).
func killWriterSessions(t *testing.T, dsn string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(context.Background(), `WITH k AS (SELECT hashtextextended('cascade.server.writer:' || current_schema(), 0) AS key)
		SELECT pg_terminate_backend(pid) FROM pg_locks, k WHERE locktype = 'advisory' AND granted
		AND objid = (key & 4294967295)::oid AND classid = ((key >> 32) & 4294967295)::oid`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("terminated %d writer sessions, want 1", n)
	}
}

// TestSitePrune: on both databases, PruneSite keeps the newest Keep
// versions and every one created at or after Before (the older of the
// two bounds), every file a kept version needs and every file Always
// keeps (here, three root versions), and deletes the rest; the versions
// left are still one chain that new versions follow and stale ones
// cannot join; a Needs that fails deletes nothing; a writer that lost its
// hold prunes nothing.
func TestSitePrune(t *testing.T) {
	for name, open := range map[string]func(testing.TB, func() time.Time) store.Store{
		"sqlite": openSQLite, "postgres": openPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			c := cluster(t, open(t, clock.Now))
			w, ok, err := c.TryWriter(ctx, "test")
			if err != nil || !ok {
				t.Fatalf("TryWriter: %v %v", ok, err)
			}
			defer w.Release()
			// Version v needs its own snapshot and the payload of the
			// version whose number is its "shared" (a file an older
			// version added); its timestamp lists what it needs.
			shared := map[int64]int64{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 2, 7: 7, 8: 8}
			var created []time.Time
			for v := int64(1); v <= 8; v++ {
				files := map[string][]byte{
					fmt.Sprintf("metadata/%d.snapshot.json", v): []byte("s"),
					fmt.Sprintf("targets/%d.payload", v):        []byte("p"),
				}
				if v == 1 || v == 4 || v == 7 {
					files[fmt.Sprintf("metadata/%d.root.json", v)] = []byte("r")
				}
				ts := fmt.Sprintf("metadata/%d.snapshot.json targets/%d.payload", v, shared[v])
				prev := v - 1
				if err := w.CommitSite(ctx, store.SiteCommit{Previous: prev, Version: v, Timestamp: []byte(ts), Files: files}); err != nil {
					t.Fatal(err)
				}
				created = append(created, clock.Now())
				clock.Advance(time.Hour)
			}
			needs := func(ctx context.Context, ts []byte, read func(string) ([]byte, error)) ([]string, error) {
				paths := strings.Fields(string(ts))
				for _, p := range paths {
					if _, err := read(p); err != nil {
						return nil, err
					}
				}
				return paths, nil
			}
			roots := func(p string) bool { return strings.HasSuffix(p, ".root.json") }

			// A Needs that fails: nothing is deleted.
			_, err = w.PruneSite(ctx, store.SitePrune{Keep: 1, Needs: func(context.Context, []byte, func(string) ([]byte, error)) ([]string, error) {
				return nil, errors.New("unreadable")
			}})
			if err == nil || !strings.Contains(err.Error(), "unreadable") {
				t.Fatalf("prune with a failing Needs: %v", err)
			}
			if v, err := c.SiteFile(ctx, "targets/1.payload"); err != nil || string(v) != "p" {
				t.Fatalf("a failed prune deleted a file: %v", err)
			}

			// Keep the newest 2 (7, 8), and by age everything created at
			// or after version 6: 6, 7, 8 are kept.
			res, err := w.PruneSite(ctx, store.SitePrune{Keep: 2, Before: created[5], Needs: needs, Always: roots})
			if err != nil {
				t.Fatal(err)
			}
			if res.Versions != 5 || res.Oldest != 6 || res.Files != 10 {
				t.Fatalf("pruned %+v, want 5 versions (oldest kept 6) and 10 files", res)
			}
			for _, p := range []string{"metadata/1.root.json", "metadata/4.root.json", "metadata/7.root.json",
				"metadata/6.snapshot.json", "metadata/7.snapshot.json", "metadata/8.snapshot.json",
				"targets/2.payload", "targets/7.payload", "targets/8.payload"} {
				if _, err := c.SiteFile(ctx, p); err != nil {
					t.Errorf("kept file %s: %v", p, err)
				}
			}
			for _, p := range []string{"metadata/5.snapshot.json", "targets/1.payload", "targets/6.payload"} {
				if _, err := c.SiteFile(ctx, p); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("pruned file %s: %v", p, err)
				}
			}
			if head, err := c.SiteHead(ctx); err != nil || head.Version != 8 {
				t.Fatalf("head after the prune: %d %v", head.Version, err)
			}
			// The chain goes on from the oldest kept; stale versions stay out.
			for _, bad := range []struct{ prev, v int64 }{{0, 3}, {4, 5}, {0, 9}, {7, 8}} {
				if err := w.CommitSite(ctx, store.SiteCommit{Previous: bad.prev, Version: bad.v, Timestamp: []byte("x")}); !errors.Is(err, store.ErrConflict) {
					t.Fatalf("commit %d after %d following the prune: %v", bad.v, bad.prev, err)
				}
			}
			if err := w.CommitSite(ctx, store.SiteCommit{Previous: 8, Version: 9, Timestamp: []byte("metadata/8.snapshot.json")}); err != nil {
				t.Fatal(err)
			}
			// Keep 1 without an age bound: only 9 and what it needs are left.
			res, err = w.PruneSite(ctx, store.SitePrune{Keep: 1, Needs: needs, Always: roots})
			if err != nil || res.Versions != 3 || res.Oldest != 9 {
				t.Fatalf("second prune: %+v %v", res, err)
			}
			if _, err := c.SiteFile(ctx, "targets/8.payload"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a file only pruned versions needed: %v", err)
			}

			// A writer that gave its hold up cannot prune.
			if err := w.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.PruneSite(ctx, store.SitePrune{Keep: 1, Needs: needs}); name == "postgres" && !errors.Is(err, store.ErrConflict) {
				t.Fatalf("prune by a released writer: %v", err)
			}
		})
	}
}

// TestUpgradeKeepsSiteVersions: a database at schema 17 that holds a
// chain of site versions keeps it across 0018 (on SQLite the table is
// made anew), and the chain can then be pruned from its oldest end and
// goes on.
func TestUpgradeKeepsSiteVersions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			db := rawDB(t, b.name, dsn)
			create := `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`
			if b.name == "postgres" {
				create = `CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`
			}
			if _, err := db.Exec(create); err != nil {
				t.Fatal(err)
			}
			files, err := filepath.Glob(filepath.Join("migrations", b.name, "*.sql"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				name := filepath.Base(f)
				v, err := strconv.Atoi(name[:4])
				if err != nil {
					t.Fatal(err)
				}
				if v > 17 {
					continue
				}
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(string(body)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (` + strconv.Itoa(v) + `, '` + name + `', '2030-01-01T00:00:00.000000Z')`); err != nil {
					t.Fatal(err)
				}
			}
			for v := 1; v <= 3; v++ {
				prev := "NULL"
				if v > 1 {
					prev = strconv.Itoa(v - 1)
				}
				if _, err := db.Exec(fmt.Sprintf(`INSERT INTO site_versions VALUES (%d, %s, '%d', 'old', '2030-01-01T00:00:00.000000Z')`, v, prev, v)); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			c := cluster(t, openDSN(t, dsn, time.Now))
			if head, err := c.SiteHead(ctx); err != nil || head.Version != 3 || string(head.Timestamp) != "3" {
				t.Fatalf("head after the upgrade: %+v %v", head, err)
			}
			w, ok, err := c.TryWriter(ctx, "test")
			if err != nil || !ok {
				t.Fatalf("TryWriter: %v %v", ok, err)
			}
			defer w.Release()
			none := func(context.Context, []byte, func(string) ([]byte, error)) ([]string, error) { return nil, nil }
			if res, err := w.PruneSite(ctx, store.SitePrune{Keep: 1, Needs: none}); err != nil || res.Versions != 2 || res.Oldest != 3 {
				t.Fatalf("prune after the upgrade: %+v %v", res, err)
			}
			var prev sql.NullInt64
			if err := db.QueryRow(`SELECT previous FROM site_versions WHERE version = 3`).Scan(&prev); err != nil || prev.Valid {
				t.Fatalf("the oldest version kept still names one before it: %v %v", prev, err)
			}
			if err := w.CommitSite(ctx, store.SiteCommit{Previous: 3, Version: 4, Timestamp: []byte("4")}); err != nil {
				t.Fatal(err)
			}
			if err := w.CommitSite(ctx, store.SiteCommit{Version: 9, Timestamp: []byte("9")}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("a second first version after the prune: %v", err)
			}
		})
	}
}
