package install

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
)

// ErrUnknownFile: PathFor was asked about a file that is not in the
// stage's manifest.
var ErrUnknownFile = errors.New("file not in the manifest")

// Stage is a version of a category being prepared for Commit. Its files
// are gathered in the store's content-addressed download cache. A Stage is
// used by one goroutine at a time.
type Stage struct {
	s      *Store
	m      Manifest
	byPath map[string]File
	done   bool // committed or discarded
	// unchanged: m was the installed version at Begin.
	unchanged bool
}

// Begin starts installing m as the new version of cat. It validates the
// manifest (errors wrap ErrInvalidManifest) and puts into the cache every
// file that the current or previous version already holds with the same
// content (verified by hash), so that Missing lists only what must be
// downloaded.
func (s *Store) Begin(ctx context.Context, cat category.Category, m Manifest) (*Stage, error) {
	op := "begin install of " + string(cat)
	if _, err := category.Parse(string(cat)); err != nil {
		return nil, failure.New(failure.Local, op, err)
	}
	nm, err := normalize(cat, m)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, failure.New(failure.Local, op, ErrClosed)
	}
	cur, prev, err := s.lay().installed(cat)
	if err != nil {
		return nil, failure.New(failure.Local, op, err)
	}
	st := &Stage{s: s, m: nm, byPath: make(map[string]File, len(nm.Files))}
	if cur != nil && equalManifests(cur.Manifest, nm) {
		st.unchanged = true
	} else if err := s.reuseInstalled(ctx, cat, nm, cur, prev); err != nil {
		return nil, failure.New(failure.Local, op, err)
	}
	for _, f := range nm.Files {
		st.byPath[f.Path] = f
		s.claims[f.SHA256]++
	}
	return st, nil
}

// reuseInstalled links into the cache each file of m that is missing from
// the cache and present, intact, in the current or previous version.
func (s *Store) reuseInstalled(ctx context.Context, cat category.Category, m Manifest, cur, prev *Version) error {
	l := s.lay()
	have := map[string]string{} // sha256 -> installed path
	for _, v := range []*Version{prev, cur} {
		if v == nil {
			continue
		}
		for _, f := range v.Files {
			have[f.SHA256] = filepath.Join(v.Dir, filepath.FromSlash(f.Path))
		}
	}
	for _, f := range m.Files {
		src, ok := have[f.SHA256]
		if !ok || f.Length == 0 || s.cached(f) {
			continue
		}
		if err := checkContent(ctx, src, f, false); err != nil {
			if errors.Is(err, errMismatch) || errors.Is(err, os.ErrNotExist) {
				s.log.Warn("install: installed file damaged, downloading it again", "category", cat, "path", src, "err", err)
				continue
			}
			return fmt.Errorf("read installed file: %w", err)
		}
		dst := l.cachePath(f.SHA256)
		tmp := dst + ".reuse"
		os.Remove(tmp)
		if err := linkOrCopy(src, tmp); err != nil {
			return fmt.Errorf("reuse installed file: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("reuse installed file: %w", err)
		}
		s.log.Debug("install: reusing installed file", "category", cat, "path", f.Path)
	}
	return nil
}

// cached reports whether the cache holds a complete file of f's length.
func (s *Store) cached(f File) bool {
	fi, err := os.Stat(s.lay().cachePath(f.SHA256))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == f.Length
}

// Manifest returns the stage's normalized manifest.
func (st *Stage) Manifest() Manifest { return st.m }

// Missing lists the files still to be downloaded: one per distinct
// content (files with the same sha256 share one download), in path order.
// Empty files are never missing, and nothing is when the manifest was
// already installed at Begin (Commit then reports ActionUnchanged).
func (st *Stage) Missing() []File {
	if st.unchanged {
		return nil
	}
	var out []File
	seen := map[string]bool{}
	for _, f := range st.m.Files {
		if f.Length == 0 || seen[f.SHA256] {
			continue
		}
		seen[f.SHA256] = true
		if !st.s.cached(f) {
			out = append(out, f)
		}
	}
	return out
}

// PathFor returns where the downloader must write f: a content-addressed
// cache file, shared by every version and category, whose partial download
// (PATH.part) the next run resumes from any source. f must be a file of
// the stage's manifest (ErrUnknownFile otherwise).
func (st *Stage) PathFor(f File) (string, error) {
	g, ok := st.byPath[f.Path]
	if !ok || g.Length != f.Length || g.SHA256 != f.SHA256 {
		return "", failure.New(failure.Local, "locate staged file",
			fmt.Errorf("%w: %q (%d bytes, sha256 %s)", ErrUnknownFile, f.Path, f.Length, f.SHA256))
	}
	return st.s.lay().cachePath(g.SHA256), nil
}

// Discard abandons the stage. Its downloads stay in the cache for a later
// attempt. Discarding a committed stage does nothing.
func (st *Stage) Discard() {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	st.release()
}

// release drops the stage's claims on cached files. The caller holds s.mu.
func (st *Stage) release() {
	if st.done {
		return
	}
	st.done = true
	for _, f := range st.m.Files {
		if st.s.claims[f.SHA256]--; st.s.claims[f.SHA256] <= 0 {
			delete(st.s.claims, f.SHA256)
		}
	}
}

// Digest returns f's sha256 as bytes, the form internal/fetch wants.
func (f File) Digest() ([]byte, error) {
	b, err := hex.DecodeString(f.SHA256)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: sha256 %q of %s is not 64 hex digits", ErrInvalidManifest, f.SHA256, f.Path)
	}
	return b, nil
}
