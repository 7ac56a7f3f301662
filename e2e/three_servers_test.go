//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/mirror"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/server/api"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/pgtest"
	"github.com/cascade-update/cascade/internal/trust"
)

// clusterDB returns the test's PostgreSQL database: the full URL (for the
// test's own connections), the URL without its password (the commands
// refuse one) and the environment that carries the password. The
// database is on a private cluster the test starts (pgtest.StartCluster)
// when the PostgreSQL server programs are installed, so that it can
// restart it; else pg (nil) and a schema of CASCADE_TEST_POSTGRES.
func clusterDB(t *testing.T) (pg *pgtest.Cluster, full, dsn string, env []string) {
	t.Helper()
	if _, err := pgtest.Binaries(); err == nil {
		pg = pgtest.StartCluster(t)
		full = pg.CreateDatabase(t, "cascade")
	} else {
		t.Logf("no private PostgreSQL cluster (%v): the database-restart case will be skipped", err)
		full = pgtest.DSN(t)
	}
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	return pg, full, u.String(), env
}

// threeServers is a site whose server is three processes on one
// PostgreSQL schema, each with its own data directory: a (made by init,
// the first writer), b and c (made by `cascade server join` on empty
// directories).
type threeServers struct {
	s         *site
	pg        *pgtest.Cluster // the private cluster; nil: a shared one
	full, dsn string
	token     string
	a, b, c   *clusterServer
}

// join makes a data directory with `cascade server join` and runs it.
func (ts *threeServers) join(name string) *clusterServer {
	s, t := ts.s, ts.s.t
	t.Helper()
	dir := filepath.Join(s.dir, name)
	listen := testkit.FreeAddr(t, s.nextIP())
	out := mustCascade(t, s.serverEnv, "server", "join", "--data", dir, "--database", ts.dsn,
		"--key-secret", filepath.Join(s.serverDir, "key-secret"), "--listen", listen, "--url", "https://"+listen+"/")
	tuneCluster(t, dir)
	editJSON(t, filepath.Join(dir, "server.json"), func(c map[string]any) {
		c["agent_timeout"] = "1m"
		c["notify_poll"] = "500ms"
		// The database-restart case has its endpoints upload without
		// pause: no per-endpoint report limit in the way.
		c["limits"] = map[string]any{"reports_per_hour": 1e7, "report_burst": 100000}
	})
	fp := mustFingerprint(t, out)
	p := startProc(t, "server "+name, s.serverEnv, "server", "run", "--data", dir)
	base := p.waitOutput(t, regexp.MustCompile(`cascade server at (\S+)`))
	return &clusterServer{name: "server " + name, url: base, fp: fp, api: apiClient(t, base, ts.token, fp), proc: p}
}

// call makes one admin API call to cs (30 s at most).
func (cs *clusterServer) call(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.api.Call(ctx, method, path, nil, in, out)
}

// putPolicy saves the current policy with a new first comment line
// through cs and returns the new version.
func putPolicy(t *testing.T, cs *clusterServer, marker string) (int64, error) {
	t.Helper()
	var cur api.Policy
	if err := cs.call(http.MethodGet, "/api/v1/policy", nil, &cur); err != nil {
		return 0, err
	}
	doc := cur.Document
	if strings.HasPrefix(doc, "# e2e ") {
		doc = doc[strings.Index(doc, "\n")+1:]
	}
	var res api.PolicyResult
	err := cs.call(http.MethodPut, "/api/v1/policy", api.PutPolicy{Document: "# e2e " + marker + "\n" + doc}, &res)
	return res.Policy.Version, err
}

