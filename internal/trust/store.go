// Package trust is the endpoint side of cascade's signed repositories: it
// keeps the trusted TUF metadata of one repository (vendor or site) on
// disk, and verifies what any source serves against it.
//
// A source is never trusted: Probe builds, from the persisted trusted
// metadata and what one source serves, a verified View of that source
// (root rotation, timestamp, snapshot, top-level targets, and hash-bin
// roles on demand), without writing anything. Several probes of different
// sources may run at once. Only when the caller has used a View
// successfully does Commit persist its metadata, atomically: rollback and
// freeze protection therefore carry across sources, and nothing a failed
// source served reaches the trusted state.
//
// Every error carries a failure class (package failure): the fetcher's
// classes for transport problems; failure.Stale for metadata older than
// the trusted metadata; failure.Verification for anything that fails TUF
// verification, expired metadata included.
//
// On-disk layout of a store directory:
//
//	DIR/current -> gen-N     symlink, replaced atomically by Commit
//	DIR/gen-N/root.json      newest trusted root
//	DIR/gen-N/timestamp.json, snapshot.json, targets.json
//	DIR/gen-N/roles/<role>.json   delegated (hash-bin) roles loaded so far
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/failure"
)

// Options configure a Store.
type Options struct {
	// Kind is the repository's kind and URL path segment: "vendor" or
	// "site". Required.
	Kind string
	// Now is the clock metadata expiry is checked against. Required.
	Now func() time.Time
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

// Store is the trusted metadata of one repository on disk. It is safe for
// concurrent use.
type Store struct {
	dir  string
	kind string
	now  func() time.Time
	log  *slog.Logger

	mu    sync.Mutex
	etags map[string]etag // per source URL: last timestamp.json ETag
	// small holds recently fetched small targets (indexes) by sha256, so
	// that an up-to-date check does not download the index again. Entries
	// are verified against signed metadata on every use.
	small map[string][]byte
}

// Bounds of the small-target cache.
const (
	smallEntries = 32
	smallMax     = 1 << 20
)

func (s *Store) cached(sha string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.small[sha]
	return b, ok
}

func (s *Store) remember(sha string, b []byte) {
	if len(b) > smallMax {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.small) >= smallEntries {
		for k := range s.small { // evict an arbitrary entry
			delete(s.small, k)
			break
		}
	}
	s.small[sha] = b
}

type etag struct {
	tag     string
	version int64
}

// state is a snapshot of the persisted trusted metadata.
type state struct {
	root, timestamp, snapshot, targets []byte
	roles                              map[string][]byte
}

// Init creates a store in dir trusting root (the repository's initial
// root.json, received at enrollment). dir must not hold a store already.
func Init(dir string, root []byte, o Options) (*Store, error) {
	if _, err := metadata.Root().FromBytes(root); err != nil {
		return nil, fmt.Errorf("init trust store: trusted root: %w", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "current")); err == nil {
		return nil, fmt.Errorf("init trust store: %s already holds a trust store", dir)
	}
	s, err := newStore(dir, o)
	if err != nil {
		return nil, err
	}
	if err := s.write(&state{root: root}); err != nil {
		return nil, fmt.Errorf("init trust store: %w", err)
	}
	return s, nil
}

// Open opens the store in dir, created before by Init.
func Open(dir string, o Options) (*Store, error) {
	s, err := newStore(dir, o)
	if err != nil {
		return nil, err
	}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func newStore(dir string, o Options) (*Store, error) {
	if o.Kind == "" || o.Now == nil {
		return nil, errors.New("trust store options: Kind and Now are required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open trust store: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{dir: dir, kind: o.Kind, now: o.Now, log: log, etags: map[string]etag{}, small: map[string][]byte{}}, nil
}

// Kind returns the repository kind the store trusts.
func (s *Store) Kind() string { return s.kind }

// Versions returns the trusted timestamp and snapshot versions (0 when
// none is trusted yet).
func (s *Store) Versions() (timestamp, snapshot int64, err error) {
	st, err := s.load()
	if err != nil {
		return 0, 0, err
	}
	if st.timestamp != nil {
		ts, err := metadata.Timestamp().FromBytes(st.timestamp)
		if err == nil {
			timestamp = ts.Signed.Version
			snapshot = ts.Signed.Meta["snapshot.json"].Version
		}
	}
	return timestamp, snapshot, nil
}

// load reads the current generation.
func (s *Store) load() (*state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked()
}

func (s *Store) loadLocked() (*state, error) {
	gen := filepath.Join(s.dir, "current")
	st := &state{roles: map[string][]byte{}}
	var err error
	if st.root, err = os.ReadFile(filepath.Join(gen, "root.json")); err != nil {
		return nil, failure.New(failure.Local, "load trusted metadata", err)
	}
	for name, dst := range map[string]*[]byte{"timestamp.json": &st.timestamp, "snapshot.json": &st.snapshot, "targets.json": &st.targets} {
		b, err := os.ReadFile(filepath.Join(gen, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, failure.New(failure.Local, "load trusted metadata", err)
		}
		*dst = b
	}
	entries, err := os.ReadDir(filepath.Join(gen, "roles"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, failure.New(failure.Local, "load trusted metadata", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if st.roles[name], err = os.ReadFile(filepath.Join(gen, "roles", e.Name())); err != nil {
			return nil, failure.New(failure.Local, "load trusted metadata", err)
		}
	}
	return st, nil
}

// write persists st as a new generation and switches current to it.
// Callers hold s.mu (Init is the only caller that does not need to).
func (s *Store) write(st *state) error {
	next := 1
	if target, err := os.Readlink(filepath.Join(s.dir, "current")); err == nil {
		n, _ := strconv.Atoi(strings.TrimPrefix(target, "gen-"))
		next = n + 1
	}
	genName := "gen-" + strconv.Itoa(next)
	gen := filepath.Join(s.dir, genName)
	os.RemoveAll(gen)
	if err := os.MkdirAll(filepath.Join(gen, "roles"), 0o700); err != nil {
		return failure.New(failure.Local, "persist trusted metadata", err)
	}
	files := map[string][]byte{"root.json": st.root, "timestamp.json": st.timestamp, "snapshot.json": st.snapshot, "targets.json": st.targets}
	for role, b := range st.roles {
		files[filepath.Join("roles", role+".json")] = b
	}
	for name, b := range files {
		if b == nil {
			continue
		}
		if err := writeSync(filepath.Join(gen, name), b); err != nil {
			return failure.New(failure.Local, "persist trusted metadata", err)
		}
	}
	for _, d := range []string{filepath.Join(gen, "roles"), gen} {
		if err := syncDir(d); err != nil {
			return failure.New(failure.Local, "persist trusted metadata", err)
		}
	}
	tmp := filepath.Join(s.dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(genName, tmp); err != nil {
		return failure.New(failure.Local, "persist trusted metadata", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "current")); err != nil {
		return failure.New(failure.Local, "persist trusted metadata", err)
	}
	if err := syncDir(s.dir); err != nil {
		return failure.New(failure.Local, "persist trusted metadata", err)
	}
	s.removeOldGenerations(genName)
	return nil
}

func (s *Store) removeOldGenerations(keep string) {
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gen-") && e.Name() != keep {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
}

func writeSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
