package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cascade-update/cascade/internal/category"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/filelock"
)

// Errors that callers test with errors.Is.
var (
	// ErrInUse: another process (or another open Store) holds the store.
	ErrInUse = errors.New("install store in use")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("install store closed")
	// ErrNotInstalled: the category has no installed version.
	ErrNotInstalled = errors.New("category not installed")
	// ErrNoPrevious: the category has no previous version to roll back to.
	ErrNoPrevious = errors.New("no previous version")
)

// DefaultCacheMaxAge is how long an unused download (complete or partial)
// stays in the cache when Options.CacheMaxAge is zero.
const DefaultCacheMaxAge = 7 * 24 * time.Hour

// Names inside DIR and DIR/<cat> (see the package documentation).
const (
	cacheDir    = "cache"
	lockFile    = "lock"
	versionsDir = "versions"
	stagingDir  = "staging"
	currentLink = "current"
	prevLink    = "previous"
	journalFile = "switch.json"
	hookMarker  = "hook-pending"
	partSuffix  = ".part"
)

// Options configure a Store.
type Options struct {
	// Logger receives recovery and install events (default: discard).
	Logger *slog.Logger
	// Now returns the current time. Required: the package never reads the
	// wall clock. It stamps installed versions and ages the cache.
	Now func() time.Time
	// CacheMaxAge: Open removes cached downloads (complete or partial)
	// not modified for this long. Zero means DefaultCacheMaxAge; negative
	// keeps them forever.
	CacheMaxAge time.Duration
}

// Store is the installed content of an endpoint under one directory. It
// holds an exclusive lock on the directory until Close. Its methods are
// safe for concurrent use; installs and rollbacks are serialized.
type Store struct {
	dir    string
	log    *slog.Logger
	now    func() time.Time
	maxAge time.Duration
	lk     *filelock.Lock

	mu     sync.Mutex
	closed bool
	claims map[string]int // sha256 -> open stages that need the cached file

	// failpoint, when set by tests, is called after each step of a commit
	// or switch; an error stops the operation on the spot, as a crash would.
	failpoint func(step string) error
}

// Open opens (creating it if needed) the store in dir, takes its lock,
// and recovers from any interrupted install: it finishes an interrupted
// switch, removes staging directories and unreferenced versions, and
// keeps cached downloads (partial ones included) younger than
// CacheMaxAge so that the next run resumes them, except those of files
// that an installed version holds.
func Open(dir string, opts Options) (*Store, error) {
	const op = "open install store"
	if opts.Now == nil {
		return nil, failure.Newf(failure.Local, op, "Options.Now is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, failure.New(failure.Local, op, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, cacheDir), 0o755); err != nil {
		return nil, failure.New(failure.Local, op, err)
	}
	lk, err := filelock.TryLock(filepath.Join(abs, lockFile))
	if errors.Is(err, filelock.ErrLocked) {
		err = fmt.Errorf("%w: %w", ErrInUse, err)
	}
	if err != nil {
		return nil, failure.New(failure.Local, op, err)
	}
	s := &Store{dir: abs, log: opts.Logger, now: opts.Now, maxAge: opts.CacheMaxAge, lk: lk, claims: map[string]int{}}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.maxAge == 0 {
		s.maxAge = DefaultCacheMaxAge
	}
	if err := s.recover(); err != nil {
		lk.Unlock()
		return nil, failure.New(failure.Local, op, err)
	}
	return s, nil
}

// Close releases the store's lock. Stages of a closed store cannot commit.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.lk.Unlock(); err != nil {
		return failure.New(failure.Local, "close install store", err)
	}
	return nil
}

// Dir returns the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

// Current returns the installed version of cat (ErrNotInstalled if none).
func (s *Store) Current(cat category.Category) (Version, error) {
	cur, _, err := s.lay().installed(cat)
	if err == nil && cur == nil {
		err = ErrNotInstalled
	}
	if err != nil {
		return Version{}, failure.New(failure.Local, "read installed version of "+string(cat), err)
	}
	return *cur, nil
}

// Previous returns the version a rollback of cat would install
// (ErrNoPrevious if none).
func (s *Store) Previous(cat category.Category) (Version, error) {
	_, prev, err := s.lay().installed(cat)
	if err == nil && prev == nil {
		err = ErrNoPrevious
	}
	if err != nil {
		return Version{}, failure.New(failure.Local, "read previous version of "+string(cat), err)
	}
	return *prev, nil
}

// CategoryStatus is what is installed for one category.
type CategoryStatus struct {
	Category category.Category
	// Current is the installed version; nil if none.
	Current *Version
	// Previous is the rollback target; nil if none.
	Previous *Version
	// HookPending: the hook has not been acknowledged (HookDone) for the
	// current version since it was installed or rolled back to.
	HookPending bool
	// SwitchPending: a switch was interrupted; the next Open finishes it.
	SwitchPending bool
}

// Status reports every category (for `cascade endpoint status`).
func (s *Store) Status() ([]CategoryStatus, error) { return s.lay().status() }