// TestThreeServers: one PostgreSQL (a private cluster the test starts,
// see clusterDB), three server processes, endpoints
// attached to given processes by their server URL (the agent to b, the
// client to c). Cases, in order: the processes joined on empty
// directories serve the same bytes as the first; a policy saved on a is
// followed by the endpoints on b and c; a notification sent from a
// reaches the agent on b first and the client on c after the agent
// reported; the writer a is SIGKILLed during policy publishes and
// another process takes over (versions consecutive, endpoints and a
// fresh copy verify everything); the database (the private cluster)
// restarted under report load loses no acknowledged report.
func TestThreeServers(t *testing.T) {
	pg, full, dsn, env := clusterDB(t)
	s := newSite(t, 31, siteOptions{Database: dsn, Env: env})
	ts := &threeServers{s: s, pg: pg, full: full, dsn: dsn, token: strings.TrimPrefix(s.adminEnv[0], "CASCADE_ADMIN_TOKEN=")}
	fpA, err := api.ParseFingerprint(s.fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	ts.a = &clusterServer{name: "server a", url: s.serverURL, fp: fpA, api: s.api, proc: s.server}
	waitFor(t, ts.a, "a to be the writer", func(st api.Status) bool { return st.Writer })

	t.Run("join", ts.joinEmpty)
	if t.Failed() {
		return
	}
	agent := s.enroll("ua-b", memberOptions{Address: "10.31.0.1", AgentID: "ua-b", Server: ts.b.url, Fingerprint: ts.b.fp.String()})
	client := s.enroll("cl-c", memberOptions{Address: "10.31.0.2", Server: ts.c.url, Fingerprint: ts.c.fp.String()})
	for _, x := range []struct {
		m  *member
		cs *clusterServer
	}{{agent, ts.b}, {client, ts.c}} {
		testkit.Eventually(t, 30*time.Second, x.m.name+"'s event stream to "+x.cs.name, func() bool {
			var ep api.Endpoint
			return x.cs.call(http.MethodGet, "/api/v1/endpoints/"+x.m.id, nil, &ep) == nil && ep.Connected
		})
	}
	// c answered the client's enrollment with every process's key (each
	// recorded its own in the database; no peer_keys): the client pins
	// all three.
	b, err := os.ReadFile(filepath.Join(client.dataDir, "server", "enrollment.json"))
	if err != nil {
		t.Fatal(err)
	}
	var enr struct {
		KeyFingerprints []string `json:"key_fingerprints"`
	}
	if err := json.Unmarshal(b, &enr); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*clusterServer{ts.a, ts.b, ts.c} {
		if !slices.Contains(enr.KeyFingerprints, p.fp.String()) {
			t.Fatalf("the client enrolled at c pins %v, not %s's key %s", enr.KeyFingerprints, p.name, p.fp)
		}
	}
	steps := []struct {
		name string
		fn   func(t *testing.T, agent, client *member)
	}{
		{"policy", ts.policyAcross},
		{"notify", ts.notifyAcross},
		{"kill-writer", ts.killWriter},
		{"database-restart", ts.databaseRestart},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.fn(t, agent, client) }) {
			return
		}
	}
}

// joinEmpty: b and c, joined on empty data directories, serve the bytes
// a serves (the site's timestamp and first root, the vendor timestamp)
// within 30 s; a is the only writer.
func (ts *threeServers) joinEmpty(t *testing.T) {
	ts.b = ts.join("b")
	ts.c = ts.join("c")
	var last string
	defer func() {
		if t.Failed() {
			t.Log("last difference: " + last)
		}
	}()
	for _, p := range []*clusterServer{ts.b, ts.c} {
		testkit.Eventually(t, 30*time.Second, p.name+" to serve a's site metadata", func() bool {
			for _, f := range []string{"site/metadata/timestamp.json", "site/metadata/1.root.json", "vendor/metadata/timestamp.json"} {
				x, y := fetchFile(t, ts.a.api, f), fetchFile(t, p.api, f)
				if x == nil || string(x) != string(y) {
					last = fmt.Sprintf("%s: %d bytes at a, %d at %s", f, len(x), len(y), p.name)
					return false
				}
			}
			return true
		})
	}
	for _, p := range []*clusterServer{ts.a, ts.b, ts.c} {
		if st := status(t, p); st.Writer != (p == ts.a) {
			t.Fatalf("%s says writer %v", p.name, st.Writer)
		}
	}
}

// policyAcross: a policy saved through a is installed by the agent on b
// and the client on c, each from the server source (the process it is
// configured with, the only server URL it has).
func (ts *threeServers) policyAcross(t *testing.T, agent, client *member) {
	v, err := putPolicy(t, ts.a, "saved on a")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("policy version %d saved through a", v)
	for _, x := range []struct {
		m  *member
		cs *clusterServer
	}{{agent, ts.b}, {client, ts.c}} {
		rep := x.m.updateNow()
		rc := rep.Category(category.DomainSettings)
		if rc == nil || rc.Result != report.Updated || rc.After["policy"] == rc.Before["policy"] || rc.Source != "server" ||
			(rc.URL != "" && rc.URL != x.cs.url) {
			t.Fatalf("%s (on %s) did not install the policy saved on a from its server: %+v", x.m.name, x.cs.name, rc)
		}
		t.Logf("%s installed policy %s from %s (report URL %q; its one server URL %s)", x.m.name, rc.After["policy"], rc.Source, rc.URL, x.cs.url)
	}
}

