package trust

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/index"
)

// MaxIndexSize caps an index target read into memory, whatever its signed
// length says.
const MaxIndexSize = 32 << 20

// Target returns the signed description (length, hashes, custom metadata)
// of the target at targetPath, loading the delegated role that holds it.
// A target the repository does not hold is failure.NotFound.
func (v *View) Target(ctx context.Context, targetPath string) (*metadata.TargetFiles, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	top := v.tm.Targets[metadata.TARGETS]
	if tf, ok := top.Signed.Targets[targetPath]; ok {
		return tf, nil
	}
	if top.Signed.Delegations == nil {
		return nil, failure.Newf(failure.NotFound, v.src.Name+": "+targetPath, "no such target")
	}
	for _, r := range top.Signed.Delegations.GetRolesForTarget(targetPath) {
		role, err := v.loadRole(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		if tf, ok := role.Signed.Targets[targetPath]; ok {
			return tf, nil
		}
		if r.Terminating {
			break
		}
	}
	return nil, failure.Newf(failure.NotFound, v.src.Name+": "+targetPath, "no such target")
}

// loadRole verifies a delegated role of the top-level targets: the trusted
// copy if it is the version the snapshot names, otherwise the source's.
// Callers hold v.mu.
func (v *View) loadRole(ctx context.Context, name string) (*metadata.Metadata[metadata.TargetsType], error) {
	if role, ok := v.tm.Targets[name]; ok {
		return role, nil
	}
	if err := CheckRoleName(name); err != nil {
		return nil, failure.New(failure.Verification, v.src.Name+": delegation", err)
	}
	meta := v.tm.Snapshot.Signed.Meta[name+".json"]
	if meta == nil {
		return nil, failure.Newf(failure.Verification, v.src.Name+": snapshot", "no meta for role %s", name)
	}
	if b, ok := v.raw.roles[name]; ok {
		if role, err := v.tm.UpdateDelegatedTargets(b, name, metadata.TARGETS); err == nil {
			return role, nil
		}
		delete(v.raw.roles, name)
	}
	file := fmt.Sprintf("%d.%s.json", meta.Version, name)
	v.mu.Unlock()
	b, err := v.get(ctx, file, maxLen(meta.Length))
	v.mu.Lock()
	if err != nil {
		return nil, err
	}
	if role, ok := v.tm.Targets[name]; ok { // loaded meanwhile
		return role, nil
	}
	role, err := v.tm.UpdateDelegatedTargets(b, name, metadata.TARGETS)
	if err != nil {
		return nil, v.verr("verify "+file, err)
	}
	v.raw.roles[name] = b
	return role, nil
}

// ConsistentPath returns where a target lives in a repository's targets
// tree with consistent snapshots: <dir>/<sha256>.<basename>.
func ConsistentPath(targetPath string, tf *metadata.TargetFiles) (string, error) {
	sum, ok := tf.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return "", fmt.Errorf("target %q has no sha256 hash", targetPath)
	}
	if err := CheckTargetPath(targetPath); err != nil {
		return "", err
	}
	dir, base := path.Split(targetPath)
	return dir + hex.EncodeToString(sum) + "." + base, nil
}

// TargetURL returns the URL of a target at the source (ConsistentPath,
// each segment escaped).
func (v *View) TargetURL(targetPath string, tf *metadata.TargetFiles) (string, error) {
	p, err := ConsistentPath(targetPath, tf)
	if err != nil {
		return "", failure.New(failure.Verification, v.src.Name, err)
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimRight(v.src.Base, "/") + "/" + v.store.kind + "/targets/" + strings.Join(segs, "/"), nil
}

// CheckTargetPath refuses target paths that could not name a file inside
// a tree: empty, absolute, longer than 1024 bytes, with empty, "." or
// ".." segments, backslashes, control characters (C0, DEL and C1, NUL
// included) or invalid UTF-8, as internal/install checks the paths it
// installs. Paths come from signed metadata, but are checked anyway
// before they reach a URL or the file system.
func CheckTargetPath(p string) error {
	if p == "" || len(p) > 1024 || strings.HasPrefix(p, "/") || strings.ContainsRune(p, '\\') ||
		!utf8.ValidString(p) || strings.ContainsFunc(p, unicode.IsControl) {
		return fmt.Errorf("invalid target path %q", p)
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return fmt.Errorf("invalid target path %q", p)
		}
	}
	return nil
}

