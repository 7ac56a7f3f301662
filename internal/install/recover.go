package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/category"
)

// recover brings every category to a consistent state after a crash and
// prunes the download cache (see Open).
func (s *Store) recover() error {
	for _, cat := range category.All {
		if err := s.recoverCategory(cat); err != nil {
			return fmt.Errorf("recover %s: %w", cat, err)
		}
	}
	if err := s.pruneCache(); err != nil {
		return fmt.Errorf("prune download cache: %w", err)
	}
	return nil
}

// recoverCategory finishes or drops an interrupted switch, then removes
// what no link refers to.
func (s *Store) recoverCategory(cat category.Category) error {
	l := s.lay()
	cd := l.catDir(cat)
	if _, err := os.Lstat(cd); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(cd, stagingDir)); err != nil {
		return fmt.Errorf("remove staging: %w", err)
	}
	if err := removeTemps(cd); err != nil {
		return err
	}
	if err := s.replayJournal(cat); err != nil {
		return err
	}
	if err := s.dropDanglingLinks(cat); err != nil {
		return err
	}
	cur, _ := readLink(cd, currentLink)
	if m, ok := l.readMarker(cat); !ok || m.ID != cur {
		if err := os.Remove(filepath.Join(cd, hookMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return s.removeUnreferenced(cat)
}

// removeTemps removes the temporary files an interrupted write left in
// the category directory cd: the new links of a switch (current.tmp,
// previous.tmp), the switch record's and the hook marker's (atomicfile's
// temporary names, or NAME.tmp as earlier releases named them).
func removeTemps(cd string) error {
	entries, err := os.ReadDir(cd)
	if err != nil {
		return err
	}
	legacy := map[string]bool{}
	for _, name := range []string{currentLink, prevLink, journalFile, hookMarker} {
		legacy[name+".tmp"] = true
	}
	for _, e := range entries {
		if !legacy[e.Name()] && !atomicfile.IsTemp(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(cd, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// journal is the intent record of a switch, written (fsynced) before the
// first link changes and removed after the last.
type journal struct {
	Action Action `json:"action"`
	From   string `json:"from,omitempty"` // becomes previous ("" leaves it)
	To     string `json:"to"`             // becomes current
}

// replayJournal finishes an interrupted switch whose target is complete,
// and drops the record otherwise.
func (s *Store) replayJournal(cat category.Category) error {
	l := s.lay()
	name := filepath.Join(l.catDir(cat), journalFile)
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var j journal
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil || !validID(j.To) || (j.From != "" && !validID(j.From)) {
		s.log.Warn("install: dropping unreadable switch record", "category", cat, "err", err)
		return removeDurably(name)
	}
	if _, err := l.readRecord(cat, j.To); err != nil {
		s.log.Warn("install: dropping switch record to an incomplete version", "category", cat, "to", j.To, "err", err)
		return removeDurably(name)
	}
	if j.From != "" {
		if _, err := l.readRecord(cat, j.From); err != nil {
			j.From = ""
		}
	}
	s.log.Info("install: finishing interrupted switch", "category", cat, "action", j.Action, "from", j.From, "to", j.To)
	return s.finishSwitch(cat, j)
}

// dropDanglingLinks removes a current or previous link whose version is
// not complete. The construction never leaves one; this only copes with a
// directory damaged by hand, so that the next install can proceed.
func (s *Store) dropDanglingLinks(cat category.Category) error {
	l := s.lay()
	cd := l.catDir(cat)
	for _, name := range []string{currentLink, prevLink} {
		id, err := readLink(cd, name)
		if id == "" && err == nil {
			continue
		}
		if err == nil {
			_, err = l.readRecord(cat, id)
		}
		if err != nil {
			s.log.Error("install: removing a link to a missing or damaged version", "category", cat, "link", name, "err", err)
			if err := removeDurably(filepath.Join(cd, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeUnreferenced removes every version directory and manifest that
// neither current nor previous names.
func (s *Store) removeUnreferenced(cat category.Category) error {
	cd := s.lay().catDir(cat)
	keep := map[string]bool{}
	for _, name := range []string{currentLink, prevLink} {
		id, err := readLink(cd, name)
		if err != nil {
			return err
		}
		keep[id] = true
	}
	vd := filepath.Join(cd, versionsDir)
	entries, err := os.ReadDir(vd)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if keep[strings.TrimSuffix(e.Name(), ".json")] {
			continue
		}
		s.log.Debug("install: removing unreferenced version", "category", cat, "name", e.Name())
		if err := os.RemoveAll(filepath.Join(vd, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// pruneCache removes cached downloads not modified within maxAge, the
// cached copies (complete or partial) of files that an installed version
// holds, and anything in the cache that is not a download. Commit removes
// the copies of what it installed once the switch is done; a crash right
// after the switch leaves them, and without this they would stay until
// maxAge (Begin links them back from the installed version if a later
// install needs them).
func (s *Store) pruneCache() error {
	cd := filepath.Join(s.dir, cacheDir)
	entries, err := os.ReadDir(cd)
	if err != nil {
		return err
	}
	installed := s.installedContent()
	now := s.now()
	kept, removed := 0, 0
	for _, e := range entries {
		name := e.Name()
		sha := strings.TrimSuffix(name, partSuffix)
		keep := isHexDigest(sha) && e.Type().IsRegular() && !installed[sha]
		if keep && s.maxAge > 0 {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			keep = now.Sub(fi.ModTime()) < s.maxAge
		}
		if keep {
			kept++
			continue
		}
		if err := os.RemoveAll(filepath.Join(cd, name)); err != nil {
			return err
		}
		removed++
	}
	s.log.Debug("install: download cache pruned", "kept", kept, "removed", removed)
	return nil
}

// installedContent returns the sha256 of every non-empty file of the
// current and previous versions of every category. A category whose
// versions cannot be read is logged and left out: its downloads then
// stay in the cache, as they would without this.
func (s *Store) installedContent() map[string]bool {
	out := map[string]bool{}
	for _, cat := range category.All {
		cur, prev, err := s.lay().installed(cat)
		if err != nil {
			s.log.Warn("install: reading installed versions to prune the download cache", "category", cat, "err", err)
			continue
		}
		for _, v := range []*Version{cur, prev} {
			if v == nil {
				continue
			}
			for _, f := range v.Files {
				if f.Length > 0 {
					out[f.SHA256] = true
				}
			}
		}
	}
	return out
}
