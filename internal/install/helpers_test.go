package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
)

// testNow is the fixed clock of the tests.
func testNow() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

// testLogger logs through t.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// openStore opens a store in dir with the test clock.
func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Logger: testLogger(t), Now: testNow})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// tree is the content of a version: path -> bytes.
type tree map[string][]byte

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// manifestOf describes files as a manifest of cat with the given items.
func manifestOf(cat category.Category, files tree, items ...Item) Manifest {
	m := Manifest{Category: cat, Items: items}
	for p, b := range files {
		m.Files = append(m.Files, File{Path: p, Length: int64(len(b)), SHA256: sum(b)})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	return m
}

// contentBySum indexes files by sha256.
func contentBySum(files tree) map[string][]byte {
	out := map[string][]byte{}
	for _, b := range files {
		out[sum(b)] = b
	}
	return out
}

// download writes every missing file of st the way internal/fetch does:
// into PATH.part, then renamed to PATH. It returns the paths written.
func download(t testing.TB, st *Stage, files tree) []string {
	t.Helper()
	bySum := contentBySum(files)
	var got []string
	for _, f := range st.Missing() {
		p, err := st.PathFor(f)
		if err != nil {
			t.Fatalf("PathFor(%s): %v", f.Path, err)
		}
		if err := os.WriteFile(p+".part", bySum[f.SHA256], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".part", p); err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Path)
	}
	return got
}

// install installs files as the new version of cat and returns the result
// and the paths that had to be downloaded.
func install(t testing.TB, s *Store, cat category.Category, files tree, items ...Item) (Result, []string) {
	t.Helper()
	ctx := context.Background()
	st, err := s.Begin(ctx, cat, manifestOf(cat, files, items...))
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	downloaded := download(t, st, files)
	res, err := s.Commit(ctx, st)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return res, downloaded
}

// readTree returns every regular file under dir (following dir itself if
// it is a symlink), failing on anything else.
func readTree(t testing.TB, dir string) tree {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatalf("resolve %s: %v", dir, err)
	}
	out := tree{}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return errors.New(p + " is not a regular file")
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(real, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return out
}

// sameTree reports whether a and b hold the same paths with equal hashes.
func sameTree(a, b tree) bool {
	if len(a) != len(b) {
		return false
	}
	for p, x := range a {
		y, ok := b[p]
		if !ok || sum(x) != sum(y) {
			return false
		}
	}
	return true
}

// checkCurrent fails unless the installed version of cat is exactly want.
func checkCurrent(t testing.TB, s *Store, cat category.Category, want tree) Version {
	t.Helper()
	v, err := s.Current(cat)
	if err != nil {
		t.Fatalf("Current(%s): %v", cat, err)
	}
	if got := readTree(t, filepath.Join(s.Dir(), string(cat), currentLink)); !sameTree(got, want) {
		t.Fatalf("installed %s: got files %v, want %v", cat, keys(got), keys(want))
	}
	if !sameTree(readTree(t, v.Dir), want) {
		t.Fatalf("version dir %s does not hold the expected files", v.Dir)
	}
	if !equalManifests(v.Manifest, mustNormalize(t, manifestOf(cat, want, v.Items...))) {
		t.Fatalf("manifest of %s does not describe its files", v.ID)
	}
	return v
}

func mustNormalize(t testing.TB, m Manifest) Manifest {
	t.Helper()
	nm, err := normalize(m.Category, m)
	if err != nil {
		t.Fatal(err)
	}
	return nm
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// dirNames lists the names in dir (none if it does not exist).
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
