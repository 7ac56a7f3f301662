package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cascade-update/cascade/internal/category"
)

// The steps of Commit and Rollback, in order, as named at their failpoints.
var (
	buildSteps  = []string{"laid-out", "verified", "manifest-promoted", "promoted"}
	switchSteps = []string{"journaled", "previous-linked", "current-linked", "hook-marked", "unjournaled"}
)

var errCrash = errors.New("simulated crash")

// crashAt returns a failpoint that stops at step, after checking at every
// step it passes that the installed version is exactly one of allowed.
func crashAt(t *testing.T, dir string, step string, seen *[]string, allowed ...tree) func(string) error {
	return func(at string) error {
		*seen = append(*seen, at)
		got := readTree(t, filepath.Join(dir, string(comp), currentLink))
		if !slices.ContainsFunc(allowed, func(w tree) bool { return sameTree(got, w) }) {
			t.Errorf("at step %s the installed files are neither version: %v", at, keys(got))
		}
		if at == step {
			return errCrash
		}
		return nil
	}
}

// TestCrashDuringInstall stops Commit after each of its steps, as a crash
// would, reopens the store and checks that exactly the old or the new
// version is installed, with the right previous version, nothing left
// over, and that the next install completes.
func TestCrashDuringInstall(t *testing.T) {
	v0 := tree{"eng/core": []byte("core 0"), "pat/a": []byte("a 0")}
	v1 := tree{"eng/core": []byte("core 1"), "pat/a": []byte("a 0"), "pat/b": []byte("b 1")}
	v2 := tree{"eng/core": []byte("core 2"), "pat/c": []byte("c 2"), "empty": nil}
	v3 := tree{"eng/core": []byte("core 3")}
	for i, step := range append(slices.Clone(buildSteps), switchSteps...) {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			install(t, s, comp, v0)
			res, _ := install(t, s, comp, v1)
			if err := s.HookDone(comp, res.Current.ID); err != nil {
				t.Fatal(err)
			}
			st, err := s.Begin(context.Background(), comp, manifestOf(comp, v2))
			if err != nil {
				t.Fatal(err)
			}
			download(t, st, v2)
			var seen []string
			s.failpoint = crashAt(t, dir, step, &seen, v1, v2)
			if _, err := s.Commit(context.Background(), st); !errors.Is(err, errFailpoint) {
				t.Fatalf("Commit = %v, want a stop at %s", err, step)
			}
			if len(seen) != i+1 {
				t.Fatalf("failpoints passed: %v, want the first %d", seen, i+1)
			}
			s.Close()

			s = openStore(t, dir)
			defer s.Close()
			wantCur, wantPrev := v1, v0
			if i >= len(buildSteps) {
				wantCur, wantPrev = v2, v1
			}
			checkRecovered(t, s, wantCur, wantPrev)
			if pend, _ := s.PendingHook(comp); (pend != nil) != (i >= len(buildSteps)) {
				t.Fatalf("hook pending = %v after a crash at %s", pend != nil, step)
			}
			install(t, s, comp, v3)
			checkRecovered(t, s, v3, wantCur)
		})
	}
}

// TestCrashDuringRollback stops Rollback after each step of its switch: the
// intent record is written first, so Open always finishes the rollback.
func TestCrashDuringRollback(t *testing.T) {
	v0 := tree{"a": []byte("zero")}
	v1 := tree{"a": []byte("one"), "b": []byte("b")}
	for _, step := range switchSteps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			install(t, s, comp, v0)
			install(t, s, comp, v1)
			var seen []string
			s.failpoint = crashAt(t, dir, step, &seen, v0, v1)
			if _, err := s.Rollback(comp); !errors.Is(err, errFailpoint) {
				t.Fatalf("Rollback = %v, want a stop at %s", err, step)
			}
			if st, err := Inspect(dir); err != nil || !st[0].SwitchPending && step != "unjournaled" {
				t.Fatalf("Inspect after a crash at %s: %+v, %v", step, st, err)
			}
			s.Close()
			s = openStore(t, dir)
			defer s.Close()
			checkRecovered(t, s, v0, v1)
		})
	}
}

// checkRecovered checks the state after Open: current and previous, and
// nothing else in the category's directory.
func checkRecovered(t *testing.T, s *Store, wantCur, wantPrev tree) {
	t.Helper()
	cur := checkCurrent(t, s, comp, wantCur)
	prev, err := s.Previous(comp)
	if err != nil {
		t.Fatalf("Previous: %v", err)
	}
	if !sameTree(readTree(t, prev.Dir), wantPrev) {
		t.Fatalf("previous version %s holds the wrong files", prev.ID)
	}
	cd := filepath.Join(s.Dir(), string(comp))
	want := []string{currentLink, prevLink, versionsDir}
	if pend, _ := s.PendingHook(comp); pend != nil {
		want = append(want, hookMarker)
	}
	if names := dirNames(t, filepath.Join(cd, stagingDir)); len(names) > 0 {
		t.Fatalf("staging holds %v", names)
	}
	got := slices.DeleteFunc(dirNames(t, cd), func(n string) bool { return n == stagingDir })
	if !sameSet(got, want) {
		t.Fatalf("category directory holds %v, want %v", got, want)
	}
	wantVersions := []string{cur.ID, cur.ID + ".json", prev.ID, prev.ID + ".json"}
	if got := dirNames(t, filepath.Join(cd, versionsDir)); !sameSet(got, wantVersions) {
		t.Fatalf("versions/ holds %v, want %v", got, wantVersions)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestRecoverDamagedState covers states the construction never produces
// but a damaged disk or a careless administrator can: Open copes and the
// next install works.
func TestRecoverDamagedState(t *testing.T) {
	v0 := tree{"a": []byte("zero")}
	v1 := tree{"a": []byte("one")}
	tests := []struct {
		name    string
		damage  func(cd string) error
		wantCur tree // nil: nothing installed
	}{
		{"unreadable switch record", func(cd string) error {
			return os.WriteFile(filepath.Join(cd, journalFile), []byte("{garbage"), 0o644)
		}, v1},
		{"switch record to a missing version", func(cd string) error {
			return os.WriteFile(filepath.Join(cd, journalFile), []byte(`{"action":"install","from":"v2","to":"v7"}`), 0o644)
		}, v1},
		{"current version deleted", func(cd string) error {
			return os.RemoveAll(filepath.Join(cd, versionsDir, "v2"))
		}, nil},
		{"previous version manifest deleted", func(cd string) error {
			return os.Remove(filepath.Join(cd, versionsDir, "v1.json"))
		}, v1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			install(t, s, comp, v0)
			install(t, s, comp, v1)
			s.Close()
			cd := filepath.Join(dir, string(comp))
			if err := tt.damage(cd); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir)
			defer s.Close()
			if tt.wantCur == nil {
				if _, err := s.Current(comp); !errors.Is(err, ErrNotInstalled) {
					t.Fatalf("Current = %v, want ErrNotInstalled", err)
				}
			} else {
				checkCurrent(t, s, comp, tt.wantCur)
			}
			if _, err := os.Stat(filepath.Join(cd, journalFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("switch record kept: %v", err)
			}
			v2 := tree{"a": []byte("two")}
			install(t, s, comp, v2)
			checkCurrent(t, s, category.Components, v2)
		})
	}
}
