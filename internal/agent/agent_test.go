package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// TestServesVerifiedCopy: after a refresh the agent serves the newest
// version of every item, the indexes and all metadata, with the caching
// headers of any source; a client verifies it like the origin.
func TestServesVerifiedCopy(t *testing.T) {
	w := newWorld(t)
	w.publish("pattern", "1.0", 2000, "a.ptn")
	v2 := w.publish("pattern", "2.0", 3000, "a.ptn", "b.ptn")
	a := w.startAgent("ua-1", nil)
	a.refresh(t, w.url)
	files := servedTargets(t, a.dir)
	if len(files) != 4 { // 2.0's two files, two indexes
		t.Fatalf("served targets %v", files)
	}
	for _, f := range files {
		if strings.Contains(f, "/1.0/") {
			t.Errorf("old version copied: %s", f)
		}
	}
	c := w.client(fetch.Options{})
	for target, data := range v2 {
		dst := filepath.Join(c.dir, filepath.Base(target))
		if err := c.fetchFile(context.Background(), a.url, target, dst); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
			t.Fatalf("%s differs", target)
		}
	}
	// Caching headers: immutable targets, revalidated timestamp.
	for target, data := range v2 {
		resp, _ := get(t, consistentURL(a.url, target, data), map[string]string{"Range": "bytes=0-9"})
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Cache-Control") != static.ImmutableCacheControl || resp.Header.Get("ETag") == "" {
			t.Fatalf("target: %s %v", resp.Status, resp.Header)
		}
	}
	resp, _ := get(t, a.url+"vendor/metadata/timestamp.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=10" {
		t.Fatalf("timestamp: %s %v", resp.Status, resp.Header)
	}
	resp, _ = get(t, a.url+"vendor/metadata/timestamp.json", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional timestamp: %s", resp.Status)
	}
	// A second refresh with nothing new fetches nothing.
	before := w.targets.Load()
	res, err := a.Refresh(context.Background(), "vendor", trust.Source{Name: "origin", Base: w.url})
	if err != nil || !res.UpToDate || res.Fetched != 0 {
		t.Fatalf("second refresh %+v %v", res, err)
	}
	if w.targets.Load() != before {
		t.Fatalf("second refresh made %d target requests", w.targets.Load()-before)
	}
}

// TestTamperedUpstreamNeverServed: a tampered upstream fails the refresh
// and the pull-through; the served tree keeps the previous verified state
// and no tampered byte is ever under a served name.
func TestTamperedUpstreamNeverServed(t *testing.T) {
	w := newWorld(t)
	w.publish("pattern", "1.0", 2000, "a.ptn")
	a := w.startAgent("ua-1", nil)
	a.refresh(t, w.url)
	ts1, _ := os.ReadFile(filepath.Join(a.dir, "vendor", "metadata", "timestamp.json"))
	old := w.publish("pattern", "2.0", 2000, "a.ptn")
	w.publish("pattern", "3.0", 2000, "a.ptn")
	w.tamper.Store(true)
	_, err := a.Refresh(context.Background(), "vendor", trust.Source{Name: "origin", Base: w.url})
	if !failure.Is(err, failure.Verification) {
		t.Fatalf("refresh from tampered origin: %v", err)
	}
	ts, _ := os.ReadFile(filepath.Join(a.dir, "vendor", "metadata", "timestamp.json"))
	if !bytes.Equal(ts, ts1) {
		t.Fatal("timestamp.json changed after a failed refresh")
	}
	for _, f := range servedTargets(t, a.dir) {
		if !strings.Contains(f, "/1.0/") && !strings.HasSuffix(f, "index.json") {
			t.Errorf("tampered refresh left %s", f)
		}
	}
	// Untampered, it succeeds; then a pull-through from the tampered
	// origin is refused and leaves nothing.
	w.tamper.Store(false)
	a.refresh(t, w.url)
	w.tamper.Store(true)
	target := "components/pattern/2.0/a.ptn"
	resp, _ := get(t, consistentURL(a.url, target, old[target]), nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("pull-through of tampered content: %s", resp.Status)
	}
	for _, f := range servedTargets(t, a.dir) {
		if strings.Contains(f, "/2.0/") {
			t.Fatalf("tampered pull-through stored %s", f)
		}
	}
}

// TestPullThroughOnce: many clients ask at once for an older version the
// agent does not hold; it is fetched from upstream once, verified, and
// served to all of them.
func TestPullThroughOnce(t *testing.T) {
	w := newWorld(t)
	old := w.publish("pattern", "1.0", 200_000, "a.ptn")
	w.publish("pattern", "2.0", 2000, "a.ptn")
	a := w.startAgent("ua-1", func(o *Options) { o.PullWait = time.Minute })
	a.refresh(t, w.url)
	target := "components/pattern/1.0/a.ptn"
	u := consistentURL(a.url, target, old[target])
	before := w.targets.Load()
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := get(t, u, nil)
			if resp.StatusCode != 200 || sha256.Sum256(body) != sha256.Sum256(old[target]) {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("client got", e)
	}
	if n := w.targets.Load() - before; n != 1 {
		t.Fatalf("%d upstream requests for one target, want 1", n)
	}
	if st := a.Status(); st.UpstreamFetches < 1 {
		t.Fatalf("status %+v", st)
	}
	// A name the verified metadata does not hold is never pulled.
	resp, _ := get(t, a.url+"vendor/targets/components/pattern/1.0/"+strings.Repeat("ab", 32)+".a.ptn", nil)
	if resp.StatusCode != http.StatusNotFound || w.targets.Load()-before != 1 {
		t.Fatalf("unknown target: %s", resp.Status)
	}
}

// TestPullThroughBusy: a pull that takes longer than PullWait answers 503
// with Retry-After, and the client's retry gets the file.
func TestPullThroughBusy(t *testing.T) {
	w := newWorld(t)
	old := w.publish("pattern", "1.0", 2000, "a.ptn")
	w.publish("pattern", "2.0", 2000, "a.ptn")
	release := make(chan struct{})
	slow := w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/1.0/") {
			<-release
		}
		http.FileServer(http.Dir(filepath.Dir(w.origin.PublishedDir()))).ServeHTTP(rw, r)
	}))
	a := w.startAgent("ua-1", func(o *Options) { o.PullWait = time.Millisecond })
	a.refresh(t, slow)
	target := "components/pattern/1.0/a.ptn"
	u := consistentURL(a.url, target, old[target])
	resp, _ := get(t, u, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("while pulling: %s %v", resp.Status, resp.Header)
	}
	close(release)
	c := w.client(fetch.Options{})
	if err := c.fetchFile(context.Background(), a.url, target, filepath.Join(c.dir, "a")); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_, body := get(t, a.url+"healthz", nil)
	if err := json.Unmarshal(body, &m); err != nil || m["vendor"] == nil {
		t.Fatalf("healthz %s", body)
	}
	if b, _ := m["build"].(map[string]any); b["version"] == nil || b["go"] != runtime.Version() {
		t.Fatalf("healthz has no build information: %s", body)
	}
}
