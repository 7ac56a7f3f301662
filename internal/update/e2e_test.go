package update

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/trust"
)

// world is an origin repository, copies of it, and sources on distinct
// loopback addresses.
type world struct {
	t      testing.TB
	now    func() time.Time
	origin *repo.Repo
	nextIP int
	// servers are the URLs the server source resolves to, in order.
	servers []string
}

func newWorld(t testing.TB) *world {
	now := func() time.Time { return time.Now().UTC() }
	r, err := repo.Init(filepath.Join(t.TempDir(), "origin"), repo.InitOptions{
		Options: repo.Options{Now: now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, now: now, origin: r, nextIP: 10}
}

// publish publishes a three-file version of the "pattern" component.
func (w *world) publish(ver string) map[string]string {
	w.t.Helper()
	files := map[string]string{}
	it := repo.Item{Category: "components", Name: "pattern", Version: ver}
	for i, n := range []string{"a.ptn", "b.ptn", "sig.dat"} {
		data := strings.Repeat(fmt.Sprintf("%s-%s-%d|", n, ver, i), 1000+i*500)
		files["pattern/"+n] = data
		it.Files = append(it.Files, repo.File{Name: n, Data: []byte(data)})
	}
	if _, err := w.origin.Publish(context.Background(), it); err != nil {
		w.t.Fatal(err)
	}
	return files
}

// snapshot copies the origin's published tree as a static mirror.
func (w *world) snapshot() string {
	dir := filepath.Join(w.t.TempDir(), "mirror")
	if err := testkit.CopyTree(filepath.Dir(w.origin.PublishedDir()), dir); err != nil {
		w.t.Fatal(err)
	}
	return dir
}

// listen binds the next 127.0.0.x address.
func (w *world) listen() net.Listener {
	w.t.Helper()
	w.nextIP++
	return testkit.Listen(w.t, testkit.LoopbackIP(w.nextIP))
}

func (w *world) serve(h http.Handler) string { return testkit.Serve(w.t, w.listen(), h) }

func (w *world) serveDir(dir string) string { return w.serve(http.FileServer(http.Dir(dir))) }

// refused returns a URL whose address refuses connections.
func (w *world) refused() string {
	w.nextIP++
	return "http://" + testkit.FreeAddr(w.t, testkit.LoopbackIP(w.nextIP)) + "/"
}

// hanging returns a URL whose server accepts and never answers.
func (w *world) hanging() string {
	ln := w.listen()
	testkit.Hang(w.t, ln)
	return "http://" + ln.Addr().String() + "/"
}

// endpoint is a client with its own trust and install stores.
type endpoint struct {
	runner  *Runner
	install *install.Store
	dir     string
}

func (w *world) endpoint(fo fetch.Options) *endpoint {
	return w.endpointWith(fo, failover.Options{})
}

func (w *world) endpointWith(fo fetch.Options, fa failover.Options) *endpoint {
	w.t.Helper()
	dir := w.t.TempDir()
	root, err := w.origin.TrustedRoot()
	if err != nil {
		w.t.Fatal(err)
	}
	vendor, err := trust.Init(filepath.Join(dir, "trust", "vendor"), root, trust.Options{Kind: "vendor", Now: w.now})
	if err != nil {
		w.t.Fatal(err)
	}
	inst, err := install.Open(filepath.Join(dir, "installed"), install.Options{Now: w.now})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { inst.Close() })
	if fo.ResponseHeaderTimeout == 0 {
		fo.ResponseHeaderTimeout = 300 * time.Millisecond
	}
	r, err := New(Options{Vendor: vendor, Install: inst, Fetcher: fetch.New(fo), Now: w.now, Failover: fa,
		Resolve: func(s policy.Source) ([]string, error) {
			switch {
			case s.Kind == policy.Agent:
				return nil, failure.Newf(failure.NotFound, s.String(), "agent not in the directory")
			case s.Kind == policy.Server && len(w.servers) > 0:
				return w.servers, nil
			}
			return []string{s.URL}, nil
		}})
	if err != nil {
		w.t.Fatal(err)
	}
	return &endpoint{runner: r, install: inst, dir: dir}
}

// planFor builds a customized client plan over the given URLs, in order,
// for a client at 10.1.2.3, with the origin as fallback.
func planFor(t testing.TB, origin string, trig plan.Trigger, urls ...string) plan.Plan {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "origin: %q\nserver: \"https://server.invalid/\"\nclients: {source: customized}\nfallback_to_server: {components: false}\ncustom_sources:\n", origin)
	for _, u := range urls {
		fmt.Fprintf(&b, "  - {addresses: 10.1.0.0/16, source: %q}\n", u)
	}
	p, err := policy.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return plan.For(p, plan.Endpoint{Role: plan.RoleClient, Addresses: []netip.Addr{netip.MustParseAddr("10.1.2.3")}}, trig)
}

