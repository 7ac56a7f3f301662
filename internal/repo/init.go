package repo

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// ErrNotEmpty is returned by Init for a directory that already has files.
var ErrNotEmpty = errors.New("directory is not empty")

// allRoles are the roles that get a key at Init.
var allRoles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP, binsRole}

// Init creates a repository in dir, which must be missing or empty: keys
// for every role in dir/keys, then version 1 of root, targets (delegating
// to every hash bin), every bin, an empty index per category, snapshot and
// timestamp. On failure it removes what it created.
func Init(dir string, o InitOptions) (*Repo, error) {
	s := o.Settings.withDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	r, err := newRepo(dir, s, o.Options)
	if err != nil {
		return nil, err
	}
	existed, empty, err := dirIsEmpty(dir)
	if err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if !empty {
		return nil, fmt.Errorf("init repository %s: %w", dir, ErrNotEmpty)
	}
	if err := r.create(); err != nil {
		cleanupInit(dir, existed)
		return nil, fmt.Errorf("init repository %s: %w", dir, err)
	}
	r.log.Info("created repository", "dir", dir, "kind", s.Kind, "bins", s.Bins)
	return r, nil
}

func (r *Repo) create() error {
	for _, d := range []string{r.l.dir, r.l.metadataDir(), r.l.targetsDir()} {
		if err := ensureDir(d); err != nil {
			return err
		}
	}
	if err := os.Mkdir(r.l.keysDir(), 0o700); err != nil {
		return fmt.Errorf("create keys directory: %w", err)
	}
	keys := map[string]*signingKey{}
	for _, role := range allRoles {
		k, err := generateKey()
		if err != nil {
			return err
		}
		if err := saveKey(r.l.keyFile(role), k); err != nil {
			return err
		}
		keys[role] = k
	}
	if err := atomicfile.SyncDir(r.l.keysDir()); err != nil {
		return err
	}
	now := r.now()
	s := signer{keys: keys, expiry: r.settings.Expiry, now: now}
	if err := r.writeRoot(s); err != nil {
		return err
	}
	t := r.initialTree(s)
	st := &privateState{Items: map[string]map[string][]keptVersion{}}
	for _, c := range r.settings.Kind.Categories() {
		if err := t.writeIndex(c, nil); err != nil {
			return err
		}
	}
	if err := t.commit(s, true, nil); err != nil {
		return err
	}
	st.SnapshotVersion = t.snapshot.Signed.Version
	if err := st.save(r.l); err != nil {
		return err
	}
	return saveSettings(r.l.dir, r.settings)
}

// writeRoot signs and writes 1.root.json.
func (r *Repo) writeRoot(s signer) error {
	root := metadata.Root(s.expires(r.settings.Expiry.Root))
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		if err := root.Signed.AddKey(s.keys[role].public, role); err != nil {
			return fmt.Errorf("add %s key to root: %w", role, err)
		}
	}
	data, err := signMeta(root, s.keys[metadata.ROOT])
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if err := atomicfile.WriteFile(r.l.metaPath(1, metadata.ROOT), data, 0o644); err != nil {
		return fmt.Errorf("write root: %w", err)
	}
	return nil
}

// initialTree returns version 0 of every role, all dirty, so that the
// first commit writes version 1 of each.
func (r *Repo) initialTree(s signer) *tree {
	t := newTree(r.l)
	zero := time.Time{}
	t.targets = metadata.Targets(zero)
	t.targets.Signed.Version = 0
	bins := s.keys[binsRole]
	t.targets.Signed.Delegations = &metadata.Delegations{
		Keys: map[string]*metadata.Key{bins.id: bins.public},
		SuccinctRoles: &metadata.SuccinctRoles{
			KeyIDs:     []string{bins.id},
			Threshold:  1,
			BitLength:  r.settings.binBits(),
			NamePrefix: binsRole,
		},
	}
	t.dirty[metadata.TARGETS] = true
	for _, name := range t.succinct().GetRoles() {
		b := metadata.Targets(zero)
		b.Signed.Version = 0
		t.bins[name] = b
		t.dirty[name] = true
	}
	t.snapshot = metadata.Snapshot(zero)
	t.snapshot.Signed.Version = 0
	t.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{}
	t.timestamp = metadata.Timestamp(zero)
	t.timestamp.Signed.Version = 0
	return t
}
