package repo

import (
	"github.com/cascade-update/cascade/internal/index"

	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmark repository: benchItems items of benchFiles files, each
// published in benchVersions versions: 100,000 targets in the hash bins.
const (
	benchItems    = 1000
	benchFiles    = 10
	benchVersions = 10
)

type benchRepo struct {
	r       *Repo
	dir     string
	build   time.Duration
	targets int
}

var (
	benchMu    sync.Mutex
	benchRepos = map[int]*benchRepo{}
)

// benchRepository builds (once per bin count) a repository holding
// 100,000 targets, published as benchVersions publishes of benchItems
// items each.
func benchRepository(b *testing.B, bins int) *benchRepo {
	benchMu.Lock()
	defer benchMu.Unlock()
	if br := benchRepos[bins]; br != nil {
		return br
	}
	dir, err := os.MkdirTemp("", "cascade-bench-")
	if err != nil {
		b.Fatal(err)
	}
	c := newClock()
	r, err := Init(filepath.Join(dir, "repo"), InitOptions{
		Settings: Settings{Kind: Vendor, Bins: bins, Keep: benchVersions},
		Options:  Options{Now: c.Now},
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for v := 1; v <= benchVersions; v++ {
		items := make([]Item, benchItems)
		for i := range items {
			files := make([]File, benchFiles)
			for f := range files {
				files[f] = data(fmt.Sprintf("file%02d.bin", f), fmt.Sprintf("item %d version %d file %d", i, v, f))
			}
			items[i] = component(fmt.Sprintf("component-%04d", i), fmt.Sprintf("17.%d.00", 700+v), files...)
		}
		if _, err := r.Publish(context.Background(), items...); err != nil {
			b.Fatal(err)
		}
	}
	br := &benchRepo{r: r, dir: dir, build: time.Since(start), targets: benchItems * benchFiles * benchVersions}
	benchRepos[bins] = br
	return br
}

// metadataSize sums the current metadata: newest root, timestamp, snapshot,
// targets and every bin.
func metadataSize(b *testing.B, r *Repo) (total, snapshot, largestBin int64) {
	t, err := loadTree(r.l)
	if err != nil {
		b.Fatal(err)
	}
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(r.l.metadataDir(), name))
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}
	total = size(metaName(t.root.Signed.Version, "root")) + size(timestampFile)
	snapshot = size(metaName(t.snapshot.Signed.Version, "snapshot"))
	total += snapshot
	for name, mf := range t.snapshot.Signed.Meta {
		n := size(fmt.Sprintf("%d.%s", mf.Version, name))
		total += n
		largestBin = max(largestBin, n)
	}
	return total, snapshot, largestBin
}

// countingServer serves the published tree and counts the bytes sent.
func countingServer(b *testing.B, r *Repo) (*httptest.Server, *atomic.Int64) {
	var sent atomic.Int64
	fs := http.FileServer(http.Dir(filepath.Dir(r.PublishedDir())))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fs.ServeHTTP(countingWriter{w, &sent}, req)
	}))
	b.Cleanup(srv.Close)
	return srv, &sent
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

// BenchmarkHashBins measures a repository of 100,000 targets in hash bins:
//
//	go test -run '^$' -bench BenchmarkHashBins -benchtime 20x ./internal/repo/
//
// RefreshLookup/cold: a new go-tuf updater with an empty cache refreshes
// (root, timestamp, snapshot, targets) and resolves one random target
// through its bin. RefreshLookup/warm: the same with a cache holding the
// current metadata. Publish: one new item version into the full
// repository (copy, re-sign its bins and the index's, snapshot,
// timestamp; prunes the oldest version).
func BenchmarkHashBins(b *testing.B) {
	for _, bins := range []int{256, 1024, 4096} {
		b.Run(fmt.Sprintf("bins=%d", bins), func(b *testing.B) {
			br := benchRepository(b, bins)
			total, snap, largest := metadataSize(b, br.r)
			b.Logf("%d targets in %d bins: built in %v; metadata %d B (snapshot %d B, largest bin %d B)",
				br.targets, bins, br.build.Round(time.Millisecond), total, snap, largest)
			b.Run("RefreshLookup/cold", func(b *testing.B) { benchLookup(b, br, total, false) })
			b.Run("RefreshLookup/warm", func(b *testing.B) { benchLookup(b, br, total, true) })
			b.Run("Publish", func(b *testing.B) { benchPublish(b, br) })
		})
	}
}

func benchLookup(b *testing.B, br *benchRepo, total int64, warm bool) {
	srv, sent := countingServer(b, br.r)
	cache := b.TempDir()
	if warm {
		up := newUpdater(b, br.r, srv.URL, cache)
		if err := up.Refresh(); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sent.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := cache
		if !warm {
			dir = b.TempDir()
		}
		up := newUpdater(b, br.r, srv.URL, dir)
		if err := up.Refresh(); err != nil {
			b.Fatal(err)
		}
		item, f := rng.IntN(benchItems), rng.IntN(benchFiles)
		p := index.ItemPath("components", fmt.Sprintf("component-%04d", item), "17.710.00", fmt.Sprintf("file%02d.bin", f))
		if _, err := up.GetTargetInfo(p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sent.Load())/float64(b.N), "B-fetched/op")
	b.ReportMetric(float64(total), "metadata-B")
}

func benchPublish(b *testing.B, br *benchRepo) {
	for i := 0; i < b.N; i++ {
		it := component("bench-publish", fmt.Sprintf("1.%d.%d", time.Now().UnixNano(), i), data("f.bin", fmt.Sprint(i)))
		if _, err := br.r.Publish(context.Background(), it); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMain removes the benchmark repositories after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, br := range benchRepos {
		os.RemoveAll(br.dir)
	}
	os.Exit(code)
}