// notifyAcross: `cascade server notify` through a reaches the agent
// (stream to b) and the client (stream to c); the client runs only after
// the agent's report, and the deliveries are recorded done once each.
func (ts *threeServers) notifyAcross(t *testing.T, agent, client *member) {
	s := ts.s
	var n api.Notification
	s.adminJSON(&n, "server", "notify")
	t.Logf("notification %s sent through a", n.ID)
	ar := s.notified(agent, n.ID)
	cr := s.notified(client, n.ID)
	if cr.Started.Before(ar.Finished) {
		t.Errorf("the client on c ran at %v, before the agent on b finished (%v)", cr.Started, ar.Finished)
	}
	testkit.Eventually(t, 30*time.Second, "the notification's deliveries done", func() bool {
		var got api.Notification
		if err := ts.c.call(http.MethodGet, "/api/v1/notifications/"+n.ID, nil, &got); err != nil {
			t.Fatal(err)
		}
		n = got
		return n.Deliveries["agent"]["done"] == 1 && n.Deliveries["client"]["done"] == 1
	})
	sum := func(role string) (k int) {
		for _, c := range n.Deliveries[role] {
			k += c
		}
		return k
	}
	if n.ClientsReleased == nil || len(n.Deliveries) != 2 || sum("agent") != 1 || sum("client") != 1 {
		t.Errorf("notification %s: released %v, deliveries %v; want the agent and the client done, once", n.ID, n.ClientsReleased, n.Deliveries)
	}
}

// killWriter: a publishes policies back to back and is SIGKILLed while
// one is in flight; b or c becomes the writer and publishes the next
// policy, the site versions are consecutive (the new writer's since),
// the endpoints install it (verifying the site metadata), and a fresh
// copy of the new writer's site and vendor repositories verifies.
func (ts *threeServers) killWriter(t *testing.T, agent, client *member) {
	s := ts.s
	var mu sync.Mutex
	published := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := putPolicy(t, ts.a, fmt.Sprintf("burst %d", i)); err != nil {
				return // a was killed
			}
			mu.Lock()
			published++
			mu.Unlock()
		}
	}()
	testkit.Eventually(t, time.Minute, "a to publish two policies", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return published >= 2
	})
	ts.a.proc.stop(syscall.SIGKILL) // the loop has a publish in flight
	close(stop)
	<-done
	t.Logf("SIGKILLed the writer a after %d policy publishes, during the next", published)

	var w *clusterServer
	testkit.Eventually(t, time.Minute, "b or c to become the writer", func() bool {
		for _, p := range []*clusterServer{ts.b, ts.c} {
			if status(t, p).Writer {
				w = p
				return true
			}
		}
		return false
	})
	t.Logf("%s is the writer", w.name)
	testkit.Eventually(t, time.Minute, "a policy published through "+w.name, func() bool {
		_, err := putPolicy(t, w, "after the kill")
		return err == nil
	})
	checkChain(t, ts.full, firstVersionBy(t, ts.full, w.url, time.Minute), w.url)
	s.api = w.api // the site's reports, notifications: from a live process
	for _, m := range []*member{agent, client} {
		testkit.Eventually(t, time.Minute, m.name+" to install the policy published after the kill", func() bool {
			rep := m.updateNow()
			if rep.Result == report.Failed {
				t.Fatalf("%s's run after the kill failed: %+v", m.name, rep.Categories)
			}
			rc := rep.Category(category.DomainSettings)
			return rc != nil && rc.Result == report.Updated
		})
	}
	verifyServed(t, filepath.Join(s.dir, "verify-"+w.name[len("server "):]), w, s.serverDir, s.originRoot)
}

