package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
)

// Action says what changed the installed version.
type Action string

// The actions; their values appear in the hook's CASCADE_ACTION.
const (
	ActionInstall   Action = "install"
	ActionRollback  Action = "rollback"
	ActionUnchanged Action = "unchanged" // the manifest was already installed
)

// ErrStagedMismatch: a staged file does not match the manifest at Commit
// (a damaged or foreign file in the cache). Commit removes the cached copy,
// so the file is Missing again and the next attempt downloads it.
var ErrStagedMismatch = errors.New("staged file does not match the manifest")

// ErrNotStaged: Commit found a file of the manifest not in the cache.
var ErrNotStaged = errors.New("file not downloaded")

// errFailpoint marks an operation stopped by a test failpoint: nothing is
// cleaned up, as after a crash.
var errFailpoint = errors.New("stopped at failpoint")

// Result describes an install or rollback.
type Result struct {
	Category category.Category
	Action   Action
	// Current is the installed version after the operation.
	Current Version
	// Previous is the rollback target after the operation; nil if none.
	Previous *Version
	// CurrentLink is DIR/<cat>/current, the stable path that always names
	// the installed version.
	CurrentLink string
}

// Commit installs the stage as the current version of its category: it
// lays out a new version directory from the cache, verifies every file's
// length and sha256, fsyncs files and directories, and switches atomically
// (see the package documentation). The previous version is kept for
// rollback, older ones are removed, and the hook is marked pending (see
// PendingHook). A manifest equal to the installed one changes nothing
// (ActionUnchanged). On failure the installed version is untouched and the
// stage may be committed again after downloading what Missing lists,
// with one exception: if the switch itself fails on a disk error, its
// intent record stays and the next Open finishes the switch (the new
// version is complete and verified by then).
func (s *Store) Commit(ctx context.Context, st *Stage) (Result, error) {
	cat := st.m.Category
	op := "install " + string(cat)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Result{}, failure.New(failure.Local, op, ErrClosed)
	case st.s != s || st.done:
		return Result{}, failure.Newf(failure.Local, op, "stage already committed or discarded, or of another store")
	}
	cur, _, err := s.lay().installed(cat)
	if err != nil {
		return Result{}, failure.New(failure.Local, op, err)
	}
	if cur != nil && equalManifests(cur.Manifest, st.m) {
		st.release()
		return s.resultNow(cat, ActionUnchanged)
	}
	id, err := s.nextID(cat)
	if err != nil {
		return Result{}, failure.New(failure.Local, op, err)
	}
	if err := s.build(ctx, st.m, id); err != nil {
		if !errors.Is(err, errFailpoint) {
			s.abandon(cat, id)
		}
		return Result{}, classify(op, err)
	}
	j := journal{Action: ActionInstall, To: id}
	if cur != nil {
		j.From = cur.ID
	}
	if err := s.switchVersion(cat, j); err != nil {
		return Result{}, classify(op, err)
	}
	st.release()
	s.afterInstall(cat, st.m)
	s.log.Info("install: installed", "category", cat, "version", id, "items", itemList(st.m.Items), "files", len(st.m.Files))
	return s.resultNow(cat, ActionInstall)
}

// classify wraps err for op: mismatches and missing downloads keep their
// sentinels; everything is failure.Local.
func classify(op string, err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return failure.New(failure.Local, op, err)
}

// Rollback makes the previous version of cat current again, and the
// current one previous (so a second rollback undoes the first). The hook
// is marked pending for the restored version.
func (s *Store) Rollback(cat category.Category) (Result, error) {
	op := "roll back " + string(cat)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Result{}, failure.New(failure.Local, op, ErrClosed)
	}
	cur, prev, err := s.lay().installed(cat)
	switch {
	case err != nil:
		return Result{}, failure.New(failure.Local, op, err)
	case cur == nil:
		return Result{}, failure.New(failure.Local, op, ErrNotInstalled)
	case prev == nil:
		return Result{}, failure.New(failure.Local, op, fmt.Errorf("%w: %s has only version %s", ErrNoPrevious, cat, cur.ID))
	}
	if err := s.switchVersion(cat, journal{Action: ActionRollback, From: cur.ID, To: prev.ID}); err != nil {
		return Result{}, classify(op, err)
	}
	s.log.Info("install: rolled back", "category", cat, "from", cur.ID, "to", prev.ID)
	return s.resultNow(cat, ActionRollback)
}

