//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// slowTargets serves dir, sending the files under /vendor/targets/ at
// about 256 KiB/s, so that a sync of a large file lasts seconds; it
// calls started with each target path before sending it.
func slowTargets(dir string, started func(path string)) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/vendor/targets/") {
			files.ServeHTTP(w, r)
			return
		}
		started(r.URL.Path)
		files.ServeHTTP(&slowWriter{ResponseWriter: w, ctx: r.Context()}, r)
	})
}

type slowWriter struct {
	http.ResponseWriter
	ctx context.Context
}

func (s *slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), 16<<10)
		m, err := s.ResponseWriter.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[c:]
		select {
		case <-s.ctx.Done():
			return n, s.ctx.Err()
		case <-time.After(62 * time.Millisecond):
		}
	}
	return n, nil
}

// TestWriterKilledDuringSync: two server processes on one PostgreSQL,
// the second made by `cascade server join` on an empty directory. It
// serves the same site metadata as the first. The writer is SIGKILLed
// while it downloads a new component from the origin; the other process
// becomes the writer, finishes the sync (records and deploys the new
// version), signs the next site versions (consecutive, all its own), and
// what it serves verifies against the site and vendor roots.
func TestWriterKilledDuringSync(t *testing.T) {
	full := pgtest.DSN(t) // the test's own connections
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if pw, ok := u.User.Password(); ok { // the commands refuse a password in a URL
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	dsn := u.String()
	dir := t.TempDir()
	originDir := filepath.Join(dir, "origin")
	mustCascade(t, nil, "origin", "init", originDir, "--bins", "16")
	publish := func(version string, size int) {
		src := filepath.Join(dir, "payload-"+version)
		data := make([]byte, size) // random: no delta from the last version makes it small
		rand.Read(data)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mustCascade(t, nil, "origin", "publish", originDir, "--component", "pattern", "--version", version, src)
	}
	publish("1.0", 1000)
	downloads := make(chan string, 100)
	originURL := testkit.Serve(t, testkit.Listen(t, "127.0.15.1"), slowTargets(filepath.Join(originDir, "published"),
		func(p string) {
			select {
			case downloads <- p:
			default:
			}
		}))
	vendorRoot := filepath.Join(originDir, "published", "vendor", "metadata", "1.root.json")

	var token string
	start := func(name, dir string, fp api.Fingerprint) *clusterServer {
		p := startProc(t, name, env, "server", "run", "--data", dir)
		base := p.waitOutput(t, regexp.MustCompile(`cascade server at (\S+)`))
		return &clusterServer{name: name, url: base, fp: fp, api: apiClient(t, base, token, fp), proc: p}
	}
	// The first server: init, run (which records the site repository in
	// the database and writes the key secret), an admin token.
	aDir := filepath.Join(dir, "a")
	aListen := testkit.FreeAddr(t, "127.0.15.2")
	out := mustCascade(t, env, "server", "init", aDir, "--origin", originURL, "--vendor-root", vendorRoot,
		"--listen", aListen, "--url", "https://"+aListen+"/", "--database", dsn)
	tuneCluster(t, aDir)
	fpA := mustFingerprint(t, out)
	out = mustCascade(t, env, "server", "admin", "create", "--data", aDir, "--name", "e2e")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token = lines[len(lines)-1]
	a := start("server a", aDir, fpA)
	waitFor(t, a, "a to be the writer", func(st api.Status) bool { return st.Writer && st.LastSync != nil })

	bDir := filepath.Join(dir, "b")
	bListen := testkit.FreeAddr(t, "127.0.15.3")
	out = mustCascade(t, env, "server", "join", "--data", bDir, "--database", dsn, "--key-secret", filepath.Join(aDir, "key-secret"),
		"--listen", bListen, "--url", "https://"+bListen+"/")
	tuneCluster(t, bDir)
	fpB := mustFingerprint(t, out)
	b := start("server b", bDir, fpB)
	testkit.Eventually(t, 30*time.Second, "b to serve a's site metadata", func() bool {
		x := fetchFile(t, a.api, "site/metadata/timestamp.json")
		return x != nil && string(x) == string(fetchFile(t, b.api, "site/metadata/timestamp.json"))
	})
	if st := status(t, b); st.Writer {
		t.Fatal("b is the writer while a is")
	}

	// A sync of 2 MiB at 256 KiB/s (8 s): kill a a second into it.
	for len(downloads) > 0 {
		<-downloads
	}
	publish("2.0", 2<<20)
	go a.api.Call(context.Background(), http.MethodPost, "/api/v1/content/sync", nil, nil, nil) //nolint:errcheck // a is killed during it
	select {
	case p := <-downloads:
		t.Logf("a downloads %s", p)
	case <-time.After(time.Minute):
		t.Fatal("a did not start downloading pattern 2.0")
	}
	time.Sleep(time.Second)
	killed := time.Now()
	a.proc.stop(syscall.SIGKILL)
	t.Logf("SIGKILLed the writer a during its sync")
	if got := deployed(t, b); got == "2.0" {
		t.Fatal("pattern 2.0 was deployed before the kill: the kill was not during the sync")
	}

	// From the database, not b's API (which is busy finishing the sync).
	first := firstVersionBy(t, full, b.url, 60*time.Second)
	t.Logf("b signed site version %d %s after the kill", first, time.Since(killed).Round(time.Millisecond))
	waitFor(t, b, "b to say it is the writer", func(st api.Status) bool { return st.Writer })
	testkit.Eventually(t, 60*time.Second, "b to finish the sync and deploy pattern 2.0", func() bool { return deployed(t, b) == "2.0" })

	// A change through b, signed by b: versions consecutive, b's since the kill.
	mustCascade(t, append(env, "CASCADE_ADMIN_TOKEN="+token, "CASCADE_SERVER="+b.url, "CASCADE_SERVER_FINGERPRINT="+fpB.String()),
		"server", "components", "hold", "pattern")
	checkChain(t, full, first, b.url)

	// What b serves verifies, site and vendor, from the roots.
	verifyServed(t, dir, b, aDir, vendorRoot)
}

// tuneCluster shortens the writer poll and follow interval of a data
// directory's server.json.
func tuneCluster(t *testing.T, dir string) {
	editJSON(t, filepath.Join(dir, "server.json"), func(c map[string]any) {
		c["writer_poll"] = "500ms"
		c["follow_interval"] = "1s"
	})
}

func mustFingerprint(t *testing.T, out string) api.Fingerprint {
	t.Helper()
	m := regexp.MustCompile(`fingerprint: +(sha256:[0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no fingerprint in %q", out)
	}
	fp, err := api.ParseFingerprint(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func apiClient(t *testing.T, base, token string, fp api.Fingerprint) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.ClientOptions{URL: base, Token: token, Fingerprint: fp, UserAgent: "cascade-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clusterServer is one `cascade server run` of a cluster.
type clusterServer struct {
	name, url string
	fp        api.Fingerprint
	api       *api.Client
	proc      *proc
}

// status returns the server's /api/v1/status.
func status(t *testing.T, s *clusterServer) api.Status {
	t.Helper()
	var st api.Status
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.api.Call(ctx, http.MethodGet, "/api/v1/status", nil, nil, &st); err != nil {
		t.Fatalf("status of %s: %v", s.name, err)
	}
	return st
}

// waitFor polls the server's status until cond holds (a minute at most).
func waitFor(t *testing.T, s *clusterServer, what string, cond func(api.Status) bool) {
	t.Helper()
	testkit.Eventually(t, time.Minute, what, func() bool { return cond(status(t, s)) })
}

// deployed returns the deployed version of pattern, as s says.
func deployed(t *testing.T, s *clusterServer) string {
	t.Helper()
	var cs []api.Component
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.api.Call(ctx, http.MethodGet, "/api/v1/content/components", nil, nil, &cs); err != nil {
		t.Fatalf("components of %s: %v", s.name, err)
	}
	for _, c := range cs {
		if c.Name == "pattern" {
			return c.Deployed
		}
	}
	return ""
}

// fetchFile GETs path under c's base URL through c's pinned client (nil
// unless 200).
func fetchFile(t *testing.T, c *api.Client, path string) []byte {
	t.Helper()
	u, err := url.JoinPath(c.URL(), path) // c.URL() has no trailing slash
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTPClient().Get(u)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	return b
}

// firstVersionBy waits for the first site version written by the
// process at base and returns it.
func firstVersionBy(t *testing.T, dsn, base string, d time.Duration) int64 {
	t.Helper()
	db := openDB(t, dsn)
	var v int64
	testkit.Eventually(t, d, "a site version signed by "+base, func() bool {
		err := db.QueryRow(`SELECT COALESCE(MIN(version), 0) FROM site_versions WHERE writer LIKE $1`, base+"%").Scan(&v)
		if err != nil {
			t.Fatal(err)
		}
		return v > 0
	})
	return v
}

// checkChain fails unless the site versions are consecutive, each names
// the one before it, and those from first on were written by base.
func checkChain(t *testing.T, dsn string, first int64, base string) {
	t.Helper()
	rows, err := openDB(t, dsn).Query(`SELECT version, previous, writer FROM site_versions ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var last int64
	var n int
	for rows.Next() {
		var v int64
		var prev sql.NullInt64
		var w string
		if err := rows.Scan(&v, &prev, &w); err != nil {
			t.Fatal(err)
		}
		if last != 0 && (v != last+1 || prev.Int64 != last) {
			t.Fatalf("site version %d (after %d) follows %d", v, prev.Int64, last)
		}
		if v >= first && !strings.HasPrefix(w, base) {
			t.Fatalf("site version %d after the takeover written by %q", v, w)
		}
		last, n = v, n+1
	}
	t.Logf("%d consecutive site versions, the last %d", n, last)
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
