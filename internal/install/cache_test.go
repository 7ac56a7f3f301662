package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCacheOfInstalledVersionRemovedOnOpen: a crash right after the
// switch (before Commit removes the cached copies of what it installed)
// leaves the downloads of the now current version in the cache; the next
// Open removes them, complete or partial, keeps other downloads, and a
// later install still reuses the installed files instead of downloading.
func TestCacheOfInstalledVersionRemovedOnOpen(t *testing.T) {
	v0 := tree{"eng/core": []byte("core 0"), "pat/a": []byte("a 0")}
	v1 := tree{"eng/core": []byte("core 1"), "pat/a": []byte("a 0"), "pat/b": []byte("b 1"), "empty": nil}
	dir := t.TempDir()
	cache := filepath.Join(dir, cacheDir)
	s := openStore(t, dir)
	install(t, s, comp, v0)
	st, err := s.Begin(context.Background(), comp, manifestOf(comp, v1))
	if err != nil {
		t.Fatal(err)
	}
	download(t, st, v1)
	// The state a SIGKILL after the switch leaves: v1 current, its
	// downloads still cached.
	var seen []string
	s.failpoint = crashAt(t, dir, "unjournaled", &seen, v0, v1)
	if _, err := s.Commit(context.Background(), st); !errors.Is(err, errFailpoint) {
		t.Fatalf("Commit = %v, want a stop after the switch", err)
	}
	s.Close()
	if got := dirNames(t, cache); len(got) == 0 {
		t.Fatal("the simulated crash left nothing in the cache; the test does not test anything")
	}
	// A partial download of an installed file (an earlier attempt of
	// another source) and an unrelated download of a later version.
	if err := os.WriteFile(filepath.Join(cache, sum([]byte("core 1"))+partSuffix), []byte("co"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := sum([]byte("core 2"))
	if err := os.WriteFile(filepath.Join(cache, other), []byte("core 2"), 0o644); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	checkRecovered(t, s, v1, v0)
	if got := dirNames(t, cache); !slices.Equal(got, []string{other}) {
		t.Fatalf("cache after reopening holds %v, want only the download of another version %s", got, other)
	}
	v2 := tree{"eng/core": []byte("core 2"), "pat/a": []byte("a 0"), "pat/b": []byte("b 1")}
	if _, downloaded := install(t, s, comp, v2); len(downloaded) != 0 {
		t.Fatalf("installing v2 downloaded %v, want the installed and cached files reused", downloaded)
	}
	checkRecovered(t, s, v2, v1)
}

// TestOpenRemovesTemporaryFiles: temporary files of the switch record and
// hook marker that a crash left (atomicfile's names and the NAME.tmp of
// earlier releases) are removed by Open.
func TestOpenRemovesTemporaryFiles(t *testing.T) {
	v0 := tree{"a": []byte("zero")}
	v1 := tree{"a": []byte("one")}
	dir := t.TempDir()
	s := openStore(t, dir)
	install(t, s, comp, v0)
	res, _ := install(t, s, comp, v1)
	if err := s.HookDone(comp, res.Current.ID); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cd := filepath.Join(dir, string(comp))
	for _, name := range []string{".switch.json.tmp-0123456789abcdef", ".hook-pending.tmp-fedcba9876543210", "switch.json.tmp", "current.tmp"} {
		if err := os.WriteFile(filepath.Join(cd, name), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, dir)
	defer s.Close()
	checkRecovered(t, s, v1, v0)
}
