package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
)

const comp = category.Components

func TestInstallRollbackSequence(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()
	v1 := tree{"engine/core.bin": []byte("engine 1"), "patterns/a.ptn": []byte("pattern a"), "empty": nil}
	v2 := tree{"engine/core.bin": []byte("engine 2"), "patterns/a.ptn": []byte("pattern a"), "patterns/b.ptn": []byte("pattern b")}
	v3 := tree{"engine/core.bin": []byte("engine 2"), "patterns/b.ptn": []byte("pattern b v3")}

	steps := []struct {
		name         string
		files        tree // nil: roll back
		wantAction   Action
		wantCurrent  tree
		wantPrevious tree
		wantDownload []string
	}{
		{"first install", v1, ActionInstall, v1, nil, []string{"engine/core.bin", "patterns/a.ptn"}},
		{"upgrade reuses unchanged files", v2, ActionInstall, v2, v1, []string{"engine/core.bin", "patterns/b.ptn"}},
		{"same manifest again", v2, ActionUnchanged, v2, v1, nil},
		{"rollback", nil, ActionRollback, v1, v2, nil},
		{"rollback the rollback", nil, ActionRollback, v2, v1, nil},
		{"third version drops the first", v3, ActionInstall, v3, v2, []string{"patterns/b.ptn"}},
		{"back to the first: one file from the previous version", v1, ActionInstall, v1, v3, []string{"engine/core.bin"}},
	}
	for i, step := range steps {
		ok := t.Run(fmt.Sprintf("%d %s", i, step.name), func(t *testing.T) {
			var res Result
			var downloaded []string
			if step.files == nil {
				var err error
				if res, err = s.Rollback(comp); err != nil {
					t.Fatalf("Rollback: %v", err)
				}
			} else {
				res, downloaded = install(t, s, comp, step.files)
			}
			if res.Action != step.wantAction {
				t.Fatalf("action %q, want %q", res.Action, step.wantAction)
			}
			if !slices.Equal(downloaded, step.wantDownload) {
				t.Fatalf("downloaded %v, want %v", downloaded, step.wantDownload)
			}
			checkResult(t, s, res, step.wantCurrent, step.wantPrevious)
			// Only current and previous are kept; the cache holds nothing
			// once every file is installed.
			if n := len(dirNames(t, filepath.Join(dir, string(comp), versionsDir))); n > 4 {
				t.Fatalf("%d entries in versions/, want at most 4", n)
			}
			if names := dirNames(t, filepath.Join(dir, cacheDir)); len(names) != 0 {
				t.Fatalf("cache not emptied: %v", names)
			}
		})
		if !ok {
			break
		}
	}
}

// checkResult checks the installed and previous versions and that res
// describes them.
func checkResult(t *testing.T, s *Store, res Result, wantCur, wantPrev tree) {
	t.Helper()
	cur := checkCurrent(t, s, comp, wantCur)
	if res.Current.ID != cur.ID {
		t.Fatalf("result names %s, current is %s", res.Current.ID, cur.ID)
	}
	prev, err := s.Previous(comp)
	if wantPrev == nil {
		if !errors.Is(err, ErrNoPrevious) || res.Previous != nil {
			t.Fatalf("Previous = %v, %v; want ErrNoPrevious", prev.ID, err)
		}
	} else if err != nil || !sameTree(readTree(t, prev.Dir), wantPrev) || res.Previous.ID != prev.ID {
		t.Fatalf("previous version wrong (%v)", err)
	}
}

func TestRollbackErrors(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	if _, err := s.Rollback(comp); !errors.Is(err, ErrNotInstalled) || !failure.Is(err, failure.Local) {
		t.Fatalf("Rollback of nothing: %v", err)
	}
	if _, err := s.Current(comp); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Current of nothing: %v", err)
	}
	install(t, s, comp, tree{"a": []byte("a")})
	if _, err := s.Rollback(comp); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("Rollback with one version: %v", err)
	}
	if _, err := s.Rollback("nonsense"); err == nil {
		t.Fatal("Rollback of an unknown category succeeded")
	}
}

func TestOpenLocks(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, err := Open(dir, Options{Now: testNow}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(context.Background(), comp, Manifest{Category: comp}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Begin after Close: %v", err)
	}
	s2 := openStore(t, dir)
	s2.Close()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open without a clock succeeded")
	}
}

