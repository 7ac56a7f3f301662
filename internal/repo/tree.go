package repo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

type (
	rootMeta      = metadata.Metadata[metadata.RootType]
	targetsMeta   = metadata.Metadata[metadata.TargetsType]
	snapshotMeta  = metadata.Metadata[metadata.SnapshotType]
	timestampMeta = metadata.Metadata[metadata.TimestampType]
)

const timestampFile = "timestamp.json"

// tree is the current state of a published repository, as reached from
// timestamp.json, together with the changes of one publish or refresh.
// Bins are loaded on demand.
type tree struct {
	l         layout
	root      *rootMeta // the newest root
	timestamp *timestampMeta
	snapshot  *snapshotMeta
	targets   *targetsMeta
	bins      map[string]*targetsMeta

	// dirty names the targets roles ("targets", bin names) to re-sign.
	dirty map[string]bool
	// written lists the files created so far, removed if the commit fails.
	written []string
	// reused lists the content-addressed target files the changes
	// reference that were already there (perhaps garbage of an older
	// state): they are not removed on failure, but Options.Commit gets
	// them, since a copy kept elsewhere may have dropped them.
	reused []string
	// batch commits the written files; its Sync fsyncs their directories
	// before the timestamp that references them.
	batch atomicfile.Batch
	// garbage lists the files (relative to the published tree) that the
	// committed state no longer references.
	garbage []string
	// syncErr is a failure to fsync the metadata directory after the new
	// timestamp was renamed into place: the commit stands, but callers
	// should report it.
	syncErr error
}

func newTree(l layout) *tree {
	return &tree{l: l, bins: map[string]*targetsMeta{}, dirty: map[string]bool{}}
}

// loadTree reads the current state: the newest root, timestamp.json, the
// snapshot it names and the top-level targets the snapshot names.
func loadTree(l layout) (*tree, error) {
	t := newTree(l)
	var err error
	if t.root, err = loadNewestRoot(l); err != nil {
		return nil, err
	}
	t.timestamp, err = metadata.Timestamp().FromFile(filepath.Join(l.metadataDir(), timestampFile))
	if err != nil {
		return nil, fmt.Errorf("load timestamp: %w", err)
	}
	sv := t.timestamp.Signed.Meta["snapshot.json"]
	if sv == nil {
		return nil, fmt.Errorf("load timestamp: no snapshot.json entry")
	}
	t.snapshot, err = metadata.Snapshot().FromFile(l.metaPath(sv.Version, metadata.SNAPSHOT))
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	tv := t.snapshot.Signed.Meta["targets.json"]
	if tv == nil {
		return nil, fmt.Errorf("load snapshot: no targets.json entry")
	}
	t.targets, err = metadata.Targets().FromFile(l.metaPath(tv.Version, metadata.TARGETS))
	if err != nil {
		return nil, fmt.Errorf("load targets: %w", err)
	}
	if t.succinct() == nil {
		return nil, fmt.Errorf("load targets: no succinct hash-bin delegation")
	}
	return t, nil
}

// loadNewestRoot reads 1.root.json, 2.root.json, ... and returns the last.
func loadNewestRoot(l layout) (*rootMeta, error) {
	var newest *rootMeta
	for v := int64(1); ; v++ {
		r, err := metadata.Root().FromFile(l.metaPath(v, metadata.ROOT))
		if errors.Is(err, os.ErrNotExist) && newest != nil {
			return newest, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load root version %d: %w", v, err)
		}
		newest = r
	}
}

// succinct returns the hash-bin delegation of the top-level targets.
func (t *tree) succinct() *metadata.SuccinctRoles {
	if t.targets.Signed.Delegations == nil {
		return nil
	}
	return t.targets.Signed.Delegations.SuccinctRoles
}

// binFor names the bin responsible for a target path.
func (t *tree) binFor(targetPath string) string {
	return t.succinct().GetRolesForTarget(targetPath)[0].Name
}

// bin returns the metadata of the named bin, loading it if needed.
func (t *tree) bin(name string) (*targetsMeta, error) {
	if b, ok := t.bins[name]; ok {
		return b, nil
	}
	mf := t.snapshot.Signed.Meta[name+".json"]
	if mf == nil {
		return nil, fmt.Errorf("load bin %s: not in snapshot version %d", name, t.snapshot.Signed.Version)
	}
	b, err := metadata.Targets().FromFile(t.l.metaPath(mf.Version, name))
	if err != nil {
		return nil, fmt.Errorf("load bin %s: %w", name, err)
	}
	t.bins[name] = b
	return b, nil
}

// loadAllBins loads every bin.
func (t *tree) loadAllBins() error {
	for _, name := range t.succinct().GetRoles() {
		if _, err := t.bin(name); err != nil {
			return err
		}
	}
	return nil
}

// lookup returns the target file info of a path, or nil.
func (t *tree) lookup(targetPath string) (*metadata.TargetFiles, error) {
	b, err := t.bin(t.binFor(targetPath))
	if err != nil {
		return nil, err
	}
	return b.Signed.Targets[targetPath], nil
}

// setTarget adds or replaces a target in its bin. A replaced target's file
// becomes garbage unless it is the same file.
func (t *tree) setTarget(targetPath string, tf *metadata.TargetFiles) error {
	name := t.binFor(targetPath)
	b, err := t.bin(name)
	if err != nil {
		return err
	}
	if old := b.Signed.Targets[targetPath]; old != nil && !old.Equal(*tf) {
		t.garbage = append(t.garbage, targetRel(targetPath, old.Hashes["sha256"]))
	}
	tf.Path = targetPath
	b.Signed.Targets[targetPath] = tf
	t.dirty[name] = true
	return nil
}

// removeTarget removes a target from its bin; its file becomes garbage.
func (t *tree) removeTarget(targetPath string) error {
	name := t.binFor(targetPath)
	b, err := t.bin(name)
	if err != nil {
		return err
	}
	old := b.Signed.Targets[targetPath]
	if old == nil {
		return nil
	}
	delete(b.Signed.Targets, targetPath)
	t.garbage = append(t.garbage, targetRel(targetPath, old.Hashes["sha256"]))
	t.dirty[name] = true
	return nil
}

// copyTarget copies r into dir as a content-addressed target file and
// records it for rollback unless it was already there.
func (t *tree) copyTarget(r io.Reader, dir, base string) (hashedFile, error) {
	hf, err := copyHashed(&t.batch, r, dir, base)
	if err != nil {
		return hf, err
	}
	if !hf.existed {
		t.written = append(t.written, hf.local)
	} else {
		t.reused = append(t.reused, hf.local)
	}
	return hf, nil
}

// rollback removes every file written since the tree was loaded.
func (t *tree) rollback() error {
	err := removeAll(t.written)
	for _, name := range t.written {
		if strings.HasPrefix(name, t.l.targetsDir()+string(filepath.Separator)) {
			removeEmptyParents(filepath.Dir(name), t.l.targetsDir())
		}
	}
	t.written, t.reused = nil, nil
	return err
}