// hit runs the test failpoint for step.
func (s *Store) hit(step string) error {
	if s.failpoint == nil {
		return nil
	}
	if err := s.failpoint(step); err != nil {
		return fmt.Errorf("%w %s: %v", errFailpoint, step, err)
	}
	return nil
}

// nextID returns a version id greater than any in versions/ or staging/.
func (s *Store) nextID(cat category.Category) (string, error) {
	var max uint64
	for _, sub := range []string{versionsDir, stagingDir} {
		entries, err := os.ReadDir(filepath.Join(s.lay().catDir(cat), sub))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		for _, e := range entries {
			if n, ok := parseID(strings.TrimSuffix(e.Name(), ".json")); ok && n > max {
				max = n
			}
		}
	}
	return fmt.Sprintf("v%d", max+1), nil
}

// build lays out version id of m in staging, verifies and fsyncs it, and
// moves it (manifest first, then directory) into versions/.
func (s *Store) build(ctx context.Context, m Manifest, id string) error {
	cd := s.lay().catDir(m.Category)
	sd := filepath.Join(cd, stagingDir, id)
	for _, d := range []string{filepath.Join(cd, stagingDir), filepath.Join(cd, versionsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(sd); err != nil {
		return err
	}
	if err := s.layOut(sd, m); err != nil {
		return err
	}
	if err := s.hit("laid-out"); err != nil {
		return err
	}
	if err := s.verify(ctx, sd, m); err != nil {
		return err
	}
	if err := s.hit("verified"); err != nil {
		return err
	}
	return s.promote(cd, id, m)
}

// layOut creates dir with every file of m: a hard link (or copy) of the
// cached download; empty files are created directly.
func (s *Store) layOut(dir string, m Manifest) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	var missing []string
	for _, f := range m.Files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if f.Length == 0 {
			fh, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
			if err != nil {
				return err
			}
			fh.Close()
			continue
		}
		err := linkOrCopy(s.lay().cachePath(f.SHA256), dst)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, f.Path)
			continue
		}
		if err != nil {
			return fmt.Errorf("lay out %s: %w", f.Path, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %d file(s), first %q", ErrNotStaged, len(missing), missing[0])
	}
	return nil
}

// verify checks and fsyncs every file laid out in dir, makes it read-only,
// and fsyncs every directory. A mismatching file's cached copy is removed.
func (s *Store) verify(ctx context.Context, dir string, m Manifest) error {
	var bad []string
	for _, f := range m.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		err := checkContent(ctx, p, f, true)
		if errors.Is(err, errMismatch) {
			s.log.Warn("install: staged file does not match, removing it from the cache", "path", f.Path, "err", err)
			if rerr := os.Remove(s.lay().cachePath(f.SHA256)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return rerr
			}
			bad = append(bad, f.Path)
			continue
		}
		if err != nil {
			return fmt.Errorf("verify %s: %w", f.Path, err)
		}
		if err := os.Chmod(p, 0o444); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %d file(s), first %q", ErrStagedMismatch, len(bad), bad[0])
	}
	return syncDirTree(dir)
}

