package repo

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// signer is what a commit needs: keys, expiry periods and the time.
type signer struct {
	keys   map[string]*signingKey
	expiry Periods
	now    time.Time
}

func (s signer) expires(d Duration) time.Time {
	return s.now.Add(time.Duration(d)).UTC().Truncate(time.Second)
}

// signMeta replaces m's signatures with one by k and returns the bytes to
// publish (compact JSON).
func signMeta[T metadata.Roles](m *metadata.Metadata[T], k *signingKey) ([]byte, error) {
	m.ClearSignatures()
	if _, err := m.Sign(k.signer); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	b, err := m.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

// writeMeta writes a new immutable metadata file and records it for
// rollback. The version it replaces becomes garbage.
func (t *tree) writeMeta(role string, oldVersion, newVersion int64, data []byte) error {
	name := t.l.metaPath(newVersion, role)
	if err := t.batch.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(name), err)
	}
	t.written = append(t.written, name)
	if oldVersion > 0 {
		t.garbage = append(t.garbage, "metadata/"+metaName(oldVersion, role))
	}
	return nil
}

// commitTargets re-signs and writes every dirty targets role (top-level
// targets and bins) and records them in the snapshot.
func (t *tree) commitTargets(s signer) error {
	for _, role := range slices.Sorted(maps.Keys(t.dirty)) {
		m, key := t.targets, s.keys[metadata.TARGETS]
		if role != metadata.TARGETS {
			m, key = t.bins[role], s.keys[binsRole]
		}
		old := m.Signed.Version
		m.Signed.Version++
		m.Signed.Expires = s.expires(s.expiry.Targets)
		data, err := signMeta(m, key)
		if err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		if err := t.writeMeta(role, old, m.Signed.Version, data); err != nil {
			return err
		}
		t.snapshot.Signed.Meta[role+".json"] = &metadata.MetaFiles{
			Version: m.Signed.Version,
			Length:  int64(len(data)),
		}
	}
	return nil
}

// commit makes the tree's changes visible: it writes the dirty targets
// roles, a new snapshot when anything changed or resignSnapshot is set,
// fsyncs, signs the new timestamp and replaces timestamp.json last.
// before runs with the new timestamp's bytes just before it replaces the
// old (nil: nothing). On error every file written is removed and the
// published tree is as before.
func (t *tree) commit(s signer, resignSnapshot bool, before func(timestamp []byte) error) error {
	if err := t.commitWrites(s, resignSnapshot); err != nil {
		return t.abort(err)
	}
	data, err := t.signTimestamp(s)
	if err != nil {
		return t.abort(err)
	}
	if before != nil {
		if err := before(data); err != nil {
			return t.abort(err)
		}
	}
	if err := t.writeTimestamp(data); err != nil {
		return t.abort(err)
	}
	t.written, t.reused = nil, nil
	t.dirty = map[string]bool{}
	return nil
}

func (t *tree) abort(err error) error {
	if rerr := t.rollback(); rerr != nil {
		return fmt.Errorf("%w (and removing the files written failed: %v)", err, rerr)
	}
	return err
}

func (t *tree) commitWrites(s signer, resignSnapshot bool) error {
	changed := len(t.dirty) > 0
	if err := t.commitTargets(s); err != nil {
		return err
	}
	if changed || resignSnapshot {
		sn := t.snapshot
		old := sn.Signed.Version
		sn.Signed.Version++
		sn.Signed.Expires = s.expires(s.expiry.Snapshot)
		data, err := signMeta(sn, s.keys[metadata.SNAPSHOT])
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if err := t.writeMeta(metadata.SNAPSHOT, old, sn.Signed.Version, data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		t.timestamp.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{
			Version: sn.Signed.Version,
			Length:  int64(len(data)),
			Hashes:  metadata.Hashes{"sha256": sum[:]},
		}
	}
	return t.syncWritten()
}

// syncWritten fsyncs the directories of every file written, so that they
// are durable before the timestamp that references them.
func (t *tree) syncWritten() error { return t.batch.Sync() }

// signTimestamp signs the next timestamp version and returns its bytes.
func (t *tree) signTimestamp(s signer) ([]byte, error) {
	ts := t.timestamp
	ts.Signed.Version++
	ts.Signed.Expires = s.expires(s.expiry.Timestamp)
	data, err := signMeta(ts, s.keys[metadata.TIMESTAMP])
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	return data, nil
}

// writeTimestamp renames the signed timestamp over timestamp.json. Once
// the rename is done the new state is visible; a failure to fsync the
// directory after that is kept in t.syncErr rather than returned, as the
// commit cannot be undone any more.
func (t *tree) writeTimestamp(data []byte) error {
	var b atomicfile.Batch
	if err := b.WriteFile(filepath.Join(t.l.metadataDir(), timestampFile), data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", timestampFile, err)
	}
	t.syncErr = b.Sync()
	return nil
}

// ensureDir creates a directory of the published tree (0755) and its
// parents.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return nil
}
