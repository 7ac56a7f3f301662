package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// newClock returns a settable clock for tests. It starts near the real
// time so that go-tuf's updater, which checks expiry against the real
// clock, accepts the metadata.
func newClock() *testkit.Clock { return testkit.NewClock(time.Now().UTC().Truncate(time.Second)) }

// smallSettings are vendor settings with few bins, so tests are quick and
// several targets share bins.
func smallSettings() Settings { return Settings{Kind: Vendor, Bins: 8} }

func newTestRepo(t testing.TB, s Settings) (*Repo, *testkit.Clock) {
	t.Helper()
	c := newClock()
	r, err := Init(filepath.Join(t.TempDir(), "repo"), InitOptions{Settings: s, Options: Options{Now: c.Now}})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

// writeInput writes an input file for a publish and returns its path.
func writeInput(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func component(name, ver string, files ...File) Item {
	return Item{Category: "components", Name: name, Version: ver, Files: files}
}

func data(name, content string) File { return File{Name: name, Data: []byte(content)} }

func mustPublish(t testing.TB, r *Repo, items ...Item) *PublishResult {
	t.Helper()
	res, err := r.Publish(context.Background(), items...)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return res
}

// treeDigest maps every file under dir (relative, slash-separated) to the
// sha256 of its content.
func treeDigest(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serve serves DIR/published like any static HTTP server would.
func serve(t testing.TB, r *Repo) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(r.PublishedDir()))))
	t.Cleanup(srv.Close)
	return srv
}

// newUpdater returns a go-tuf updater for the repository served at base,
// caching in cache (a fresh temporary directory if empty).
func newUpdater(t testing.TB, r *Repo, base, cache string) *updater.Updater {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	up, err := makeUpdater(r, base, cache)
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// makeUpdater is newUpdater for goroutines other than the test's.
func makeUpdater(r *Repo, base, cache string) (*updater.Updater, error) {
	root, err := r.TrustedRoot()
	if err != nil {
		return nil, err
	}
	kind := string(r.Kind())
	cfg, err := config.New(base+"/"+kind+"/metadata", root)
	if err != nil {
		return nil, err
	}
	cfg.RemoteTargetsURL = base + "/" + kind + "/targets"
	cfg.LocalMetadataDir = filepath.Join(cache, "metadata")
	cfg.LocalTargetsDir = filepath.Join(cache, "targets")
	return updater.New(cfg)
}