// databaseRestart: endpoints (their credentials, through the API) upload
// reports to b and c without pause while the test's private PostgreSQL
// cluster restarts (every session cut, transactions in flight rolled
// back); every
// report answered 2xx is in the database afterwards, and uploads succeed
// again after the restart.
func (ts *threeServers) databaseRestart(t *testing.T, _, _ *member) {
	if ts.pg == nil {
		t.Skip("no PostgreSQL server programs to start a private cluster with (pgtest.Binaries); the machine's own PostgreSQL is never restarted")
	}
	// Four endpoints, two on each of b and c.
	type uploader struct {
		c      *api.Client
		acked  []string
		fails  int
		last   error // the last upload's error after the restart
		lastAt time.Time
	}
	var ups []*uploader
	for i, p := range []*clusterServer{ts.b, ts.c, ts.b, ts.c} {
		anon, err := api.NewClient(api.ClientOptions{URL: p.url, Fingerprint: p.fp})
		if err != nil {
			t.Fatal(err)
		}
		var res api.EnrollResponse
		if err := anon.Call(context.Background(), http.MethodPost, api.PathEnroll, nil,
			api.EnrollRequest{Token: ts.s.enrollToken, Hostname: fmt.Sprintf("load-%d", i), Addresses: []string{fmt.Sprintf("10.31.1.%d", i+1)}}, &res); err != nil {
			t.Fatal(err)
		}
		c, err := api.NewClient(api.ClientOptions{URL: p.url, Fingerprint: p.fp, Token: res.Credential})
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, &uploader{c: c})
	}
	var phase sync.Map // "restarted" once the restart returned
	var ackedAfter sync.WaitGroup
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Add(1)
		ackedAfter.Add(1)
		go func() {
			defer wg.Done()
			after := false
			for n := 0; ; n++ {
				select {
				case <-stop:
					if !after {
						ackedAfter.Done()
					}
					return
				default:
				}
				now := time.Now().UTC()
				rep := report.Report{ID: fmt.Sprintf("load-%d-%d-%d", i, n, now.UnixNano()), Role: "client", Trigger: "scheduled", Started: now,
					Categories: []*report.Category{{Category: category.Components, Result: report.UpToDate, Source: "server"}}}
				rep.Finish(now)
				raw, err := json.Marshal(rep)
				if err != nil {
					panic(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var acc api.ReportAccepted
				err = u.c.Call(ctx, http.MethodPost, api.PathReports, nil, api.ReportUpload{Report: raw}, &acc)
				cancel()
				if err != nil {
					if _, ok := phase.Load("restarted"); ok {
						u.last, u.lastAt = err, time.Now()
					}
					u.fails++
					time.Sleep(50 * time.Millisecond)
					continue
				}
				u.acked = append(u.acked, acc.ID)
				time.Sleep(10 * time.Millisecond)
				if _, ok := phase.Load("restarted"); ok && !after {
					after = true
					ackedAfter.Done()
				}
			}
		}()
	}
	time.Sleep(time.Second) // load before the restart
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err := ts.pg.Restart(ctx)
	cancel()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("restart the private PostgreSQL cluster: %v", err)
	}
	t.Logf("the private PostgreSQL cluster restarted under load (pg_ctl restart -m fast took %v)", time.Since(began).Round(time.Millisecond))
	phase.Store("restarted", true)
	waited := make(chan struct{})
	go func() { ackedAfter.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Logf("every endpoint had a report acknowledged %v after the restart began", time.Since(began).Round(time.Millisecond))
	case <-time.After(time.Minute):
		close(stop)
		wg.Wait()
		t.Fatal("an endpoint had no report acknowledged within a minute of the restart")
	}
	close(stop)
	wg.Wait()

	db := openDB(t, ts.full)
	total, fails := 0, 0
	for i, u := range ups {
		fails += u.fails
		for _, id := range u.acked {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM reports WHERE id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("endpoint load-%d: report %s was acknowledged but the database holds %d", i, id, n)
			}
		}
		total += len(u.acked)
		if u.last != nil {
			t.Logf("endpoint load-%d: its last failed upload after the restart, %v after it began: %v", i, u.lastAt.Sub(began).Round(time.Millisecond), u.last)
		}
	}
	t.Logf("%d reports acknowledged (all in the database), %d uploads failed during the restart", total, fails)
}

// verifyServed copies the site and vendor repositories cs serves into
// dir, verifying them from the site root (in serverDir) and vendorRoot.
func verifyServed(t *testing.T, dir string, cs *clusterServer, serverDir, vendorRoot string) {
	t.Helper()
	siteRoot, err := os.ReadFile(filepath.Join(serverDir, "site", "published", "site", "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	vroot, err := os.ReadFile(vendorRoot)
	if err != nil {
		t.Fatal(err)
	}
	for kind, root := range map[string][]byte{"site": siteRoot, "vendor": vroot} {
		tstore, err := trust.Init(filepath.Join(dir, "trust-"+kind), root, trust.Options{Kind: kind, Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		f := fetch.New(fetch.Options{Transport: api.NewTransport(cs.fp, nil)})
		res, err := mirror.Copy(context.Background(), mirror.Options{Store: tstore, Fetcher: f, Dir: filepath.Join(dir, "copy"),
			Source: trust.Source{Name: cs.name, Base: cs.url}})
		if err != nil {
			t.Fatalf("verify %s's %s repository: %v", cs.name, kind, err)
		}
		t.Logf("%s's %s repository verifies: timestamp %d, %d targets", cs.name, kind, res.Timestamp, res.Targets)
	}
}
