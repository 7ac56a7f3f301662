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
//	DIR/gen-N/roles.json     the delegated (hash-bin) roles loaded so far:
//	                         role name -> sha256 of its file in the pool
//	DIR/roles/<sha256>.json  the pool: role files by content, shared by
//	                         generations, so that a commit writes only
//	                         the roles that changed
//
// Generations written before the pool (DIR/gen-N/roles/<role>.json) are
// still read.
package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
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

	mu sync.Mutex
	// cache is the generation cacheGen as last read or written.
	cache    *state
	cacheGen string
	etags    map[string]etag // per source URL: last timestamp.json ETag
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

// loadLocked returns the current generation: from memory when current
// still names the generation this Store last read or wrote (another
// process committing makes a new one), from disk otherwise. The caller
// owns the returned state's map.
func (s *Store) loadLocked() (*state, error) {
	gen, err := os.Readlink(filepath.Join(s.dir, "current"))
	if err != nil {
		return nil, failure.New(failure.Local, "load trusted metadata", err)
	}
	if s.cache == nil || s.cacheGen != gen {
		st, err := s.read(gen)
		if err != nil {
			return nil, failure.New(failure.Local, "load trusted metadata", err)
		}
		s.cache, s.cacheGen = st, gen
	}
	st := *s.cache
	st.roles = maps.Clone(s.cache.roles)
	return &st, nil
}

// read reads generation gen from disk.
func (s *Store) read(gen string) (*state, error) {
	dir := filepath.Join(s.dir, gen)
	st := &state{roles: map[string][]byte{}}
	var err error
	if st.root, err = os.ReadFile(filepath.Join(dir, "root.json")); err != nil {
		return nil, err
	}
	for name, dst := range map[string]*[]byte{"timestamp.json": &st.timestamp, "snapshot.json": &st.snapshot, "targets.json": &st.targets} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		*dst = b
	}
	b, err := os.ReadFile(filepath.Join(dir, rolesManifest))
	if errors.Is(err, fs.ErrNotExist) {
		return st, s.readLegacyRoles(dir, st)
	}
	if err != nil {
		return nil, err
	}
	var manifest map[string]string
	if err := json.Unmarshal(b, &manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", rolesManifest, err)
	}
	for role, sum := range manifest {
		if err := CheckRoleName(role); err != nil {
			return nil, fmt.Errorf("%s: %w", rolesManifest, err)
		}
		if !validSum(sum) {
			return nil, fmt.Errorf("%s: role %q: invalid file name %q", rolesManifest, role, sum)
		}
		if st.roles[role], err = os.ReadFile(filepath.Join(s.dir, rolesPool, sum+".json")); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// readLegacyRoles reads the roles of a generation written before the
// pool: one file per role in the generation's roles directory.
func (s *Store) readLegacyRoles(dir string, st *state) error {
	entries, err := os.ReadDir(filepath.Join(dir, "roles"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if st.roles[name], err = os.ReadFile(filepath.Join(dir, "roles", e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// The pool of delegated roles and each generation's list of them.
const (
	rolesPool     = "roles"
	rolesManifest = "roles.json"
)

// validSum reports whether name is a lowercase hex sha256: the only
// names of the pool.
func validSum(name string) bool {
	if len(name) != 64 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && strings.ToLower(name) == name
}

// write persists st as a new generation and switches current to it.
// Delegated roles go to the content-addressed pool, so a commit after a
// publish writes the few roles that changed, not every hash bin: each
// file written is fsynced before it is named, and the generation is
// complete before current names it.
func (s *Store) write(st *state) error {
	const op = "persist trusted metadata"
	next := 1
	if target, err := os.Readlink(filepath.Join(s.dir, "current")); err == nil {
		n, _ := strconv.Atoi(strings.TrimPrefix(target, "gen-"))
		next = n + 1
	}
	manifest, err := s.writeRoles(st.roles)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	genName := "gen-" + strconv.Itoa(next)
	gen := filepath.Join(s.dir, genName)
	os.RemoveAll(gen)
	if err := os.MkdirAll(gen, 0o700); err != nil {
		return failure.New(failure.Local, op, err)
	}
	list, err := json.Marshal(manifest)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	files := map[string][]byte{"root.json": st.root, "timestamp.json": st.timestamp, "snapshot.json": st.snapshot,
		"targets.json": st.targets, rolesManifest: list}
	var batch atomicfile.Batch
	for name, b := range files {
		if b == nil {
			continue
		}
		if err := batch.WriteFile(filepath.Join(gen, name), b, 0o600); err != nil {
			return failure.New(failure.Local, op, err)
		}
	}
	if err := batch.Sync(); err != nil {
		return failure.New(failure.Local, op, err)
	}
	tmp := filepath.Join(s.dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(genName, tmp); err != nil {
		return failure.New(failure.Local, op, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "current")); err != nil {
		return failure.New(failure.Local, op, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return failure.New(failure.Local, op, err)
	}
	cached := *st
	cached.roles = maps.Clone(st.roles)
	s.cache, s.cacheGen = &cached, genName
	s.removeOldGenerations(genName)
	s.prunePool(manifest)
	return nil
}

// writeRoles makes sure the pool holds every role of roles and returns
// the manifest naming them (role to sha256).
func (s *Store) writeRoles(roles map[string][]byte) (map[string]string, error) {
	for role := range roles {
		if err := CheckRoleName(role); err != nil {
			return nil, err
		}
	}
	pool := filepath.Join(s.dir, rolesPool)
	if err := os.MkdirAll(pool, 0o700); err != nil {
		return nil, err
	}
	manifest := make(map[string]string, len(roles))
	var batch atomicfile.Batch
	for role, b := range roles {
		sum := sha256.Sum256(b)
		name := hex.EncodeToString(sum[:])
		manifest[role] = name
		p := filepath.Join(pool, name+".json")
		if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(b)) {
			continue
		}
		if err := batch.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
	}
	if err := batch.Sync(); err != nil {
		return nil, err
	}
	return manifest, nil
}

// prunePool removes the pool files manifest does not name (roles of
// earlier generations, temporary files of an interrupted write).
func (s *Store) prunePool(manifest map[string]string) {
	keep := make(map[string]bool, len(manifest))
	for _, sum := range manifest {
		keep[sum+".json"] = true
	}
	entries, _ := os.ReadDir(filepath.Join(s.dir, rolesPool))
	for _, e := range entries {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(s.dir, rolesPool, e.Name()))
		}
	}
}

func (s *Store) removeOldGenerations(keep string) {
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gen-") && e.Name() != keep {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
}
