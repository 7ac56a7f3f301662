package update

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/plan"
	"github.com/cascade-update/cascade/internal/repo"
	"github.com/cascade-update/cascade/internal/report"
)

// edits holds successive versions of a 512 KiB record file, each a few
// records away from the one before.
type edits struct {
	rng *rand.Rand
	cur []byte
}

func newEdits(seed uint64) *edits {
	e := &edits{rng: rand.New(rand.NewPCG(seed, 2)), cur: make([]byte, 512<<10)}
	for i := range e.cur {
		e.cur[i] = byte(e.rng.IntN(256))
	}
	return e
}

func (e *edits) next() []byte {
	for range 4 {
		off := e.rng.IntN(len(e.cur) - 100)
		for j := range 100 {
			e.cur[off+j] = byte(e.rng.IntN(256))
		}
	}
	return slices.Clone(e.cur)
}

// publishEdited publishes version ver of "pattern" with two files: the
// next edit of lpt.bin and a tiny sig.dat (too small for a delta).
func (w *world) publishEdited(ver string, e *edits) map[string]string {
	w.t.Helper()
	lpt := e.next()
	sig := "sig-" + ver
	it := repo.Item{Category: "components", Name: "pattern", Version: ver,
		Files: []repo.File{{Name: "lpt.bin", Data: lpt}, {Name: "sig.dat", Data: []byte(sig)}}}
	if _, err := w.origin.Publish(context.Background(), it); err != nil {
		w.t.Fatal(err)
	}
	return map[string]string{"pattern/lpt.bin": string(lpt), "pattern/sig.dat": sig}
}

func (e *endpoint) update(t *testing.T, origin string, sources ...string) *report.Category {
	t.Helper()
	rep := e.runner.Run(context.Background(), Request{Plan: planFor(t, origin, plan.Manual, sources...)})
	rc := catReport(t, rep, category.Components)
	if rc.Result != report.Updated {
		t.Fatalf("update: %+v", rc)
	}
	return rc
}

// TestDeltaUpdates: an endpoint that holds the previous version updates
// three versions in a row by deltas, downloading a small fraction of the
// files.
func TestDeltaUpdates(t *testing.T) {
	w := newWorld(t)
	ed := newEdits(1)
	w.publishEdited("1", ed)
	origin := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	e := w.endpoint(fetch.Options{})
	if rc := e.update(t, origin); rc.Deltas != 0 || rc.Bytes != rc.FullBytes {
		t.Fatalf("first install: %d deltas, %d of %d bytes", rc.Deltas, rc.Bytes, rc.FullBytes)
	}
	for v := 2; v <= 4; v++ {
		want := w.publishEdited(fmt.Sprint(v), ed)
		rc := e.update(t, origin)
		checkInstalled(t, e, want)
		full := int64(len(want["pattern/lpt.bin"]) + len(want["pattern/sig.dat"]))
		if rc.Deltas != 1 || rc.FullBytes != full || rc.Bytes >= full/10 || len(rc.Attempts) != 0 {
			t.Errorf("version %d: %d deltas, %d bytes downloaded of %d (want %d), attempts %+v",
				v, rc.Deltas, rc.Bytes, rc.FullBytes, full, rc.Attempts)
		}
	}
}

// TestDeltaTooFarBehind: an endpoint 20 versions behind (more than the
// repository's 14) gets the full files, without a failed attempt.
func TestDeltaTooFarBehind(t *testing.T) {
	w := newWorld(t)
	ed := newEdits(2)
	w.publishEdited("1", ed)
	origin := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
	e := w.endpoint(fetch.Options{})
	e.update(t, origin)
	var want map[string]string
	for v := 2; v <= 21; v++ {
		want = w.publishEdited(fmt.Sprint(v), ed)
	}
	rc := e.update(t, origin)
	checkInstalled(t, e, want)
	if rc.Deltas != 0 || rc.Bytes != rc.FullBytes || len(rc.Attempts) != 0 {
		t.Errorf("20 versions behind: %d deltas, %d of %d bytes, attempts %+v", rc.Deltas, rc.Bytes, rc.FullBytes, rc.Attempts)
	}
}

// TestDeltaFailures: a delta that fails is recorded with its class and
// the full file is downloaded from the same source.
func TestDeltaFailures(t *testing.T) {
	deltaFile := func(t *testing.T, dir, from string) string {
		t.Helper()
		m, _ := filepath.Glob(filepath.Join(dir, "vendor", "targets", "components", "pattern", "3", "*.lpt.bin.from-"+from+".cdlt"))
		if len(m) != 1 {
			t.Fatalf("delta from %s: %v", from, m)
		}
		return m[0]
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T, mirror string, e *endpoint)
		class failure.Class
	}{
		{"tampered delta", func(t *testing.T, mirror string, _ *endpoint) {
			p := deltaFile(t, mirror, "2")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, failure.Verification},
		{"delta for another base", func(t *testing.T, mirror string, _ *endpoint) {
			b, _ := os.ReadFile(deltaFile(t, mirror, "1"))
			os.WriteFile(deltaFile(t, mirror, "2"), b, 0o644)
		}, failure.Verification},
		{"truncated delta", func(t *testing.T, mirror string, _ *endpoint) {
			p := deltaFile(t, mirror, "2")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, failure.Verification},
		{"base altered on disk", func(t *testing.T, _ string, e *endpoint) {
			p := filepath.Join(e.components(t).Dir, "pattern", "lpt.bin")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[100] ^= 1
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, failure.Local},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			ed := newEdits(uint64(10 + i))
			w.publishEdited("1", ed)
			w.publishEdited("2", ed)
			origin := w.serveDir(filepath.Dir(w.origin.PublishedDir()))
			e := w.endpoint(fetch.Options{})
			e.update(t, origin)
			want := w.publishEdited("3", ed)
			mirror := w.snapshot()
			tt.spoil(t, mirror, e)
			src := w.serveDir(mirror)
			rc := e.update(t, origin, src)
			checkInstalled(t, e, want)
			if rc.Source != src || rc.Deltas != 0 || len(rc.Attempts) != 1 {
				t.Fatalf("updated from %s with %d deltas, attempts %+v; want the full file from %s after one failed delta",
					rc.Source, rc.Deltas, rc.Attempts, src)
			}
			a := rc.Attempts[0]
			if a.Source != src || a.Class != tt.class || a.Delta == "" {
				t.Errorf("attempt %+v, want a delta attempt of %s with class %s", a, src, tt.class)
			}
			if rc.Bytes <= int64(len(want["pattern/lpt.bin"])) {
				t.Errorf("%d bytes downloaded: want the delta and the full file", rc.Bytes)
			}
			t.Logf("%s: %s", a.Class, a.Error)
		})
	}
}
