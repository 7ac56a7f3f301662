package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
)

// siteTables is what the database holds of the site repository's history.
type siteTables struct {
	versions, oldest, newest, files int64
	roots                           []string
}

func readSiteTables(t *testing.T, driver, dsn string) siteTables {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s siteTables
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(MIN(version), 0), COALESCE(MAX(version), 0) FROM site_versions`).
		Scan(&s.versions, &s.oldest, &s.newest); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM site_files`).Scan(&s.files); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT path FROM site_files WHERE path LIKE 'metadata/%.root.json' ORDER BY path`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		s.roots = append(s.roots, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// keepTwo keeps the two newest site versions (and those younger than a
// millisecond).
func keepTwo(cfg *server.Config) {
	cfg.SiteKeepVersions, cfg.SiteRetention = 2, server.Duration(time.Millisecond)
}

// checkPruned checks a prune that keeps two versions: the newest two are
// left, nothing newer is lost, the root chain is whole, fewer files.
func checkPruned(t *testing.T, before, after siteTables) {
	t.Helper()
	if before.versions < 4 {
		t.Fatalf("the test made only %d site versions", before.versions)
	}
	if after.versions != 2 || after.newest != before.newest || after.oldest != before.newest-1 {
		t.Fatalf("after the prune the database holds versions %d..%d (%d), want %d..%d",
			after.oldest, after.newest, after.versions, before.newest-1, before.newest)
	}
	if after.files >= before.files {
		t.Fatalf("site files: %d before the prune, %d after", before.files, after.files)
	}
	if len(before.roots) == 0 || !slices.Equal(before.roots, after.roots) {
		t.Fatalf("root metadata before the prune %v, after %v", before.roots, after.roots)
	}
}

// materialiseChecked copies the database's newest version into a new
// directory, verified from 1.root.json up, and checks that it is what
// served says timestamp.json is.
func materialiseChecked(t *testing.T, srv *server.Server, served string) {
	t.Helper()
	dir := t.TempDir()
	v, err := srv.MaterialiseForTest(context.Background(), dir, filepath.Join(t.TempDir(), "trust"))
	if err != nil {
		t.Fatalf("materialise the newest site version after the prune: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "site", "metadata", "timestamp.json"))
	if err != nil || string(b) != served {
		t.Fatalf("materialised version %d differs from the served timestamp.json (%v)", v, err)
	}
}

// TestSitePruneSQLite: the one SQLite process prunes the site history to
// its window: the newest state stays complete (served, and materialised
// anew from the database, verified from the first root up), the root
// metadata stays, the tables shrink, and publishing goes on from there.
func TestSitePruneSQLite(t *testing.T) {
	e := newEnv(t, sqliteDB, keepTwo)
	dsn := filepath.Join(e.dir, "cascade.db")
	put := func(marker string) {
		var res api.PolicyResult
		e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: "origin: " + e.origin.url + "\nserver: " + e.url + "\n# " + marker + "\n"}, &res)
	}
	for i := range 4 {
		put(fmt.Sprintf("version %d", i))
	}
	before := readSiteTables(t, "sqlite", dsn)
	e.srv.PruneForTest(context.Background())
	after := readSiteTables(t, "sqlite", dsn)
	checkPruned(t, before, after)
	code, served := e.get("/site/metadata/timestamp.json", "")
	if code != http.StatusOK {
		t.Fatalf("GET timestamp.json after the prune: %d", code)
	}
	materialiseChecked(t, e.srv, served)

	put("after the prune")
	if next := readSiteTables(t, "sqlite", dsn); next.newest != after.newest+1 || next.oldest != after.oldest {
		t.Fatalf("after a publish the database holds versions %d..%d, want %d..%d", next.oldest, next.newest, after.oldest, after.newest+1)
	}
	_, served = e.get("/site/metadata/timestamp.json", "")
	materialiseChecked(t, e.srv, served)
}

// TestSitePrunePostgres: the writer prunes the site history in the
// shared database; a follower that was down while the versions it held
// were pruned, and a process joined on an empty data directory, both
// materialise the newest state (verified) and serve the writer's bytes;
// a process that is not the writer prunes nothing; versions go on
// consecutively from the oldest kept.
func TestSitePrunePostgres(t *testing.T) {
	c, a := newCluster(t, keepTwo)
	b := c.join("b")
	testkit.Eventually(t, 30*time.Second, "b to serve a's site repository", func() bool { return sameSite(t, a, b) })
	b.stop()
	for i := range 4 {
		a.setPolicy(t, c.first.origin.url, fmt.Sprintf("version %d", i))
	}
	before := readSiteTables(t, "pgx", c.dsn)
	a.srv.PruneForTest(context.Background())
	after := readSiteTables(t, "pgx", c.dsn)
	checkPruned(t, before, after)
	materialiseChecked(t, a.srv, string(siteFile(t, a, "metadata/timestamp.json")))

	b2 := c.start("b", b.dir)
	if !sameSite(t, a, b2) {
		t.Fatal("the follower that was behind serves another state than the writer after the prune")
	}
	d := c.join("d")
	testkit.Eventually(t, 30*time.Second, "a process joined after the prune to serve a's site repository",
		func() bool { return sameSite(t, a, d) })

	a.setPolicy(t, c.first.origin.url, "after the prune")
	testkit.Eventually(t, 30*time.Second, "b and d to follow a", func() bool { return sameSite(t, a, b2, d) })
	b2.srv.PruneForTest(context.Background())
	if got := readSiteTables(t, "pgx", c.dsn); got.versions != 3 || got.oldest != after.oldest {
		t.Fatalf("a process that is not the writer pruned: versions %d..%d (%d)", got.oldest, got.newest, got.versions)
	}
	a.srv.PruneForTest(context.Background())
	if got := readSiteTables(t, "pgx", c.dsn); got.versions != 2 || got.newest != after.newest+1 {
		t.Fatalf("the writer's second prune left versions %d..%d (%d)", got.oldest, got.newest, got.versions)
	}
	c.versions()
}
