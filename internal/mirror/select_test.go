package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// countingSource serves the origin's tree and counts target requests.
func countingSource(t *testing.T, fx *fixture) (trust.Source, *atomic.Int64) {
	h, err := static.New(filepath.Dir(fx.origin.PublishedDir()), static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/targets/") {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); h.Close() })
	return trust.Source{Name: "counted", Base: srv.URL}, &n
}

func targetNames(t *testing.T, dir string) []string {
	var out []string
	for name := range files(t, filepath.Join(dir, "vendor", "targets")) {
		out = append(out, filepath.ToSlash(name))
	}
	return out
}

func hasSuffix(names []string, suffix string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// TestCopyCurrentOnly: with Select Current, only the newest version of
// each item and the indexes are copied, but the metadata is whole.
func TestCopyCurrentOnly(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", "old.ptn")
	fx.publish("pattern", "2.0", "new.ptn")
	fx.publish("engine", "7.0", "eng.bin")
	res, err := Copy(context.Background(), Options{Store: fx.store, Source: fx.src, Fetcher: fx.f, Dir: fx.dir, Select: Current})
	if err != nil {
		t.Fatal(err)
	}
	names := targetNames(t, fx.dir)
	if res.Targets != 4 || res.Fetched != 4 || len(names) != 4 {
		t.Fatalf("result %+v, files %v; want the two newest files and the two indexes", res, names)
	}
	if hasSuffix(names, ".old.ptn") || !hasSuffix(names, ".new.ptn") || !hasSuffix(names, ".eng.bin") || !hasSuffix(names, ".index.json") {
		t.Fatalf("files %v", names)
	}
	if len(res.View.Targets()) != 5 {
		t.Fatalf("view names %d targets, want 5", len(res.View.Targets()))
	}
	mirrored := files(t, filepath.Join(fx.dir, "vendor", "metadata"))
	for name := range res.View.Files() {
		if _, ok := mirrored[name]; !ok {
			t.Errorf("metadata %s not copied", name)
		}
	}
}

// TestCopyFromLocal: files the host holds are copied, not downloaded; a
// local file with the wrong content is downloaded after all.
func TestCopyFromLocal(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", "a.ptn", "b.ptn")
	src, requests := countingSource(t, fx)
	local := t.TempDir()
	content := map[string][]byte{"a.ptn": []byte("pattern1.0a.ptn"), "b.ptn": []byte("pattern1.0b.ptn")}
	byHash := map[string]string{}
	for name, data := range content {
		sum := sha256.Sum256(data)
		p := filepath.Join(local, name)
		if name == "b.ptn" {
			data = []byte("wrong content!!") // same length, other bytes
		}
		os.WriteFile(p, data, 0o444)
		byHash[hex.EncodeToString(sum[:])] = p
	}
	res, err := Copy(context.Background(), Options{Store: fx.store, Source: src, Fetcher: fx.f, Dir: fx.dir,
		Local: func(sha string, _ int64) string { return byHash[sha] }})
	if err != nil {
		t.Fatal(err)
	}
	// b.ptn and the two indexes come from the source; a.ptn from the
	// local file.
	if res.Fetched != 4 || requests.Load() != 3 {
		t.Fatalf("result %+v after %d target requests, want 4 fetched with 3 requests", res, requests.Load())
	}
	for name, data := range files(t, filepath.Join(fx.dir, "vendor", "targets")) {
		for base, want := range content {
			if strings.HasSuffix(name, "."+base) && string(data) != string(want) {
				t.Errorf("%s holds %q", name, data)
			}
		}
	}
}

// TestCopyPrune: targets the repository dropped are removed, and old
// metadata outlives the state that refers to it by one copy.
func TestCopyPrune(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "o"), repo.InitOptions{Options: repo.Options{Now: time.Now},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 16, Keep: 1, GCGenerations: -1, GCGrace: -1}})
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t)
	fx.origin = r
	h, _ := static.New(filepath.Dir(r.PublishedDir()), static.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	root, _ := r.TrustedRoot()
	fx.store, err = trust.Init(filepath.Join(t.TempDir(), "state"), root, trust.Options{Kind: "vendor", Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	src := trust.Source{Name: "o", Base: srv.URL}
	cp := func() *Result {
		t.Helper()
		res, err := Copy(context.Background(), Options{Store: fx.store, Source: src, Fetcher: fx.f, Dir: fx.dir, Prune: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	fx.publish("pattern", "1.0", "a.ptn")
	cp()
	snap1 := snapshotFiles(t, fx.dir)
	fx.publish("pattern", "2.0", "a.ptn")
	res := cp()
	names := targetNames(t, fx.dir)
	if len(names) != 3 || res.Pruned < 2 { // v1's file and v1's index
		t.Fatalf("after v2: files %v, pruned %d", names, res.Pruned)
	}
	if got := snapshotFiles(t, fx.dir); len(got) != 2 || got[0] != snap1[0] {
		t.Fatalf("after v2: snapshots %v, want v1's kept for one more copy", got)
	}
	fx.publish("pattern", "3.0", "a.ptn")
	cp()
	if got := snapshotFiles(t, fx.dir); len(got) != 2 || got[0] == snap1[0] {
		t.Fatalf("after v3: snapshots %v, want v1's gone", got)
	}
	if _, err := os.Stat(filepath.Join(fx.dir, "vendor", "metadata", "1.root.json")); err != nil {
		t.Fatal("root pruned")
	}
}

func snapshotFiles(t *testing.T, dir string) []string {
	var out []string
	for name := range files(t, filepath.Join(dir, "vendor", "metadata")) {
		if strings.HasSuffix(name, ".snapshot.json") {
			out = append(out, name)
		}
	}
	if len(out) == 2 && out[0] > out[1] {
		out[0], out[1] = out[1], out[0]
	}
	return out
}