func (e *endpoint) components(t *testing.T) *install.Version {
	t.Helper()
	v, err := e.install.Current(category.Components)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

func checkInstalled(t *testing.T, e *endpoint, want map[string]string) {
	t.Helper()
	v := e.components(t)
	for rel, data := range want {
		got, err := os.ReadFile(filepath.Join(v.Dir, rel))
		if err != nil || sha256.Sum256(got) != sha256.Sum256([]byte(data)) {
			t.Fatalf("installed %s differs (%v)", rel, err)
		}
	}
}

func catReport(t testing.TB, rep *report.Report, c category.Category) *report.Category {
	for _, rc := range rep.Categories {
		if rc.Category == c {
			return rc
		}
	}
	t.Fatalf("no %s in report", c)
	return nil
}

// TestWalkRealSources: the endpoint's list starts with sources that
// refuse, hang, answer 404 and 500, serve a stale copy and a tampered
// copy; it must take the first good mirror and report why every source
// before it was unable to update.
func TestWalkRealSources(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	old := w.snapshot()
	w.publish("2.0")
	originURL := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	e := w.endpoint(fetch.Options{})
	rep := e.runner.Run(context.Background(), Request{Plan: planFor(t, originURL, plan.Scheduled)})
	if rc := catReport(t, rep, category.Components); rc.Result != report.Updated || rc.Source != "origin" {
		t.Fatalf("first update: %+v", rc)
	}
	v3 := w.publish("3.0")
	good := w.snapshot()
	tampered := w.snapshot()
	tamperOne(t, tampered)
	sources := []string{
		w.refused(),
		w.hanging(),
		w.serve(http.NotFoundHandler()),
		w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { http.Error(rw, "down", 500) })),
		w.serveDir(old),
		w.serveDir(tampered),
		w.serveDir(good),
	}
	rep = e.runner.Run(context.Background(), Request{Plan: planFor(t, originURL, plan.Manual, sources...)})
	rc := catReport(t, rep, category.Components)
	if rc.Result != report.Updated || rc.Source != sources[6] {
		t.Fatalf("result %s from %q, want updated from the good mirror: %+v", rc.Result, rc.Source, rc)
	}
	want := []failure.Class{failure.Unreachable, failure.Unreachable, failure.NotFound, failure.HTTPError, failure.Stale, failure.Verification}
	var sourceAttempts []report.Attempt
	for _, a := range rc.Attempts {
		if a.Delta == "" {
			sourceAttempts = append(sourceAttempts, a)
		} else if a.Source != sources[5] || a.Class != failure.Verification {
			t.Errorf("delta attempt %+v, want the tampered source's, %s", a, failure.Verification)
		}
	}
	if len(sourceAttempts) != len(want) {
		t.Fatalf("attempts %+v", rc.Attempts)
	}
	for i, a := range sourceAttempts {
		if a.Source != sources[i] || a.Class != want[i] {
			t.Errorf("attempt %d: %s %s (%s), want %s %s", i, a.Source, a.Class, a.Error, sources[i], want[i])
		}
		// Printed as "SOURCE: CLASS: ERROR": the error names neither
		// again, nor the URL twice, and keeps the operation.
		if strings.HasPrefix(a.Error, a.Source) || strings.Contains(a.Error, ": "+string(a.Class)+": ") ||
			strings.HasPrefix(a.Error, string(a.Class)+": ") || strings.Contains(a.Error, `Get "`) || a.Error == "" {
			t.Errorf("attempt %d: %s: %s: %s", i, a.Source, a.Class, a.Error)
		}
	}
	if e := rc.Attempts[0].Error; !strings.HasPrefix(e, "GET ") || !strings.Contains(e, "connection refused") {
		t.Errorf("the refusing source's error lost the operation or the cause: %q", e)
	}
	if rc.Before["pattern"] != "2.0" || rc.After["pattern"] != "3.0" || rc.Bytes == 0 {
		t.Errorf("versions %v -> %v, %d bytes", rc.Before, rc.After, rc.Bytes)
	}
	checkInstalled(t, e, v3)

	// Up to date: the first live source confirms it; nothing is downloaded.
	rep = e.runner.Run(context.Background(), Request{Plan: planFor(t, originURL, plan.Scheduled, sources[6])})
	if rc := catReport(t, rep, category.Components); rc.Result != report.UpToDate || rc.Bytes != 0 {
		t.Fatalf("up-to-date run: %+v", rc)
	}
}

