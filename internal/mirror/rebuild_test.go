package mirror

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/static"
	"github.com/cascade-update/cascade/internal/trust"
)

// counter counts the bytes a handler sends, per kind of path.
type counter struct {
	mu      sync.Mutex
	targets map[string]int64 // target file name -> bytes
	meta    int64
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: rw}
		h.ServeHTTP(cw, r)
		c.mu.Lock()
		defer c.mu.Unlock()
		if strings.Contains(r.URL.Path, "/targets/") {
			c.targets[filepath.Base(r.URL.Path)] += cw.n
		} else {
			c.meta += cw.n
		}
	})
}

func (c *counter) reset() {
	c.mu.Lock()
	c.targets, c.meta = map[string]int64{}, 0
	c.mu.Unlock()
}

// serveCounted serves dir like an agent or server does, counting bytes.
func serveCounted(t *testing.T, dir string) (string, *counter) {
	h, err := static.New(dir, static.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	c.reset()
	srv := httptest.NewServer(c.wrap(h))
	t.Cleanup(func() { srv.Close(); h.Close() })
	return srv.URL, c
}

// newMirror returns options for a mirror of fx's origin, with its own
// trusted metadata.
func (fx *fixture) newMirror(src trust.Source, sel bool) Options {
	root, _ := fx.origin.TrustedRoot()
	st, err := trust.Init(filepath.Join(fx.t.TempDir(), "state"), root, trust.Options{Kind: "vendor", Now: time.Now})
	if err != nil {
		fx.t.Fatal(err)
	}
	o := Options{Store: st, Source: src, Fetcher: fx.f, Dir: filepath.Join(fx.t.TempDir(), "mirror"), Prune: true}
	if sel {
		o.Select = Current
	}
	return o
}

// publishEdit publishes version ver of "pattern" whose 1 MiB lpt.bin is
// cur with a few records changed.
func (fx *fixture) publishEdit(ver string, rng *rand.Rand, cur []byte) {
	fx.t.Helper()
	for range 4 {
		off := rng.IntN(len(cur) - 128)
		for j := range 128 {
			cur[off+j] = byte(rng.IntN(256))
		}
	}
	it := repo.Item{Category: "components", Name: "pattern", Version: ver, Files: []repo.File{{Name: "lpt.bin", Data: slices.Clone(cur)}}}
	if _, err := fx.origin.Publish(context.Background(), it); err != nil {
		fx.t.Fatal(err)
	}
}

// newDeltaWorld is a fixture whose origin published version 1 of
// "pattern": a 1 MiB lpt.bin of bytes drawn from the generator seeded
// with seed, edited once by publishEdit. It returns the generator and
// the file, for publishEdit to make the next versions.
func newDeltaWorld(t *testing.T, seed uint64) (*fixture, *rand.Rand, []byte) {
	t.Helper()
	fx := newFixture(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	cur := make([]byte, 1<<20)
	for i := range cur {
		cur[i] = byte(rng.IntN(256))
	}
	fx.publishEdit("1", rng, cur)
	return fx, rng, cur
}

// alterBase flips one bit of version 1's lpt.bin in the mirror at dir.
func alterBase(t *testing.T, dir string) {
	t.Helper()
	bases, _ := filepath.Glob(filepath.Join(dir, "vendor", "targets", "components", "pattern", "1", "*.lpt.bin"))
	if len(bases) != 1 {
		t.Fatalf("base files %v", bases)
	}
	b := readFile(t, bases[0])
	b[1000] ^= 1
	if err := os.WriteFile(bases[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameDelta reports whether the mirror at dir holds the delta of
// "pattern" version ver from version base exactly as the origin does,
// with the files found on each side.
func (fx *fixture) sameDelta(dir, ver, base string) (got, want []string, ok bool) {
	name := "*.lpt.bin.from-" + base + index.DeltaExt
	got, _ = filepath.Glob(filepath.Join(dir, "vendor", "targets", "components", "pattern", ver, name))
	want, _ = filepath.Glob(filepath.Join(fx.origin.PublishedDir(), "targets", "components", "pattern", ver, name))
	return got, want, len(got) == 1 && len(want) == 1 && bytes.Equal(readFile(fx.t, got[0]), readFile(fx.t, want[0]))
}

func mustCopy(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := Copy(context.Background(), o)
	if err != nil {
		t.Fatalf("copy to %s: %v", o.Dir, err)
	}
	return res
}

// TestRebuildFromDeltas: a server mirror (everything) and three agent
// mirrors (the current state) behind it rebuild each new version from the
// delta from the version they hold. The server fetches exactly one delta
// per version from the origin, never the file, and recreates the deltas
// from the older versions it holds (delta.Create, checked against their
// signed hashes), so it still offers every delta: the target bytes
// leaving the origin per version are one delta (plus the index). Each
// agent fetches exactly one delta from the server, so the target bytes
// leaving the server per version are the number of agents times the
// delta's size (plus the index).
func TestRebuildFromDeltas(t *testing.T) {
	fx, rng, cur := newDeltaWorld(t, 7)
	originURL, fromOrigin := serveCounted(t, filepath.Dir(fx.origin.PublishedDir()))
	server := fx.newMirror(trust.Source{Name: "origin", Base: originURL}, false)
	mustCopy(t, server)
	serverURL, served := serveCounted(t, server.Dir)
	var agents []Options
	for range 3 {
		a := fx.newMirror(trust.Source{Name: "server", Base: serverURL}, true)
		mustCopy(t, a)
		agents = append(agents, a)
	}
	for v := 2; v <= 4; v++ {
		ver := fmt.Sprint(v)
		fx.publishEdit(ver, rng, cur)
		fromOrigin.reset()
		sres := mustCopy(t, server)
		if sres.Rebuilt != 1 || sres.Recreated != v-2 || len(sres.DeltaErrors) != 0 || sres.Bytes >= int64(len(cur))/4 {
			t.Fatalf("server, version %s: rebuilt %d, recreated %d deltas (want %d), %d bytes fetched for a %d-byte file, errors %v",
				ver, sres.Rebuilt, sres.Recreated, v-2, sres.Bytes, len(cur), sres.DeltaErrors)
		}
		// The server holds every delta the origin published, as the
		// origin has it.
		for b := 1; b < v; b++ {
			if got, want, ok := fx.sameDelta(server.Dir, ver, fmt.Sprint(b)); !ok {
				t.Errorf("server, version %s: %s is %v, want the origin's %v", ver,
					index.DeltaPath("components", "pattern", ver, "lpt.bin", fmt.Sprint(b)), got, want)
			}
		}
		served.reset()
		for i, a := range agents {
			res := mustCopy(t, a)
			if res.Rebuilt != 1 || len(res.DeltaErrors) != 0 {
				t.Fatalf("agent %d, version %s: rebuilt %d, errors %v", i, ver, res.Rebuilt, res.DeltaErrors)
			}
			if got, want := files(t, filepath.Join(a.Dir, "vendor", "targets", "components", "pattern", ver)),
				files(t, filepath.Join(server.Dir, "vendor", "targets", "components", "pattern", ver)); len(got) != 2 {
				t.Errorf("agent %d holds %d files of version %s, want the file and the delta it used", i, len(got), ver)
			} else {
				for name, b := range got {
					if !bytes.Equal(b, want[name]) {
						t.Errorf("agent %d: %s differs from the server's", i, name)
					}
				}
			}
		}
		tf, err := sres.View.Target(context.Background(), index.DeltaPath("components", "pattern", ver, "lpt.bin", fmt.Sprint(v-1)))
		if err != nil {
			t.Fatal(err)
		}
		var originDeltas, originOther int64
		for name, n := range fromOrigin.targets {
			switch {
			case strings.HasSuffix(name, index.DeltaExt):
				originDeltas += n
			case !strings.HasSuffix(name, "."+index.Name):
				originOther += n
			}
		}
		if originDeltas != tf.Length || originOther != 0 {
			t.Errorf("version %s: the origin sent %d delta bytes (want one delta, %d) and %d bytes of full files",
				ver, originDeltas, tf.Length, originOther)
		}
		var deltaBytes, indexes, other int64
		for name, n := range served.targets {
			switch {
			case strings.HasSuffix(name, index.DeltaExt):
				deltaBytes += n
			case strings.HasSuffix(name, "."+index.Name):
				indexes += n
			default:
				other += n
			}
		}
		if deltaBytes != int64(len(agents))*tf.Length || other != 0 {
			t.Errorf("version %s: the server sent %d delta bytes (want %d agents x %d) and %d bytes of full files",
				ver, deltaBytes, len(agents), tf.Length, other)
		}
		t.Logf("version %s: origin -> server: %d bytes of deltas, %d of metadata and indexes; server -> agents: %d bytes of deltas, %d of metadata and indexes (file: %d bytes)",
			ver, originDeltas, fromOrigin.meta+sumIndexes(fromOrigin), deltaBytes, served.meta+indexes, len(cur))
	}
}

// TestRebuildFallsBack: a base altered on the mirror's disk makes the
// rebuilt file fail its signed hash; the copy downloads the file in full.
func TestRebuildFallsBack(t *testing.T) {
	fx, rng, cur := newDeltaWorld(t, 8)
	m := fx.newMirror(fx.src, true)
	mustCopy(t, m)
	alterBase(t, m.Dir)
	fx.publishEdit("2", rng, cur)
	res := mustCopy(t, m)
	if res.Rebuilt != 0 || len(res.DeltaErrors) != 1 || !strings.Contains(res.DeltaErrors[0], "verification_failed") {
		t.Fatalf("rebuilt %d, delta errors %v", res.Rebuilt, res.DeltaErrors)
	}
	got, _ := filepath.Glob(filepath.Join(m.Dir, "vendor", "targets", "components", "pattern", "2", "*.lpt.bin"))
	if len(got) != 1 {
		t.Fatalf("version 2 files %v", got)
	}
	if data, _ := os.ReadFile(got[0]); !bytes.Equal(data, cur) {
		t.Error("the full download does not hold version 2")
	}
	if res.Bytes < int64(len(cur)) {
		t.Errorf("%d bytes fetched, want the full file after the failed delta", res.Bytes)
	}
}

// TestDeltaCopiedWithLocalFile: an agent that installed the new version
// itself (Options.Local) copies the file locally and still mirrors the
// delta from the version it held, for its clients that hold it too:
// recreated from the base and the file, as the origin has it.
func TestDeltaCopiedWithLocalFile(t *testing.T) {
	fx, rng, cur := newDeltaWorld(t, 9)
	m := fx.newMirror(fx.src, true)
	mustCopy(t, m)
	fx.publishEdit("2", rng, cur)
	local := filepath.Join(t.TempDir(), "installed-lpt.bin")
	if err := os.WriteFile(local, cur, 0o644); err != nil {
		t.Fatal(err)
	}
	m.Local = func(string, int64) string { return local }
	res := mustCopy(t, m)
	dp := index.DeltaPath("components", "pattern", "2", "lpt.bin", "1")
	tf, err := res.View.Target(context.Background(), dp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rebuilt != 0 || len(res.DeltaErrors) != 0 {
		t.Errorf("rebuilt %d, errors %v; want the local file", res.Rebuilt, res.DeltaErrors)
	}
	// Only the index came from the source: the file copied from the
	// local one is not counted as downloaded (it was, and agents
	// reported it as bytes fetched upstream), and the delta is
	// recreated from the base and the file, not downloaded.
	if res.Recreated != 1 || res.Bytes >= tf.Length {
		t.Errorf("%d bytes from the source, %d deltas recreated; want the index only (delta: %d bytes, file: %d)",
			res.Bytes, res.Recreated, tf.Length, len(cur))
	}
	got := files(t, filepath.Join(m.Dir, "vendor", "targets", "components", "pattern", "2"))
	if len(got) != 2 {
		t.Fatalf("version 2 in the mirror: %d files, want the file and the delta", len(got))
	}
	for name, b := range got {
		if strings.HasSuffix(name, index.DeltaExt) {
			want, _ := filepath.Glob(filepath.Join(fx.origin.PublishedDir(), "targets", "components", "pattern", "2", name))
			if len(want) != 1 || !bytes.Equal(b, readFile(t, want[0])) {
				t.Errorf("delta %s: %d bytes, not the origin's (%d bytes)", name, len(b), tf.Length)
			}
		}
		if strings.HasSuffix(name, ".lpt.bin") && !bytes.Equal(b, cur) {
			t.Errorf("%s is not version 2", name)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sumIndexes is the bytes of category indexes c counted.
func sumIndexes(c *counter) int64 {
	var n int64
	for name, k := range c.targets {
		if strings.HasSuffix(name, "."+index.Name) {
			n += k
		}
	}
	return n
}

// TestRecreateMismatchDownloads: a delta the mirror cannot recreate
// byte for byte (here its base was altered on the mirror's disk; a
// publisher whose encoder differs does the same) is not kept: the error
// is in DeltaErrors and the delta is downloaded, as the origin has it.
func TestRecreateMismatchDownloads(t *testing.T) {
	fx, rng, cur := newDeltaWorld(t, 10)
	m := fx.newMirror(fx.src, false)
	mustCopy(t, m)
	fx.publishEdit("2", rng, cur)
	mustCopy(t, m)
	alterBase(t, m.Dir)
	fx.publishEdit("3", rng, cur)
	res := mustCopy(t, m)
	if res.Rebuilt != 1 || res.Recreated != 0 || len(res.DeltaErrors) != 1 || !strings.Contains(res.DeltaErrors[0], "recreate") {
		t.Fatalf("rebuilt %d, recreated %d, errors %q; want the delta from 1 not recreated", res.Rebuilt, res.Recreated, res.DeltaErrors)
	}
	if got, want, ok := fx.sameDelta(m.Dir, "3", "1"); !ok {
		t.Errorf("the delta from 1: %v, want the origin's %v", got, want)
	}
	t.Log(res.DeltaErrors[0])
}

// TestRecreateNewestOnly: a copy that brings two new versions at once
// recreates the deltas of the newest one and downloads those of the
// version in between (no endpoint is sent to it).
func TestRecreateNewestOnly(t *testing.T) {
	fx, rng, cur := newDeltaWorld(t, 11)
	m := fx.newMirror(fx.src, false)
	mustCopy(t, m)
	fx.publishEdit("2", rng, cur)
	mustCopy(t, m)
	fx.publishEdit("3", rng, cur)
	fx.publishEdit("4", rng, cur)
	res := mustCopy(t, m)
	// 3 from 2 and 4 from 3 are fetched to rebuild; 3 from 1 is
	// downloaded; 4 from 2 and 4 from 1 are recreated.
	if res.Rebuilt != 2 || res.Recreated != 2 || len(res.DeltaErrors) != 0 {
		t.Fatalf("rebuilt %d, recreated %d, errors %q; want 2 and 2", res.Rebuilt, res.Recreated, res.DeltaErrors)
	}
}
