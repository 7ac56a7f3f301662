package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/server"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/store"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
)

// cluster is several server processes (Server instances, each with its
// own data directory and listener) on one PostgreSQL schema.
type cluster struct {
	t      *testing.T
	dsn    string // the schema, without application_name
	first  *env   // made the first data directory (stopped; its origin serves on)
	secret []byte // the key secret the first server wrote
	token  string // an admin token
}

// peer is one running server process of a cluster.
type peer struct {
	name  string
	dir   string
	url   string
	fp    api.Fingerprint
	srv   *server.Server
	admin *api.Client
	stop  func() // graceful: gives the writer role up
	kill  func() // every database session ended, then stopped
}

// newCluster initialises the first server on a new schema, its
// configuration changed by tweak, and starts it as peer "a" (the writer).
func newCluster(t *testing.T, tweak ...func(*server.Config)) (*cluster, *peer) {
	c := &cluster{t: t, dsn: pgtest.DSN(t)}
	c.first = newEnv(t, postgresDB, append([]func(*server.Config){func(cfg *server.Config) { cfg.Database = c.withName("a") }}, tweak...)...)
	_, c.token, _ = server.CreateAdminToken(context.Background(), c.first.st, "cluster test")
	c.first.stop()
	a := c.start("a", c.first.dir)
	var err error
	if c.secret, err = os.ReadFile(filepath.Join(c.first.dir, "key-secret")); err != nil {
		t.Fatalf("the first server on PostgreSQL wrote no key secret: %v", err)
	}
	return c, a
}

// withName is the schema's DSN with an application_name naming a peer,
// so that kill finds its sessions.
func (c *cluster) withName(name string) string {
	u, err := url.Parse(c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "cascade-test-"+name)
	u.RawQuery = q.Encode()
	return u.String()
}

// join makes a new data directory with server.Join and starts it.
func (c *cluster) join(name string) *peer {
	c.t.Helper()
	ln := testkit.Listen(c.t, "127.0.0.1")
	dir := filepath.Join(c.t.TempDir(), name)
	addr := ln.Addr().String()
	ln.Close()
	_, err := server.Join(context.Background(), dir, server.JoinOptions{KeySecret: c.secret, Now: time.Now,
		Config: server.Config{Database: c.withName(name), Listen: addr, URL: "https://" + addr + "/",
			WriterPoll: server.Duration(200 * time.Millisecond), FollowInterval: server.Duration(time.Second)}})
	if err != nil {
		c.t.Fatalf("join %s: %v", name, err)
	}
	return c.start(name, dir)
}

// start runs the server in dir as peer name.
func (c *cluster) start(name, dir string) *peer {
	c.t.Helper()
	cfg, err := server.LoadConfig(dir)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.Database = c.withName(name)
	cfg.WriterPoll, cfg.FollowInterval = server.Duration(200*time.Millisecond), server.Duration(time.Second)
	ln := testkit.Listen(c.t, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Options{Dir: dir, Config: cfg, Listener: ln, Logger: testLogger(c.t), SyncRetry: time.Hour})
	if err != nil {
		cancel()
		ln.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &peer{name: name, dir: dir, url: "https://" + ln.Addr().String() + "/", fp: srv.Fingerprint(), srv: srv}
	p.admin, err = api.NewClient(api.ClientOptions{URL: p.url, Token: c.token, Fingerprint: p.fp})
	if err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	end := func(check bool) {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && check {
			c.t.Errorf("server %s run: %v", name, err)
		}
		srv.Close()
	}
	p.stop = func() { end(true) }
	p.kill = func() {
		c.terminate(name)
		end(false)
	}
	c.t.Cleanup(p.stop)
	return p
}

// terminate ends every database session of peer name, as its death (or a
// cut network) would.
func (c *cluster) terminate(name string) {
	c.t.Helper()
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
		"cascade-test-"+name); err != nil {
		c.t.Fatal(err)
	}
}

