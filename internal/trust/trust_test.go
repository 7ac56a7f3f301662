package trust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/testkit"
)

type fixture struct {
	t     *testing.T
	clock *testkit.Clock
	repo  *repo.Repo
	store *Store
	f     *fetch.Fetcher
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
	r, err := repo.Init(filepath.Join(t.TempDir(), "origin"), repo.InitOptions{
		Options: repo.Options{Now: c.Now}, Settings: repo.Settings{Kind: repo.Vendor, Bins: 8}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := r.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Init(filepath.Join(t.TempDir(), "trust"), root, Options{Kind: "vendor", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := fetch.New(fetch.Options{ResponseHeaderTimeout: 2 * time.Second, MinRate: 64 << 10, RateWindow: 400 * time.Millisecond})
	return &fixture{t: t, clock: c, repo: r, store: s, f: f}
}

func (fx *fixture) publish(name, version string, files map[string]string) {
	fx.t.Helper()
	it := repo.Item{Category: "components", Name: name, Version: version}
	for n, d := range files {
		it.Files = append(it.Files, repo.File{Name: n, Data: []byte(d)})
	}
	if _, err := fx.repo.Publish(context.Background(), it); err != nil {
		fx.t.Fatal(err)
	}
}

// serve serves the published tree, passing every request through edit.
func (fx *fixture) serve(edit func(w http.ResponseWriter, r *http.Request, next http.Handler)) Source {
	root := filepath.Dir(fx.repo.PublishedDir())
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if edit != nil {
			edit(w, r, files)
			return
		}
		files.ServeHTTP(w, r)
	}))
	fx.t.Cleanup(srv.Close)
	return Source{Name: "test:" + srv.URL, Base: srv.URL + "/"}
}

// update probes src, reads the index and every file, and commits.
func (fx *fixture) update(src Source) (*index.Index, error) {
	ctx := context.Background()
	v, err := fx.store.Probe(ctx, src, fx.f)
	if err != nil {
		return nil, err
	}
	idx, err := v.Index(ctx, "components")
	if err != nil {
		return nil, err
	}
	dir := fx.t.TempDir()
	for _, it := range idx.Items {
		for _, p := range it.Files {
			tf, err := v.Target(ctx, p)
			if err != nil {
				return nil, err
			}
			if err := v.Download(ctx, p, tf, filepath.Join(dir, filepath.Base(p)), nil); err != nil {
				return nil, err
			}
		}
	}
	return idx, fx.store.Commit(v)
}

func (fx *fixture) trustedFiles() map[string]string {
	out := map[string]string{}
	root := filepath.Join(fx.store.dir, "current")
	filepath.Walk(root+"/", func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			out[strings.TrimPrefix(p, root)] = hex.EncodeToString(sum[:])
		}
		return nil
	})
	return out
}

func TestUpdateAndUpToDate(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", map[string]string{"a.bin": "aaaa", "b.bin": "bbbb"})
	src := fx.serve(nil)
	idx, err := fx.update(src)
	if err != nil {
		t.Fatal(err)
	}
	if idx.Items["pattern"].Version != "1.0" {
		t.Fatalf("index %+v", idx)
	}
	ts, snap, _ := fx.store.Versions()
	if ts == 0 || snap == 0 {
		t.Fatal("nothing committed")
	}
	v, err := fx.store.Probe(context.Background(), src, fx.f)
	if err != nil {
		t.Fatal(err)
	}
	if !v.UpToDate() {
		t.Fatal("second probe of an unchanged source is not up to date")
	}
	fx.publish("pattern", "2.0", map[string]string{"a.bin": "AAAA"})
	if idx, err = fx.update(src); err != nil || idx.Items["pattern"].Version != "2.0" {
		t.Fatalf("update to 2.0: %v %+v", err, idx)
	}
}

