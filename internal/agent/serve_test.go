package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/fastpath"
	"github.com/cascade-update/cascade/internal/fetch"
)

// TestServicesNeverAnsweredByFastPath: the fast path declines every path
// of the services table, which Handler serves, so a service added to the
// table is never answered 404 by the fast path.
func TestServicesNeverAnsweredByFastPath(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("ua-1", nil)
	a.refresh(t, w.url)
	a.service["/probe"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "probe") })
	for path := range a.service {
		for _, inm := range []string{"", "*"} {
			r := &fastpath.Request{Method: "GET", Path: path, IfNoneMatch: inm}
			if out, body, ok := a.answer(nil, r); ok {
				t.Errorf("fast path answered %s (If-None-Match %q): %q %q", path, inm, out, body)
			}
		}
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/probe", nil))
	if rec.Body.String() != "probe" {
		t.Errorf("Handler: %d %q, want the service's answer", rec.Code, rec.Body.String())
	}
}

// TestNoFastPath: with Options.NoFastPath, a revalidation over plain HTTP
// is served by the handler (net/http); without it, by the fast path.
func TestNoFastPath(t *testing.T) {
	for _, off := range []bool{false, true} {
		w := newWorld(t)
		base := t.TempDir()
		a, err := New(Options{ID: "ua-1", Dir: filepath.Join(base, "served"), StateDir: filepath.Join(base, "state"),
			Roots: map[string][]byte{"vendor": w.root()}, Now: now, Listener: w.listen(), ShutdownTimeout: time.Second,
			Fetch: fetch.Options{ResponseHeaderTimeout: 5 * time.Second, MinRate: -1}, NoFastPath: off})
		if err != nil {
			t.Fatal(err)
		}
		var viaHandler atomic.Int64
		h := a.handler
		a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { viaHandler.Add(1); h.ServeHTTP(w, r) })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		f := &agentFixture{Agent: a}
		f.refresh(t, w.url)
		ts := "http://" + a.o.Listener.Addr().String() + "/vendor/metadata/timestamp.json"
		first, _ := get(t, ts, nil)
		before := viaHandler.Load()
		// On a new connection: the GET above handed its own to net/http.
		req, _ := http.NewRequest("GET", ts, nil)
		req.Header.Set("If-None-Match", first.Header.Get("ETag"))
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		a.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("NoFastPath %v: revalidation answered %s", off, resp.Status)
		}
		want := int64(0)
		if off {
			want = 1
		}
		if n := viaHandler.Load() - before; n != want {
			t.Errorf("NoFastPath %v: %d revalidations served by the handler, want %d", off, n, want)
		}
	}
}
