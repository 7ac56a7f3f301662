package update

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failover"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/policy"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/testkit"
)

// standardPlan is the plan of a client whose update source is the
// server (then the origin at originURL, with download_from_origin).
func standardPlan(t *testing.T, originURL string, fromOrigin bool) plan.Plan {
	t.Helper()
	doc := "origin: " + originURL + "\nserver: https://server.invalid/\nclients: {source: standard}\n"
	if fromOrigin {
		doc += "download_from_origin: true\n"
	}
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return plan.For(p, plan.Endpoint{Role: plan.RoleClient, Addresses: []netip.Addr{netip.MustParseAddr("10.1.2.3")}}, plan.Scheduled)
}

// TestServerSourceFailsOverAcrossURLs: the server source of a site with
// three management servers is one source of the plan whose URLs are
// tried in order: the first refuses, the second hangs, the third serves.
// The report names the URL that served and one attempt per URL before
// it; the origin after the server is not used (the probe-ahead may
// have contacted it).
func TestServerSourceFailsOverAcrossURLs(t *testing.T) {
	w := newWorld(t)
	files := w.publish("1.0")
	tree := filepath.Dir(w.origin.PublishedDir())
	originURL := w.serveDir(tree)
	w.servers = []string{w.refused(), w.hanging(), w.serveDir(tree)}
	e := w.endpoint(fetch.Options{})
	rep := e.runner.Run(context.Background(), Request{Plan: standardPlan(t, originURL, true)})
	rc := catReport(t, rep, category.Components)
	if rc.Result != report.Updated || rc.Source != "server" || rc.URL != w.servers[2] {
		t.Fatalf("components %s from %s %s, want updated from server %s: %+v", rc.Result, rc.Source, rc.URL, w.servers[2], rc)
	}
	if len(rc.Attempts) != 2 {
		t.Fatalf("attempts %+v, want the first two URLs'", rc.Attempts)
	}
	for i, a := range rc.Attempts {
		if a.Source != "server" || a.URL != w.servers[i] || a.Class != failure.Unreachable {
			t.Errorf("attempt %d: %+v, want server %s unreachable", i, a, w.servers[i])
		}
		if strings.HasPrefix(a.Error, "server") || strings.Contains(a.Error, a.URL+": ") {
			t.Errorf("attempt %d: the error names the source again: %q", i, a.Error)
		}
	}
	checkInstalled(t, e, files)
}

// TestServerSourceAllURLsFail: a server source every URL of which fails
// is one source unable to update: the walk goes on to the origin, and a
// category with no other source quits naming one source.
func TestServerSourceAllURLsFail(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	originURL := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	w.servers = []string{w.refused(), w.serve(http.NotFoundHandler())}
	e := w.endpoint(fetch.Options{})
	rep := e.runner.Run(context.Background(), Request{Plan: standardPlan(t, originURL, true)})
	rc := catReport(t, rep, category.Components)
	if rc.Result != report.Updated || rc.Source != "origin" || rc.URL != "" || len(rc.Attempts) != 2 {
		t.Fatalf("components: %+v, want updated from the origin after both server URLs", rc)
	}
	e = w.endpoint(fetch.Options{})
	rep = e.runner.Run(context.Background(), Request{Plan: standardPlan(t, originURL, false)})
	rc = catReport(t, rep, category.Components)
	if rc.Result != report.Failed || rc.Error != "all 1 sources were unable to update: the category quits" {
		t.Fatalf("components without the origin: %s %q", rc.Result, rc.Error)
	}
}

// TestServerSourceReturnsToFirstURL: a first URL that failed at
// connection level is not contacted again while remembered (the second
// serves), and is used again by a later run once it is back and the
// failure is forgotten.
func TestServerSourceReturnsToFirstURL(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	tree := filepath.Dir(w.origin.PublishedDir())
	w.nextIP++
	first := testkit.FreeAddr(t, testkit.LoopbackIP(w.nextIP)) // refuses until served below
	w.servers = []string{"http://" + first + "/", w.serveDir(tree)}
	clock := testkit.NewClock(time.Now())
	e := w.endpoint(fetch.Options{})
	e.runner.o.Health = failover.NewHealth(clock.Now, 30*time.Second)
	run := func() *report.Category {
		t.Helper()
		return catReport(t, e.runner.Run(context.Background(), Request{Plan: standardPlan(t, "https://origin.invalid/", false)}), category.Components)
	}
	if rc := run(); rc.Result != report.Updated || rc.URL != w.servers[1] || len(rc.Attempts) != 1 || rc.Attempts[0].Cached {
		t.Fatalf("first run: %+v, want updated from the second URL after the first refused", rc)
	}
	served, err := net.Listen("tcp", first)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", first, err)
	}
	testkit.Serve(t, served, http.FileServer(http.Dir(tree)))
	if rc := run(); rc.Result != report.UpToDate || rc.URL != w.servers[1] || len(rc.Attempts) != 1 || !rc.Attempts[0].Cached {
		t.Fatalf("run while the failure is remembered: %+v, want the second URL, the first not contacted", rc)
	}
	clock.Advance(31 * time.Second)
	if rc := run(); rc.Result != report.UpToDate || rc.URL != w.servers[0] || len(rc.Attempts) != 0 {
		t.Fatalf("run after the failure is forgotten: %+v, want the first URL again", rc)
	}
}

// TestServerURLsProbedAhead: the server source's URLs are walked with
// the probe-ahead of the source list: while the first URL keeps its
// request waiting, the second is contacted. The first answers (503) only
// once the second has been contacted, which a sequential walk would do
// only after giving the first up at its header timeout (unreachable); the
// third URL serves.
func TestServerURLsProbedAhead(t *testing.T) {
	w := newWorld(t)
	w.publish("1.0")
	tree := filepath.Dir(w.origin.PublishedDir())
	contacted := make(chan struct{})
	var once sync.Once
	first := w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-contacted:
			http.Error(rw, "shutting down", http.StatusServiceUnavailable)
		case <-r.Context().Done():
		}
	}))
	second := w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(contacted) })
		http.NotFound(rw, r)
	}))
	w.servers = []string{first, second, w.serveDir(tree)}
	e := w.endpoint(fetch.Options{ResponseHeaderTimeout: 5 * time.Second})
	rep := e.runner.Run(context.Background(), Request{Plan: standardPlan(t, "https://origin.invalid/", false)})
	rc := catReport(t, rep, category.Components)
	if rc.Result != report.Updated || rc.URL != w.servers[2] || len(rc.Attempts) != 2 {
		t.Fatalf("components: %+v, want updated from the third server URL after the first two", rc)
	}
	if a := rc.Attempts[0]; a.URL != first || a.Class != failure.HTTPError {
		t.Fatalf("first URL's attempt %+v, want %s: the second URL was contacted only after the first was given up", a, failure.HTTPError)
	}
	if a := rc.Attempts[1]; a.URL != second || a.Class != failure.NotFound {
		t.Fatalf("second URL's attempt %+v, want %s", a, failure.NotFound)
	}
}