func TestCommitRejectsBadDownload(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	old := tree{"a": []byte("old a")}
	install(t, s, comp, old)
	files := tree{"a": []byte("new a"), "b": []byte("new b")}
	st, err := s.Begin(ctx, comp, manifestOf(comp, files))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing downloaded yet.
	if _, err := s.Commit(ctx, st); !errors.Is(err, ErrNotStaged) || !failure.Is(err, failure.Local) {
		t.Fatalf("Commit without downloads: %v", err)
	}
	checkCurrent(t, s, comp, old)
	// Right length, wrong content.
	for _, f := range st.Missing() {
		p, _ := st.PathFor(f)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), int(f.Length)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.Missing()) != 0 {
		t.Fatal("files of the right length still missing")
	}
	if _, err := s.Commit(ctx, st); !errors.Is(err, ErrStagedMismatch) {
		t.Fatalf("Commit of bad content: %v", err)
	}
	checkCurrent(t, s, comp, old)
	if len(st.Missing()) != 2 {
		t.Fatalf("bad downloads not dropped from the cache: missing %v", st.Missing())
	}
	if names := dirNames(t, filepath.Join(s.Dir(), string(comp), stagingDir)); len(names) != 0 {
		t.Fatalf("staging left behind: %v", names)
	}
	download(t, st, files)
	if _, err := s.Commit(ctx, st); err != nil {
		t.Fatalf("Commit after downloading again: %v", err)
	}
	checkCurrent(t, s, comp, files)
	if _, err := s.Commit(ctx, st); err == nil {
		t.Fatal("second Commit of one stage succeeded")
	}
}