// Inspect reports every category of the store in dir without taking its
// lock or recovering anything, so it works while an endpoint daemon holds
// the store. It only reads; an interrupted switch shows as SwitchPending.
func Inspect(dir string) ([]CategoryStatus, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, failure.New(failure.Local, "inspect install store", err)
	}
	return layout{dir: abs}.status()
}

// layout reads the on-disk structure; it needs no lock.
type layout struct{ dir string }

func (s *Store) lay() layout { return layout{dir: s.dir} }

func (l layout) catDir(cat category.Category) string { return filepath.Join(l.dir, string(cat)) }

func (l layout) versionDir(cat category.Category, id string) string {
	return filepath.Join(l.dir, string(cat), versionsDir, id)
}

func (l layout) cachePath(sha string) string { return filepath.Join(l.dir, cacheDir, sha) }

func (l layout) status() ([]CategoryStatus, error) {
	var out []CategoryStatus
	for _, cat := range category.All {
		cur, prev, err := l.installed(cat)
		if err != nil {
			return nil, failure.New(failure.Local, "read status of "+string(cat), err)
		}
		cs := CategoryStatus{Category: cat, Current: cur, Previous: prev}
		if m, ok := l.readMarker(cat); ok && cur != nil && m.ID == cur.ID {
			cs.HookPending = true
		}
		if _, err := os.Lstat(filepath.Join(l.catDir(cat), journalFile)); err == nil {
			cs.SwitchPending = true
		}
		out = append(out, cs)
	}
	return out, nil
}

// installed returns the current and previous versions of cat (nil when
// absent; previous is nil when it equals current).
func (l layout) installed(cat category.Category) (cur, prev *Version, err error) {
	if _, err := category.Parse(string(cat)); err != nil {
		return nil, nil, err
	}
	cd := l.catDir(cat)
	curID, err := readLink(cd, currentLink)
	if err != nil || curID == "" {
		return nil, nil, err
	}
	v, err := l.readRecord(cat, curID)
	if err != nil {
		return nil, nil, err
	}
	cur = &v
	prevID, err := readLink(cd, prevLink)
	if err != nil || prevID == "" || prevID == curID {
		return cur, nil, err
	}
	pv, err := l.readRecord(cat, prevID)
	if err != nil {
		return nil, nil, err
	}
	return cur, &pv, nil
}

// readRecord reads and validates versions/<id>.json.
func (l layout) readRecord(cat category.Category, id string) (Version, error) {
	data, err := os.ReadFile(l.versionDir(cat, id) + ".json")
	if err != nil {
		return Version{}, err
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Version{}, fmt.Errorf("decode manifest of version %s: %w", id, err)
	}
	if r.ID != id {
		return Version{}, fmt.Errorf("manifest of version %s names version %q", id, r.ID)
	}
	if r.Manifest, err = normalize(cat, r.Manifest); err != nil {
		return Version{}, fmt.Errorf("manifest of version %s: %w", id, err)
	}
	fi, err := os.Stat(l.versionDir(cat, id))
	if err != nil {
		return Version{}, err
	}
	if !fi.IsDir() {
		return Version{}, fmt.Errorf("version %s is not a directory", id)
	}
	return Version{Record: r, Dir: l.versionDir(cat, id)}, nil
}

// marker is the content of hook-pending.
type marker struct {
	ID     string `json:"id"`
	Action Action `json:"action"`
}

func (l layout) readMarker(cat category.Category) (marker, bool) {
	data, err := os.ReadFile(filepath.Join(l.catDir(cat), hookMarker))
	var m marker
	if err != nil || json.Unmarshal(data, &m) != nil {
		return marker{}, false
	}
	return m, true
}

// validID reports whether id is a version id: "v" and a decimal number.
func validID(id string) bool {
	_, ok := parseID(id)
	return ok
}

// parseID returns the generation number of a version id.
func parseID(id string) (uint64, bool) {
	num, ok := strings.CutPrefix(id, "v")
	if !ok || num == "" || (len(num) > 1 && num[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil
}

// PendingHook returns the result of the last install or rollback of cat
// whose hook was not acknowledged with HookDone (for example because the
// process died first), or nil if there is none. The update run runs the
// hook again for it.
func (s *Store) PendingHook(cat category.Category) (*Result, error) {
	l := s.lay()
	m, ok := l.readMarker(cat)
	if !ok {
		return nil, nil
	}
	cur, prev, err := l.installed(cat)
	if err != nil {
		return nil, failure.New(failure.Local, "read pending hook of "+string(cat), err)
	}
	if cur == nil || cur.ID != m.ID {
		return nil, nil
	}
	r := s.result(cat, m.Action, *cur, prev)
	return &r, nil
}

// HookDone acknowledges that the hook ran for version id of cat.
func (s *Store) HookDone(cat category.Category, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return failure.New(failure.Local, "acknowledge hook", ErrClosed)
	}
	if m, ok := s.lay().readMarker(cat); ok && m.ID == id {
		if err := removeDurably(filepath.Join(s.lay().catDir(cat), hookMarker)); err != nil {
			return failure.New(failure.Local, "acknowledge hook of "+string(cat), err)
		}
	}
	return nil
}
