package update

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/report"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// countingWriter counts the response body bytes and the requests a
// source serves.
type counter struct{ requests, bytes atomic.Int64 }

type countingWriter struct {
	http.ResponseWriter
	c *counter
}

func (w countingWriter) Write(b []byte) (int, error) {
	w.c.bytes.Add(int64(len(b)))
	return w.ResponseWriter.Write(b)
}

// countedSource serves the world's origin with cascade's static handler,
// counting requests and response body bytes.
func countedSource(b *testing.B, w *world) (string, *counter) {
	h, err := static.New(filepath.Dir(w.origin.PublishedDir()), static.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	c := &counter{}
	src := w.serve(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h.ServeHTTP(countingWriter{rw, c}, r)
	}))
	return src, c
}

// BenchmarkUpToDateCheck measures what an up-to-date endpoint costs its
// source per run: requests and response body bytes, for a repository with
// one component, served by cascade's static handler (ETags, 304s).
func BenchmarkUpToDateCheck(b *testing.B) {
	w := newWorld(b)
	w.publish("1.0")
	src, c := countedSource(b, w)
	e := w.endpoint(fetch.Options{})
	pl := planFor(b, src, plan.Scheduled)
	if rep := e.runner.Run(context.Background(), Request{Plan: pl}); rep.Result != report.Updated {
		b.Fatalf("first run: %s", rep.Result)
	}
	// The second run learns the timestamp's ETag; steady state follows.
	e.runner.Run(context.Background(), Request{Plan: pl})
	c.requests.Store(0)
	c.bytes.Store(0)
	for b.Loop() {
		rep := e.runner.Run(context.Background(), Request{Plan: pl})
		if rc := catReport(b, rep, category.Components); rc.Result != report.UpToDate {
			b.Fatalf("run: %+v", rc)
		}
	}
	b.ReportMetric(float64(c.requests.Load())/float64(b.N), "requests/run")
	b.ReportMetric(float64(c.bytes.Load())/float64(b.N), "body-bytes/run")
}

// BenchmarkUpToDateCheckGoTUF is the baseline of BenchmarkUpToDateCheck:
// go-tuf's reference updater, with its metadata and target caches warm,
// refreshing and checking the same index against the same source.
func BenchmarkUpToDateCheckGoTUF(b *testing.B) {
	w := newWorld(b)
	w.publish("1.0")
	src, c := countedSource(b, w)
	root, err := w.origin.TrustedRoot()
	if err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	check := func() {
		cfg, err := config.New(src+"vendor/metadata", root)
		if err != nil {
			b.Fatal(err)
		}
		cfg.RemoteTargetsURL = src + "vendor/targets"
		cfg.LocalMetadataDir = filepath.Join(cache, "metadata")
		cfg.LocalTargetsDir = filepath.Join(cache, "targets")
		cfg.PrefixTargetsWithHash = true
		up, err := updater.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := up.Refresh(); err != nil {
			b.Fatal(err)
		}
		tf, err := up.GetTargetInfo("components/index.json")
		if err != nil {
			b.Fatal(err)
		}
		if p, _, err := up.FindCachedTarget(tf, ""); err != nil || p == "" {
			if _, _, err := up.DownloadTarget(tf, "", ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	os.MkdirAll(filepath.Join(cache, "metadata"), 0o700)
	os.MkdirAll(filepath.Join(cache, "targets"), 0o700)
	check()
	c.requests.Store(0)
	c.bytes.Store(0)
	for b.Loop() {
		check()
	}
	b.ReportMetric(float64(c.requests.Load())/float64(b.N), "requests/run")
	b.ReportMetric(float64(c.bytes.Load())/float64(b.N), "body-bytes/run")
}
