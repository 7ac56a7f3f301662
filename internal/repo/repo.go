package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/filelock"
)

// Options are what a Repo needs from its caller.
type Options struct {
	// Now returns the current time. Required: the package never reads
	// the clock itself.
	Now func() time.Time
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is called while a publish copies a local file
	// (File.Path) into the repository, with its path, the bytes copied so
	// far and its size (for progress bars).
	Progress func(file string, done, total int64)
	// Keys, if set, returns the PEM of an online role's private key
	// ("targets", "snapshot", "timestamp", "bins") instead of reading
	// DIR/keys/ROLE.pem (the management server keeps them sealed in its
	// database). An error wrapping os.ErrNotExist says it has none.
	Keys func(role string) ([]byte, error)
	// Commit, if set, is called by every publish and refresh once each
	// new file is written and synced and the new timestamp is signed,
	// just before timestamp.json is replaced. An error abandons the
	// commit: the files written are removed and the published tree is as
	// it was. The management server records the new state in its
	// database here, so that no state is served that the database does
	// not hold.
	Commit func(ctx context.Context, c Commit) error
}

// Commit is a new state of the repository, about to be made visible.
type Commit struct {
	// Previous and Timestamp are the timestamp versions before and after
	// (Timestamp = Previous+1).
	Previous, Timestamp int64
	// TimestampJSON is the new timestamp.json, byte for byte.
	TimestampJSON []byte
	// Files are the files the commit adds to the published tree, by
	// slash-separated path relative to it ("metadata/4.snapshot.json",
	// "targets/..."), and the content-addressed targets the commit
	// references that were already there (a target published again with
	// content it had before: the database may have pruned that file).
	Files map[string][]byte
}

// InitOptions are the options of Init.
type InitOptions struct {
	Options
	// Settings of the new repository; zero fields take their defaults,
	// Kind is required.
	Settings Settings
}

// Repo is a repository directory opened for publishing, refreshing and
// inspection. Its methods are safe for concurrent use; writers are also
// serialised across processes by a lock file.
type Repo struct {
	l        layout
	settings Settings
	now      func() time.Time
	log      *slog.Logger
	progress func(file string, done, total int64)
	keySrc   func(role string) ([]byte, error)
	onCommit func(ctx context.Context, c Commit) error

	mu   sync.Mutex             // serialises writers within the process
	keys map[string]*signingKey // online keys, loaded by the first writer

	// beforeTimestamp, when set, runs just before timestamp.json is
	// replaced; tests use it to fail a commit at its last step.
	beforeTimestamp func() error
}

func newRepo(dir string, s Settings, o Options) (*Repo, error) {
	if o.Now == nil {
		return nil, errors.New("repository options: Now is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Repo{l: layout{dir: dir, kind: s.Kind}, settings: s, now: o.Now, log: log, progress: o.Progress,
		keySrc: o.Keys, onCommit: o.Commit}, nil
}

// Open opens the repository in dir. It reads the settings and checks that
// the published metadata can be loaded; keys are read by the first publish
// or refresh, so Status works without them.
func Open(dir string, o Options) (*Repo, error) {
	s, err := loadSettings(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	r, err := newRepo(dir, s, o)
	if err != nil {
		return nil, err
	}
	if _, err := loadTree(r.l); err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	return r, nil
}

// Dir returns the repository directory.
func (r *Repo) Dir() string { return r.l.dir }

// Settings returns the repository's settings, defaults filled in.
func (r *Repo) Settings() Settings { return r.settings }

// Kind returns the repository's kind.
func (r *Repo) Kind() Kind { return r.settings.Kind }

// PublishedDir returns DIR/published/<kind>: the tree that clients fetch
// as <base>/<kind>/ (serve DIR/published at <base>).
func (r *Repo) PublishedDir() string { return r.l.published() }

// TrustedRoot returns 1.root.json, the root metadata that endpoints are
// enrolled with. Later root versions are fetched and verified from it.
func (r *Repo) TrustedRoot() ([]byte, error) {
	b, err := os.ReadFile(r.l.metaPath(1, metadata.ROOT))
	if err != nil {
		return nil, fmt.Errorf("read trusted root: %w", err)
	}
	return b, nil
}

// writeOp is the state of one publish or refresh, under the lock.
type writeOp struct {
	ctx    context.Context
	tree   *tree
	state  *privateState
	signer signer
}

// write takes the locks, loads the current state and keys, and runs fn.
// fn makes its changes to op.tree and op.state and commits the tree; write
// then collects garbage and saves the private state.
func (r *Repo) write(ctx context.Context, now time.Time, fn func(op *writeOp) error) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lk, err := filelock.Wait(ctx, r.l.lockFile())
	if errors.Is(err, filelock.ErrLocked) {
		return fmt.Errorf("another publisher is writing the repository: %w", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if uerr := lk.Unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	t, err := loadTree(r.l)
	if err != nil {
		return err
	}
	if err := r.loadKeys(t); err != nil {
		return err
	}
	st, err := loadState(r.l, t, r.log)
	if err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, tree: t, state: st, signer: signer{keys: r.keys, expiry: r.settings.Expiry, now: now}}
	if err := fn(op); err != nil {
		return err
	}
	r.finish(op, now)
	return nil
}

// finish runs after a successful commit: problems here are logged, not
// returned, because the new state is already published.
func (r *Repo) finish(op *writeOp, now time.Time) {
	t, st := op.tree, op.state
	if t.syncErr != nil {
		r.log.Warn("new state published, but fsync of the metadata directory failed", "err", t.syncErr)
	}
	st.SnapshotVersion = t.snapshot.Signed.Version
	n, err := st.collect(r.l, t, r.settings, now)
	if err != nil {
		r.log.Warn("deleting unreferenced files", "err", err)
	}
	if n > 0 {
		r.log.Info("deleted unreferenced files", "count", n)
	}
	if err := st.save(r.l); err != nil {
		r.log.Warn("saving state (it will be rebuilt from the bins)", "err", err)
	}
}

func (r *Repo) loadKeys(t *tree) error {
	if r.keys != nil {
		return nil
	}
	keys, err := loadOnlineKeys(r.l, &t.root.Signed, t.succinct(), r.keySrc)
	if err != nil {
		return err
	}
	r.keys = keys
	return nil
}

// commit commits op's tree, running the test hook and Options.Commit if
// set.
func (r *Repo) commit(op *writeOp, resignSnapshot bool) error {
	t := op.tree
	return t.commit(op.signer, resignSnapshot, func(ts []byte) error {
		if r.beforeTimestamp != nil {
			if err := r.beforeTimestamp(); err != nil {
				return err
			}
		}
		if r.onCommit == nil {
			return nil
		}
		c := Commit{Timestamp: t.timestamp.Signed.Version, Previous: t.timestamp.Signed.Version - 1,
			TimestampJSON: ts, Files: map[string][]byte{}}
		for _, name := range slices.Concat(t.written, t.reused) {
			rel, err := filepath.Rel(r.l.published(), name)
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			b, err := os.ReadFile(name)
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			c.Files[filepath.ToSlash(rel)] = b
		}
		return r.onCommit(op.ctx, c)
	})
}

// dirIsEmpty reports whether dir is missing or an empty directory.
func dirIsEmpty(dir string) (exists, empty bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, true, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, len(entries) == 0, nil
}

// cleanupInit removes what a failed Init created.
func cleanupInit(dir string, existed bool) {
	if !existed {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