func TestAttacks(t *testing.T) {
	tests := []struct {
		name  string
		setup func(fx *fixture) Source
		want  failure.Class
	}{
		{"tampered target", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "/targets/components/pattern/") {
					io.WriteString(w, "evil")
					return
				}
				next.ServeHTTP(w, r)
			})
		}, failure.Verification},
		{"wrong length target", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "/targets/components/pattern/") {
					io.WriteString(w, "aaaa-and-more")
					return
				}
				next.ServeHTTP(w, r)
			})
		}, failure.Verification},
		{"tampered metadata", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.HasSuffix(r.URL.Path, "/timestamp.json") {
					rec := httptest.NewRecorder()
					next.ServeHTTP(rec, r)
					var doc map[string]any
					if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
						panic(err)
					}
					doc["signed"].(map[string]any)["expires"] = "2099-01-01T00:00:00Z"
					json.NewEncoder(w).Encode(doc)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, failure.Verification},
		{"tampered index", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "index.json") {
					io.WriteString(w, `{"category":"components","items":{}}`)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, failure.Verification},
		{"expired timestamp", func(fx *fixture) Source {
			fx.clock.Advance(48 * time.Hour)
			return fx.serve(nil)
		}, failure.Verification},
		{"mix and match snapshot", func(fx *fixture) Source {
			pub := fx.repo.PublishedDir()
			old, err := os.ReadFile(filepath.Join(pub, "metadata", "1.snapshot.json"))
			if err != nil {
				fx.t.Fatal(err)
			}
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.HasSuffix(r.URL.Path, ".snapshot.json") {
					w.Write(old)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, failure.Verification},
		{"endless timestamp", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.HasSuffix(r.URL.Path, "/timestamp.json") {
					chunk := bytes.Repeat([]byte(" "), 32<<10)
					for {
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
				}
				next.ServeHTTP(w, r)
			})
		}, failure.Verification},
		{"trickling timestamp", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.HasSuffix(r.URL.Path, "/timestamp.json") {
					w.Header().Set("Content-Length", "4000")
					for i := 0; i < 4000; i++ {
						if _, err := w.Write([]byte{' '}); err != nil {
							return
						}
						w.(http.Flusher).Flush()
						select {
						case <-r.Context().Done():
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
				}
				next.ServeHTTP(w, r)
			})
		}, failure.TooSlow},
		{"missing category", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "/targets/") {
					http.NotFound(w, r)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, failure.NotFound},
		{"server error", func(fx *fixture) Source {
			return fx.serve(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				http.Error(w, "boom", http.StatusInternalServerError)
			})
		}, failure.HTTPError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			fx.publish("pattern", "1.0", map[string]string{"a.bin": "aaaa"})
			if _, err := fx.update(fx.serve(nil)); err != nil {
				t.Fatal(err)
			}
			fx.publish("pattern", "2.0", map[string]string{"a.bin": "bbbb"})
			before := fx.trustedFiles()
			_, err := fx.update(tt.setup(fx))
			if got := failure.ClassOf(err); got != tt.want {
				t.Fatalf("error %v: class %q, want %q", err, got, tt.want)
			}
			if n := strings.Count(err.Error(), "test:"); n != 1 {
				t.Errorf("error %q names the source %d times, want once", err, n)
			}
			if after := fx.trustedFiles(); !maps.Equal(before, after) {
				t.Fatalf("trusted state changed by a rejected source:\n%v\n%v", before, after)
			}
		})
	}
}

// TestRollbackAcrossSources: a source serving a complete, validly signed
// but older repository is stale once a newer one was trusted from
// another source.
func TestRollbackAcrossSources(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", map[string]string{"a.bin": "aaaa"})
	oldCopy := filepath.Join(t.TempDir(), "old")
	if err := testkit.CopyTree(filepath.Dir(fx.repo.PublishedDir()), oldCopy); err != nil {
		t.Fatal(err)
	}
	fx.publish("pattern", "2.0", map[string]string{"a.bin": "bbbb"})
	if _, err := fx.update(fx.serve(nil)); err != nil {
		t.Fatal(err)
	}
	before := fx.trustedFiles()
	srv := httptest.NewServer(http.FileServer(http.Dir(oldCopy)))
	defer srv.Close()
	_, err := fx.update(Source{Name: "old mirror", Base: srv.URL})
	if !failure.Is(err, failure.Stale) {
		t.Fatalf("old mirror: %v, want stale", err)
	}
	if !maps.Equal(before, fx.trustedFiles()) {
		t.Fatal("trusted state changed")
	}
}

func TestUnreachable(t *testing.T) {
	fx := newFixture(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := fx.store.Probe(context.Background(), Source{Name: "dead", Base: url}, fx.f)
	if !failure.Is(err, failure.Unreachable) {
		t.Fatalf("closed listener: %v", err)
	}
}

// TestCheckTargetPath: what docs/security.md promises (relative, no empty,
// "." or ".." segment, no backslash or control character) is what the
// check refuses.
func TestCheckTargetPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"", false},
		{"/abs", false},
		{"a/../b", false},
		{"a//b", false},
		{"./a", false},
		{"..", false},
		{"a/.", false},
		{"a\\b", false},
		{"a\x00", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\tb", false},
		{"a\x1bb", false},
		{"a\x7fb", false},
		{"a\u0085b", false},
		{"a\u009bb", false},
		{"a\xffb", false},
		{strings.Repeat("a", 1025), false},
		{"a", true},
		{"components/pattern/1.0/a.bin", true},
		{"a..b/c", true},
		{"a b/c d", true},
		{"komponenten/müller/ä.bin", true},
		{strings.Repeat("a", 1024), true},
	} {
		err := CheckTargetPath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTargetPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}