// promote writes the manifest of version id and moves it, then the
// version directory, from staging into versions/.
func (s *Store) promote(cd, id string, m Manifest) error {
	rec, err := json.MarshalIndent(Record{ID: id, InstalledAt: s.now().UTC(), Manifest: m}, "", "  ")
	if err != nil {
		return err
	}
	staged := filepath.Join(cd, stagingDir, id)
	if err := atomicfile.WriteFile(staged+".json", rec, 0o644); err != nil {
		return err
	}
	if err := os.Rename(staged+".json", filepath.Join(cd, versionsDir, id+".json")); err != nil {
		return err
	}
	if err := s.hit("manifest-promoted"); err != nil {
		return err
	}
	if err := os.Rename(staged, filepath.Join(cd, versionsDir, id)); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Join(cd, versionsDir)); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Join(cd, stagingDir)); err != nil {
		return err
	}
	return s.hit("promoted")
}

// abandon removes what a failed build of version id left behind.
func (s *Store) abandon(cat category.Category, id string) {
	cd := s.lay().catDir(cat)
	for _, p := range []string{
		filepath.Join(cd, stagingDir, id), filepath.Join(cd, stagingDir, id+".json"),
		filepath.Join(cd, versionsDir, id), filepath.Join(cd, versionsDir, id+".json"),
	} {
		if err := os.RemoveAll(p); err != nil {
			s.log.Warn("install: cleaning up a failed install", "path", p, "err", err)
		}
	}
}

// switchVersion records the intent j durably, then carries it out.
func (s *Store) switchVersion(cat category.Category, j journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(s.lay().catDir(cat), journalFile), data, 0o644); err != nil {
		return fmt.Errorf("record switch: %w", err)
	}
	if err := s.hit("journaled"); err != nil {
		return err
	}
	return s.finishSwitch(cat, j)
}

// finishSwitch carries out j; every step is idempotent, so Open replays
// it after a crash: previous, then current, then the hook marker, then the
// record is removed.
func (s *Store) finishSwitch(cat category.Category, j journal) error {
	cd := s.lay().catDir(cat)
	if j.From != "" {
		if err := setLink(cd, prevLink, j.From); err != nil {
			return fmt.Errorf("switch previous version: %w", err)
		}
	}
	if err := s.hit("previous-linked"); err != nil {
		return err
	}
	if err := setLink(cd, currentLink, j.To); err != nil {
		return fmt.Errorf("switch current version: %w", err)
	}
	if err := s.hit("current-linked"); err != nil {
		return err
	}
	mk, err := json.Marshal(marker{ID: j.To, Action: j.Action})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(cd, hookMarker), mk, 0o644); err != nil {
		return fmt.Errorf("mark hook pending: %w", err)
	}
	if err := s.hit("hook-marked"); err != nil {
		return err
	}
	if err := removeDurably(filepath.Join(cd, journalFile)); err != nil {
		return fmt.Errorf("remove switch record: %w", err)
	}
	return s.hit("unjournaled")
}

// afterInstall removes versions no link names and the cached copies of
// the installed files that no open stage needs. Failures are logged: the
// install is complete, and Open cleans up again.
func (s *Store) afterInstall(cat category.Category, m Manifest) {
	if err := s.removeUnreferenced(cat); err != nil {
		s.log.Warn("install: removing old versions", "category", cat, "err", err)
	}
	for _, f := range m.Files {
		if s.claims[f.SHA256] > 0 {
			continue
		}
		for _, p := range []string{s.lay().cachePath(f.SHA256), s.lay().cachePath(f.SHA256) + partSuffix} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("install: removing a cached download", "path", p, "err", err)
			}
		}
	}
}

// resultNow describes the installed state of cat after action.
func (s *Store) resultNow(cat category.Category, action Action) (Result, error) {
	cur, prev, err := s.lay().installed(cat)
	if err == nil && cur == nil {
		err = ErrNotInstalled
	}
	if err != nil {
		return Result{}, failure.New(failure.Local, "read installed version of "+string(cat), err)
	}
	return s.result(cat, action, *cur, prev), nil
}

func (s *Store) result(cat category.Category, action Action, cur Version, prev *Version) Result {
	return Result{Category: cat, Action: action, Current: cur, Previous: prev,
		CurrentLink: filepath.Join(s.lay().catDir(cat), currentLink)}
}