// Fetch downloads a small target into memory and verifies its length and
// hashes.
func (v *View) Fetch(ctx context.Context, targetPath string, tf *metadata.TargetFiles) ([]byte, error) {
	u, err := v.TargetURL(targetPath, tf)
	if err != nil {
		return nil, err
	}
	if tf.Length > MaxIndexSize {
		return nil, failure.Newf(failure.Verification, v.src.Name+": "+targetPath, "target of %d bytes is too large to fetch into memory", tf.Length)
	}
	key := hex.EncodeToString(tf.Hashes["sha256"])
	if b, ok := v.store.cached(key); ok && tf.VerifyLengthHashes(b) == nil {
		return b, nil
	}
	b, err := v.f.Bytes(ctx, u, tf.Length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.src.Name, err)
	}
	if err := tf.VerifyLengthHashes(b); err != nil {
		return nil, v.verr("verify "+targetPath, err)
	}
	v.store.remember(key, b)
	return b, nil
}

// Download streams a target to dst (see fetch.File: resumable from
// dst+".part", length and sha256 verified before the rename).
func (v *View) Download(ctx context.Context, targetPath string, tf *metadata.TargetFiles, dst string, progress func(int64)) error {
	u, err := v.TargetURL(targetPath, tf)
	if err != nil {
		return err
	}
	if err := v.f.File(ctx, u, dst, fetch.Want{Length: tf.Length, SHA256: tf.Hashes["sha256"], Progress: progress}); err != nil {
		return fmt.Errorf("%s: %w", v.src.Name, err)
	}
	return nil
}

// Index returns the verified index of a category. A source that does not
// hold the category is failure.NotFound.
func (v *View) Index(ctx context.Context, category string) (*index.Index, error) {
	p := index.Path(category)
	tf, err := v.Target(ctx, p)
	if err != nil {
		return nil, err
	}
	b, err := v.Fetch(ctx, p, tf)
	if err != nil {
		return nil, err
	}
	idx, err := index.Parse(b)
	if err != nil {
		return nil, failure.New(failure.Verification, v.src.Name+": "+p, err)
	}
	if idx.Category != category {
		return nil, failure.Newf(failure.Verification, v.src.Name+": "+p, "index of category %q", idx.Category)
	}
	return idx, nil
}

// Commit persists the view's verified metadata as the trusted state.
// Delegated roles the new snapshot no longer names at the same version are
// dropped. A view older than what another commit persisted meanwhile is
// refused as failure.Stale.
func (s *Store) Commit(v *View) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.loadLocked()
	if err != nil {
		return err
	}
	if cur.timestamp != nil {
		if ts, err := metadata.Timestamp().FromBytes(cur.timestamp); err == nil && ts.Signed.Version > v.tm.Timestamp.Signed.Version {
			return failure.Newf(failure.Stale, "commit "+v.src.Name, "trusted timestamp %d is newer than %d", ts.Signed.Version, v.tm.Timestamp.Signed.Version)
		}
	}
	st := v.raw
	st.roles = map[string][]byte{}
	for name, b := range v.raw.roles {
		meta := v.tm.Snapshot.Signed.Meta[name+".json"]
		if role, ok := v.tm.Targets[name]; ok && meta != nil && role.Signed.Version == meta.Version {
			st.roles[name] = b
		} else if meta != nil {
			if r, err := metadata.Targets().FromBytes(b); err == nil && r.Signed.Version == meta.Version {
				st.roles[name] = b // unchanged role verified in an earlier run
			}
		}
	}
	if sameState(cur, &st) {
		return nil // nothing new to persist (an up-to-date source)
	}
	return s.write(&st)
}

// sameState reports whether a and b hold the same metadata.
func sameState(a, b *state) bool {
	return bytes.Equal(a.root, b.root) && bytes.Equal(a.timestamp, b.timestamp) && bytes.Equal(a.snapshot, b.snapshot) &&
		bytes.Equal(a.targets, b.targets) && maps.EqualFunc(a.roles, b.roles, bytes.Equal)
}