func TestPathForAndMissing(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	same := []byte("same content")
	files := tree{"x/one": same, "y/two": same, "z/empty": nil, "other": []byte("other")}
	st, err := s.Begin(context.Background(), comp, manifestOf(comp, files))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range st.Missing() {
		paths = append(paths, f.Path)
	}
	if !slices.Equal(paths, []string{"other", "x/one"}) {
		t.Fatalf("Missing = %v, want one entry per distinct non-empty content", paths)
	}
	p1, _ := st.PathFor(File{Path: "x/one", Length: int64(len(same)), SHA256: sum(same)})
	p2, _ := st.PathFor(File{Path: "y/two", Length: int64(len(same)), SHA256: sum(same)})
	if p1 != p2 || filepath.Base(p1) != sum(same) || filepath.Dir(p1) != filepath.Join(s.Dir(), cacheDir) {
		t.Fatalf("PathFor not content-addressed: %s, %s", p1, p2)
	}
	for _, f := range []File{
		{Path: "nope", Length: 1, SHA256: sum(same)},
		{Path: "x/one", Length: 1, SHA256: sum(same)},
		{Path: "x/one", Length: int64(len(same)), SHA256: sum([]byte("other"))},
	} {
		if _, err := st.PathFor(f); !errors.Is(err, ErrUnknownFile) {
			t.Fatalf("PathFor(%+v) = %v, want ErrUnknownFile", f, err)
		}
	}
	download(t, st, files)
	if _, err := s.Commit(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	checkCurrent(t, s, comp, files)
}

func TestResumeFromCacheAcrossOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	big := bytes.Repeat([]byte("0123456789"), 10000)
	files := tree{"big": big, "small": []byte("small")}
	st, err := s.Begin(context.Background(), comp, manifestOf(comp, files))
	if err != nil {
		t.Fatal(err)
	}
	pBig, _ := st.PathFor(manifestOf(comp, tree{"big": big}).Files[0])
	pSmall, _ := st.PathFor(manifestOf(comp, tree{"small": []byte("small")}).Files[0])
	if err := os.WriteFile(pBig+partSuffix, big[:4321], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pSmall, []byte("small"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A crash leaves a staging directory and a stray temporary file.
	junk := filepath.Join(dir, cacheDir, "something.tmp")
	if err := os.WriteFile(junk, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, string(comp), stagingDir, "v9", "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	st.Discard()
	s.Close()

	s = openStore(t, dir)
	defer s.Close()
	if part, err := os.ReadFile(pBig + partSuffix); err != nil || !bytes.Equal(part, big[:4321]) {
		t.Fatalf("partial download not kept: %v", err)
	}
	if _, err := os.Stat(junk); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stray cache file kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, string(comp), stagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("abandoned staging kept: %v", err)
	}
	st, err = s.Begin(context.Background(), comp, manifestOf(comp, files))
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Missing(); len(m) != 1 || m[0].Path != "big" {
		t.Fatalf("Missing after reopen = %v, want only the partial one", m)
	}
	download(t, st, files)
	if _, err := s.Commit(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	checkCurrent(t, s, comp, files)
}

func TestCachePrunedByAge(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	s.Close()
	cache := filepath.Join(dir, cacheDir)
	oldName, newName := sum([]byte("old")), sum([]byte("new"))+partSuffix
	for name, age := range map[string]time.Duration{oldName: 8 * 24 * time.Hour, newName: time.Hour} {
		p := filepath.Join(cache, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := testNow().Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, dir)
	s.Close()
	if got := dirNames(t, cache); !slices.Equal(got, []string{newName}) {
		t.Fatalf("cache after pruning: %v, want only %s", got, newName)
	}
	s, err := Open(dir, Options{Now: func() time.Time { return testNow().Add(1000 * time.Hour) }, CacheMaxAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := dirNames(t, cache); len(got) != 1 {
		t.Fatalf("negative CacheMaxAge pruned the cache: %v", got)
	}
}

func TestDamagedInstalledFileIsDownloadedAgain(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	v1 := tree{"keep": []byte("kept content"), "x": []byte("x1")}
	res, _ := install(t, s, comp, v1)
	p := filepath.Join(res.Current.Dir, "keep")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("KEPT CONTENT"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := tree{"keep": []byte("kept content"), "x": []byte("x2")}
	_, downloaded := install(t, s, comp, v2)
	if !slices.Equal(downloaded, []string{"keep", "x"}) {
		t.Fatalf("downloaded %v, want the damaged file too", downloaded)
	}
	checkCurrent(t, s, comp, v2)
}

func TestStatusAndPendingHook(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()
	install(t, s, comp, tree{"a": []byte("1")}, Item{"eng", "1"})
	res, _ := install(t, s, comp, tree{"a": []byte("2")}, Item{"eng", "2"})
	for _, get := range []func() ([]CategoryStatus, error){s.Status, func() ([]CategoryStatus, error) { return Inspect(dir) }} {
		st, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != len(category.All) || st[0].Category != comp || st[0].Current == nil || st[0].Previous == nil ||
			st[0].Current.Items[0].Version != "2" || st[0].Previous.Items[0].Version != "1" || !st[0].HookPending || st[0].SwitchPending {
			t.Fatalf("status: %+v", st[0])
		}
		if st[1].Current != nil || st[2].Current != nil {
			t.Fatalf("other categories installed: %+v", st)
		}
	}
	pend, err := s.PendingHook(comp)
	if err != nil || pend == nil || pend.Current.ID != res.Current.ID || pend.Action != ActionInstall {
		t.Fatalf("PendingHook = %+v, %v", pend, err)
	}
	if err := s.HookDone(comp, "v999"); err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.PendingHook(comp); pend == nil {
		t.Fatal("HookDone of another version cleared the marker")
	}
	if err := s.HookDone(comp, res.Current.ID); err != nil {
		t.Fatal(err)
	}
	if pend, err := s.PendingHook(comp); pend != nil || err != nil {
		t.Fatalf("PendingHook after HookDone = %+v, %v", pend, err)
	}
	rb, err := s.Rollback(comp)
	if err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.PendingHook(comp); pend == nil || pend.Action != ActionRollback || pend.Current.ID != rb.Current.ID {
		t.Fatalf("PendingHook after rollback = %+v", pend)
	}
}

func TestInstallFilesReadOnly(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	res, _ := install(t, s, comp, tree{"d/e/f": []byte("deep"), "top": []byte("top")})
	for _, p := range []string{"d/e/f", "top"} {
		fi, err := os.Stat(filepath.Join(res.Current.Dir, p))
		if err != nil || fi.Mode().Perm() != 0o444 {
			t.Fatalf("%s: mode %v, %v; want 0444", p, fi.Mode(), err)
		}
	}
	if res.CurrentLink != filepath.Join(s.Dir(), string(comp), currentLink) {
		t.Fatalf("CurrentLink = %s", res.CurrentLink)
	}
}

// TestSharedContentAcrossCategories: two categories staged at once share
// a cached download; committing one (concurrently with the other) must
// not take the file from under the other.
func TestSharedContentAcrossCategories(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	shared := []byte("the same bytes in two categories")
	a := tree{"shared": shared, "a": []byte("only components")}
	b := tree{"copy/of/shared": shared, "b": []byte("only programs")}
	stA, err := s.Begin(ctx, comp, manifestOf(comp, a))
	if err != nil {
		t.Fatal(err)
	}
	stB, err := s.Begin(ctx, category.Programs, manifestOf(category.Programs, b))
	if err != nil {
		t.Fatal(err)
	}
	download(t, stA, a)
	if m := stB.Missing(); len(m) != 1 || m[0].Path != "b" {
		t.Fatalf("programs still miss %v, want only b", m)
	}
	download(t, stB, b)
	errs := make(chan error, 2)
	for _, st := range []*Stage{stA, stB} {
		go func() {
			_, err := s.Commit(ctx, st)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	checkCurrent(t, s, comp, a)
	cur := checkCurrent(t, s, category.Programs, b)
	if _, err := os.Stat(filepath.Join(cur.Dir, "copy", "of", "shared")); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(s.Dir(), cacheDir)); len(names) != 0 {
		t.Fatalf("cache not emptied after both installs: %v", names)
	}
}