// versions returns the site versions the database holds, oldest first,
// and who wrote each; it fails the test unless they are consecutive and
// each names the one before it.
func (c *cluster) versions() ([]int64, []string) {
	c.t.Helper()
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version, previous, writer FROM site_versions ORDER BY version`)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	var vs []int64
	var ws []string
	for rows.Next() {
		var v int64
		var prev sql.NullInt64
		var w string
		if err := rows.Scan(&v, &prev, &w); err != nil {
			c.t.Fatal(err)
		}
		if len(vs) > 0 && (v != vs[len(vs)-1]+1 || prev.Int64 != vs[len(vs)-1]) {
			c.t.Fatalf("site version %d (after %d) follows %d", v, prev.Int64, vs[len(vs)-1])
		}
		vs, ws = append(vs, v), append(ws, w)
	}
	if len(vs) == 0 {
		c.t.Fatal("the database holds no site version")
	}
	return vs, ws
}

// siteFile fetches /site/PATH from p's server (nil when it is missing).
func siteFile(t *testing.T, p *peer, path string) []byte {
	t.Helper()
	resp, err := p.admin.HTTPClient().Get(p.url + "site/" + path)
	if err != nil {
		t.Fatalf("GET /site/%s from %s: %v", path, p.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return b
}

// status returns p's /api/v1/status.
func (p *peer) status(t *testing.T) api.Status {
	t.Helper()
	var st api.Status
	if err := p.admin.Call(context.Background(), http.MethodGet, "/api/v1/status", nil, nil, &st); err != nil {
		t.Fatalf("status of %s: %v", p.name, err)
	}
	return st
}

// setPolicy sets a policy through p.
func (p *peer) setPolicy(t *testing.T, origin, marker string) api.PolicyResult {
	t.Helper()
	doc := fmt.Sprintf("# %s\norigin: %s\nserver: %s\n", marker, origin, p.url)
	var res api.PolicyResult
	if err := p.admin.Call(context.Background(), http.MethodPut, "/api/v1/policy", nil, api.PutPolicy{Document: doc}, &res); err != nil {
		t.Fatalf("set the policy through %s: %v", p.name, err)
	}
	return res
}

// sameSite reports whether every peer serves the same timestamp.json,
// and the snapshot it names, byte for byte.
func sameSite(t *testing.T, peers ...*peer) bool {
	t.Helper()
	var want []byte
	for i, p := range peers {
		b := siteFile(t, p, "metadata/timestamp.json")
		if i == 0 {
			want = b
		} else if string(b) != string(want) {
			return false
		}
	}
	return want != nil
}

// TestServersShareTheSiteRepository: a process joined with `server
// join` on an empty data directory serves the same site metadata bytes
// as the writer within a deadline; a policy saved through it (not the
// writer) is published by the writer and served by both; versions are
// consecutive and all written by the writer.
func TestServersShareTheSiteRepository(t *testing.T) {
	c, a := newCluster(t)
	if !a.status(t).Writer {
		t.Fatal("the only server process is not the writer")
	}
	b := c.join("b")
	if b.status(t).Writer {
		t.Fatal("a joined process is the writer while the first one is")
	}
	testkit.Eventually(t, 30*time.Second, "b to serve a's site repository", func() bool { return sameSite(t, a, b) })

	res := b.setPolicy(t, c.first.origin.url, "saved through b")
	if res.Published.Items["policy"] == "" || res.Published.Timestamp == 0 {
		t.Fatalf("policy through b: published %+v", res.Published)
	}
	testkit.Eventually(t, 30*time.Second, "a and b to serve the same new state", func() bool { return sameSite(t, a, b) })
	for _, p := range []*peer{a, b} {
		if ts := p.status(t).Site.Timestamp; ts < res.Published.Timestamp {
			t.Fatalf("%s serves timestamp %d, the policy was published at %d", p.name, ts, res.Published.Timestamp)
		}
	}
	vs, ws := c.versions()
	for i, w := range ws[1:] {
		if !strings.Contains(w, a.srv.URL()) {
			t.Fatalf("site version %d written by %q, not the writer a", vs[i+1], w)
		}
	}
	// The document itself: the same bytes from both.
	idx := siteIndex(t, a)
	if !strings.Contains(idx, `"policy"`) || idx != siteIndex(t, b) {
		t.Fatalf("the served indexes differ or lack the policy:\n%s\n%s", idx, siteIndex(t, b))
	}

	// Vendor content: the writer syncs a new version and tells b, which
	// mirrors it from the origin itself (its own sync is 15 minutes off).
	c.first.origin.publish(t, "components", "pattern", "2.0")
	var res2 api.SyncResult
	if err := a.admin.Call(context.Background(), http.MethodPost, "/api/v1/content/sync", nil, nil, &res2); err != nil {
		t.Fatal(err)
	}
	if res2.Deployed["pattern"] != "2.0" {
		t.Fatalf("the writer's sync: %+v", res2)
	}
	testkit.Eventually(t, 30*time.Second, "b to mirror the vendor timestamp a synced", func() bool {
		return string(vendorFile(t, b, "metadata/timestamp.json")) == string(vendorFile(t, a, "metadata/timestamp.json"))
	})
	// The sync log, read through either process, has both syncs: the
	// writer's, which deployed, and b's, marked as only mirroring.
	testkit.Eventually(t, 30*time.Second, "the sync log to have a's and b's syncs of the new timestamp", func() bool {
		var log []api.SyncLogEntry
		if err := b.admin.Call(context.Background(), http.MethodGet, "/api/v1/syncs", nil, nil, &log); err != nil {
			t.Fatal(err)
		}
		var byA, byB bool
		for _, e := range log {
			if e.Timestamp != res2.Timestamp || e.Result != "succeeded" {
				continue
			}
			byA = byA || (e.Server == a.srv.URL() && e.Writer && e.Deployed["pattern"] == "2.0")
			byB = byB || (e.Server == b.srv.URL() && !e.Writer && len(e.Deployed) == 0)
		}
		return byA && byB
	})
}

// vendorFile fetches /vendor/PATH from p's server (nil when it is missing).
func vendorFile(t *testing.T, p *peer, path string) []byte {
	t.Helper()
	resp, err := p.admin.HTTPClient().Get(p.url + "vendor/" + path)
	if err != nil {
		t.Fatalf("GET /vendor/%s from %s: %v", path, p.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	return b
}

// siteIndex returns the domain_settings index p serves, through its
// snapshot and bins (the newest names found by listing is not possible:
// read timestamp -> snapshot -> each bin for the index target).
func siteIndex(t *testing.T, p *peer) string {
	t.Helper()
	var ts struct {
		Signed struct {
			Meta map[string]struct{ Version int64 } `json:"meta"`
		} `json:"signed"`
	}
	mustJSON(t, siteFile(t, p, "metadata/timestamp.json"), &ts)
	var snap struct {
		Signed struct {
			Meta map[string]struct{ Version int64 } `json:"meta"`
		} `json:"signed"`
	}
	mustJSON(t, siteFile(t, p, fmt.Sprintf("metadata/%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)), &snap)
	for role, m := range snap.Signed.Meta {
		b := siteFile(t, p, fmt.Sprintf("metadata/%d.%s", m.Version, role))
		var bin struct {
			Signed struct {
				Targets map[string]struct {
					Hashes map[string]string `json:"hashes"`
				} `json:"targets"`
			} `json:"signed"`
		}
		mustJSON(t, b, &bin)
		if tf, ok := bin.Signed.Targets["domain_settings/index.json"]; ok {
			return string(siteFile(t, p, "targets/domain_settings/"+tf.Hashes["sha256"]+".index.json"))
		}
	}
	t.Fatalf("%s serves no domain_settings index", p.name)
	return ""
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}

// TestWriterTakeover: the writer dies (every database session ended, then
// stopped without giving the role up); another process becomes the
// writer, publishes the next change, and the versions stay consecutive.
func TestWriterTakeover(t *testing.T) {
	c, a := newCluster(t)
	b := c.join("b")
	d := c.join("d")
	a.setPolicy(t, c.first.origin.url, "before the kill")
	before, _ := c.versions()
	a.kill()
	var next *peer
	testkit.Eventually(t, 60*time.Second, "b or d to become the writer", func() bool {
		for _, p := range []*peer{b, d} {
			if p.status(t).Writer {
				next = p
				return true
			}
		}
		return false
	})
	other := b
	if next == b {
		other = d
	}
	if other.status(t).Writer {
		t.Fatal("two writers")
	}
	res := other.setPolicy(t, c.first.origin.url, "after the kill")
	testkit.Eventually(t, 30*time.Second, "b and d to serve the same state", func() bool { return sameSite(t, b, d) })
	after, ws := c.versions()
	if len(after) <= len(before) || after[len(after)-1] < res.Published.Timestamp {
		t.Fatalf("versions before the kill %v, after %v, the policy published at %d", before, after, res.Published.Timestamp)
	}
	for i := len(before); i < len(after); i++ {
		if !strings.Contains(ws[i], next.srv.URL()) {
			t.Fatalf("version %d after the takeover written by %q, not the new writer %s", after[i], ws[i], next.name)
		}
	}
}

// TestStaleWriterCannotCommit: a writer whose database session ended
// (another process took over) but that has not noticed yet cannot sign a
// version: its publish fails, the database and its own served copy are
// unchanged by it, and it serves the new writer's state once it follows.
func TestStaleWriterCannotCommit(t *testing.T) {
	c, a := newCluster(t)
	b := c.join("b")
	stale := a.srv.WriterForTest()
	if stale == nil {
		t.Fatal("a is not the writer")
	}
	c.terminate("a")
	testkit.Eventually(t, 60*time.Second, "b to become the writer", func() bool { return b.status(t).Writer })
	b.setPolicy(t, c.first.origin.url, "written by b")
	head, _ := c.versions()
	servedBefore := siteFile(t, a, "metadata/timestamp.json")

	// A change a's stale hold would sign.
	if _, err := b.srv.Store().PutPolicy(context.Background(), "# by the stale writer\norigin: "+c.first.origin.url+"\n", "test", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := a.srv.PublishAsForTest(context.Background(), stale); err == nil {
		t.Fatal("a stale writer published a site version")
	}
	// b, the writer, may publish the change itself meanwhile (its own
	// reconcile): every version since is b's, none the stale writer's.
	after, ws := c.versions()
	for i := len(head); i < len(after); i++ {
		if strings.Contains(ws[i], a.srv.URL()) && !strings.Contains(ws[i], b.srv.URL()) {
			t.Fatalf("version %d was written by the stale writer: %q (versions before its publish: %v)", after[i], ws[i], head)
		}
	}
	if got := siteFile(t, a, "metadata/timestamp.json"); string(got) != string(servedBefore) {
		// a may have followed b meanwhile; it must serve b's state then.
		testkit.Eventually(t, 30*time.Second, "a to serve b's state", func() bool { return sameSite(t, a, b) })
	}
	// b publishes the stale writer's change; a follows.
	b.setPolicy(t, c.first.origin.url, "b again")
	testkit.Eventually(t, 30*time.Second, "a to follow b", func() bool { return sameSite(t, a, b) })
	c.versions()
}

// TestRestartedFollowerServesNewestAtOnce: a process that was down while
// the writer signed new versions brings its copy up to date before it
// serves: its first answer is the newest state.
func TestRestartedFollowerServesNewestAtOnce(t *testing.T) {
	c, a := newCluster(t)
	b := c.join("b")
	testkit.Eventually(t, 30*time.Second, "b to serve a's site repository", func() bool { return sameSite(t, a, b) })
	b.stop()
	a.setPolicy(t, c.first.origin.url, "while b was down")
	b2 := c.start("b", b.dir)
	if !sameSite(t, a, b2) {
		t.Fatal("the restarted process served an older site repository than the writer's")
	}
}

// TestSiteVersionsInSQLite: with SQLite (one process, always the writer)
// the database holds every signed state too: the newest is the one
// served, byte for byte.
func TestSiteVersionsInSQLite(t *testing.T) {
	e := newEnv(t, sqliteDB)
	var res api.PolicyResult
	e.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: "origin: " + e.origin.url + "\nserver: " + e.url + "\n# sqlite\n"}, &res)
	cl, ok := store.ClusterOf(e.st)
	if !ok {
		t.Fatal("the SQLite store is not a Cluster")
	}
	head, err := cl.SiteHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, served := e.get("/site/metadata/timestamp.json", "")
	if code != http.StatusOK || served != string(head.Timestamp) || head.Version != res.Published.Timestamp {
		t.Fatalf("served timestamp (%d) differs from the database's newest, version %d (published %d)", code, head.Version, res.Published.Timestamp)
	}
	var st api.Status
	e.call(http.MethodGet, "/api/v1/status", nil, &st)
	if !st.Writer {
		t.Fatal("the one SQLite process is not the writer")
	}
}

// TestSecondInitRefused: a data directory made by its own `server init`
// on a database another server already uses holds other site keys: it is
// refused at start, in one line pointing to `server join`.
func TestSecondInitRefused(t *testing.T) {
	c, _ := newCluster(t)
	root, err := c.first.origin.repo.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "second")
	if _, err := server.Init(dir, server.InitOptions{VendorRoot: root, Now: time.Now, SiteBins: 16, Config: server.Config{
		Origin: c.first.origin.url, Database: c.withName("second"), Listen: "127.0.0.1:0", URL: "https://127.0.0.1:1/"}}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Options{Dir: dir})
	if err == nil {
		srv.Close()
		t.Fatal("a second init's data directory started on the database of another")
	}
	if msg := err.Error(); !strings.Contains(msg, "cascade server join") || strings.Contains(msg, "\n") {
		t.Fatalf("second init: %q", msg)
	}
}