// TestAnnouncedVersionMakesSourcesStale: with a notify-components trigger,
// a source behind the announced version is skipped even though it is as
// new as the trusted metadata.
func TestAnnouncedVersionMakesSourcesStale(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	behind := w.serveDir(w.snapshot())
	e := w.endpoint(fetch.Options{})
	if rep := e.runner.Run(context.Background(), Request{Plan: planFor(t, behind, plan.Scheduled)}); rep.Result != report.Updated {
		t.Fatalf("first run: %s", rep.Result)
	}
	v2 := w.publish("2.0")
	originURL := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	rep := e.runner.Run(context.Background(), Request{Plan: planFor(t, originURL, plan.NotifyComponents, behind),
		Announced: map[string]string{"pattern": "2.0"}})
	rc := catReport(t, rep, category.Components)
	if rc.Source != "origin" || len(rc.Attempts) != 1 || rc.Attempts[0].Class != failure.Stale {
		t.Fatalf("report %+v", rc)
	}
	checkInstalled(t, e, v2)
}

// TestAllSourcesFail: the category quits, the report says why for every
// source, and a source dead in the first category is not contacted again.
func TestAllSourcesFail(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	dead := w.refused()
	e := w.endpoint(fetch.Options{})
	rep := e.runner.Run(context.Background(), Request{Plan: planFor(t, dead, plan.Scheduled, w.serve(http.NotFoundHandler()))})
	rc := catReport(t, rep, category.Components)
	if rc.Result != report.Failed || len(rc.Attempts) != 2 || rep.Result != report.Failed {
		t.Fatalf("report %+v", rc)
	}
	if !strings.Contains(rc.Error, "quits") {
		t.Errorf("error %q", rc.Error)
	}
	if _, err := e.install.Current(category.Components); err == nil {
		t.Fatal("something was installed")
	}
}

// tamperOne flips a byte in one target file of a mirror.
func tamperOne(t *testing.T, dir string) {
	t.Helper()
	var victim string
	filepath.Walk(filepath.Join(dir, "vendor", "targets", "components", "pattern"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".a.ptn") {
			victim = p
		}
		return nil
	})
	if victim == "" {
		t.Fatal("no target to tamper with")
	}
	// The deltas to the victim's version are tampered with too, so that
	// an endpoint holding an older version meets a bad target either way.
	deltas, _ := filepath.Glob(filepath.Join(filepath.Dir(victim), "*.cdlt"))
	for _, p := range append(deltas, victim) {
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.WriteFile(p, b, 0o644)
	}
}
