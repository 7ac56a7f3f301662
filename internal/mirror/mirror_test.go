package mirror

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/testkit"
	"github.com/cascade-update/cascade/internal/testkit/trusttest"
	"github.com/cascade-update/cascade/internal/trust"
)

type fixture struct {
	t      *testing.T
	origin *repo.Repo
	src    trust.Source
	store  *trust.Store
	dir    string
	f      *fetch.Fetcher
}

func newFixture(t *testing.T) *fixture {
	r, err := repo.Init(filepath.Join(t.TempDir(), "o"), repo.InitOptions{Options: repo.Options{Now: time.Now},
		Settings: repo.Settings{Kind: repo.Vendor, Bins: 16}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := static.New(filepath.Dir(r.PublishedDir()), static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	root, _ := r.TrustedRoot()
	st, err := trust.Init(filepath.Join(t.TempDir(), "state"), root, trust.Options{Kind: "vendor", Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, origin: r, src: trust.Source{Name: "origin", Base: srv.URL}, store: st,
		dir: filepath.Join(t.TempDir(), "mirror"), f: fetch.New(fetch.Options{})}
}

func (fx *fixture) publish(name, ver string, files ...string) {
	fx.t.Helper()
	it := repo.Item{Category: "components", Name: name, Version: ver}
	for _, f := range files {
		it.Files = append(it.Files, repo.File{Name: f, Data: []byte(name + ver + f)})
	}
	if _, err := fx.origin.Publish(context.Background(), it); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) copy(src trust.Source) (*Result, error) {
	return Copy(context.Background(), Options{Store: fx.store, Source: src, Fetcher: fx.f, Dir: fx.dir})
}

// files lists a tree's regular files and their contents.
func files(t *testing.T, root string) map[string][]byte {
	out := map[string][]byte{}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out[rel], _ = os.ReadFile(p)
		}
		return nil
	})
	return out
}

// TestMirrorServesIdentically: every file the mirror holds is
// byte-identical to the origin's, and the mirror holds everything a
// client of the current state needs (the origin's tree minus files only
// older states reference).
func TestMirrorServesIdentically(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", "a.ptn", "b.ptn")
	fx.publish("engine", "7.0", "eng.bin")
	res, err := fx.copy(fx.src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != res.Targets || res.Targets != 5 { // 3 files and 2 indexes
		t.Fatalf("result %+v", res)
	}
	origin, mirrored := files(t, fx.origin.PublishedDir()), files(t, filepath.Join(fx.dir, "vendor"))
	for name, data := range mirrored {
		if !bytes.Equal(origin[name], data) {
			t.Errorf("%s differs from the origin", name)
		}
	}
	idx, err := fx.origin.Index("components")
	if err != nil {
		t.Fatal(err)
	}
	for name, it := range idx.Items {
		for _, f := range it.Files {
			found := false
			for m := range mirrored {
				found = found || (strings.HasPrefix(m, filepath.Join("targets", filepath.Dir(f))) && strings.HasSuffix(m, "."+filepath.Base(f)))
			}
			if !found {
				t.Errorf("mirror lacks %s's %s", name, f)
			}
		}
	}
	if _, ok := mirrored[filepath.Join("metadata", "timestamp.json")]; !ok {
		t.Error("mirror lacks timestamp.json")
	}
	// Incremental: a second version fetches only its own files and index.
	fx.publish("pattern", "2.0", "a.ptn")
	res, err = fx.copy(fx.src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 2 || res.UpToDate {
		t.Fatalf("incremental copy %+v, want 2 fetched (file and index)", res)
	}
	if res, err = fx.copy(fx.src); err != nil || !res.UpToDate || res.Fetched != 0 {
		t.Fatalf("third copy %+v %v", res, err)
	}
}

// TestMirrorRejects: a tampered or rolled-back source changes nothing
// that is served.
func TestMirrorRejects(t *testing.T) {
	fx := newFixture(t)
	fx.publish("pattern", "1.0", "a.ptn")
	old := t.TempDir()
	if err := testkit.CopyTree(filepath.Dir(fx.origin.PublishedDir()), old); err != nil {
		t.Fatal(err)
	}
	fx.publish("pattern", "2.0", "a.ptn")
	if _, err := fx.copy(fx.src); err != nil {
		t.Fatal(err)
	}
	before := files(t, fx.dir)
	stale := httptest.NewServer(http.FileServer(http.Dir(old)))
	defer stale.Close()
	if _, err := fx.copy(trust.Source{Name: "stale", Base: stale.URL}); !failure.Is(err, failure.Stale) {
		t.Fatalf("stale source: %v", err)
	}
	fx.publish("pattern", "3.0", "a.ptn")
	tampered := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, ".a.ptn") {
			w.Write([]byte("evil"))
			return
		}
		http.FileServer(http.Dir(filepath.Dir(fx.origin.PublishedDir()))).ServeHTTP(w, r)
	}))
	defer tampered.Close()
	if _, err := fx.copy(trust.Source{Name: "tampered", Base: tampered.URL}); !failure.Is(err, failure.Verification) {
		t.Fatalf("tampered source: %v", err)
	}
	after := files(t, fx.dir)
	if !bytes.Equal(before[filepath.Join("vendor", "metadata", "timestamp.json")], after[filepath.Join("vendor", "metadata", "timestamp.json")]) {
		t.Fatal("timestamp.json changed after rejected copies")
	}
	for name, data := range after {
		if b, ok := before[name]; ok && !bytes.Equal(b, data) {
			t.Errorf("%s changed", name)
		}
	}
}

// TestHostileRoleNameWritesNothing: a validly signed delegation to
// "../../x" (whoever holds a delegating key can sign one) is refused
// before anything is written: no x.json outside the metadata directory,
// no metadata, nothing trusted.
func TestHostileRoleNameWritesNothing(t *testing.T) {
	for _, d := range []trusttest.Delegation{{Roles: []string{"../../x"}}, {Roles: []string{"../../../x"}}, {BinsPrefix: "../../x"}} {
		r := trusttest.New(t, time.Now(), d)
		top := t.TempDir()
		st, err := trust.Init(filepath.Join(top, "state"), r.Root, trust.Options{Kind: "vendor", Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(top, "a", "b", "mirror")
		_, err = Copy(context.Background(), Options{Store: st, Source: trust.Source{Name: "hostile", Base: r.Serve(t, "vendor")},
			Fetcher: fetch.New(fetch.Options{}), Dir: dir})
		if !failure.Is(err, failure.Verification) || !strings.Contains(err.Error(), "invalid role name") {
			t.Errorf("%+v: copy: %v, want a verification failure naming the role", d, err)
		}
		for name := range files(t, top) {
			if strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, "state"+string(filepath.Separator)) {
				t.Errorf("%+v: wrote %s", d, name)
			}
		}
		if ts, _, _ := st.Versions(); ts != 0 {
			t.Errorf("%+v: trusted timestamp %d after a refused copy", d, ts)
		}
	}
}

func TestCheckMetaName(t *testing.T) {
	for _, n := range []string{"timestamp.json", "1.root.json", "12.snapshot.json", "3.targets.json", "4.bins-0f.json"} {
		if err := checkMetaName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range []string{"", "root.json", "1.../../x.json", "1.a/b.json", "x.bins-0f.json", "1.bins-0f", "1.timestamp.json", ".json", "1..json"} {
		if checkMetaName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
}
