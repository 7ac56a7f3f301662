package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// layout names the files of a repository directory (see the package doc).
type layout struct {
	dir  string
	kind Kind
}

func (l layout) keysDir() string { return filepath.Join(l.dir, "keys") }
func (l layout) keyFile(role string) string {
	return filepath.Join(l.keysDir(), role+".pem")
}
func (l layout) published() string   { return filepath.Join(l.dir, "published", string(l.kind)) }
func (l layout) metadataDir() string { return filepath.Join(l.published(), "metadata") }
func (l layout) targetsDir() string  { return filepath.Join(l.published(), "targets") }
func (l layout) lockFile() string    { return filepath.Join(l.dir, "lock") }
func (l layout) stateFile() string   { return filepath.Join(l.dir, "state.json") }

// metaName is the consistent-snapshot file name of version v of role.
func metaName(v int64, role string) string {
	return strconv.FormatInt(v, 10) + "." + role + ".json"
}

// metaPath is the path of version v of role under the metadata directory.
func (l layout) metaPath(v int64, role string) string {
	return filepath.Join(l.metadataDir(), metaName(v, role))
}

// targetRel is where go-tuf's updater fetches a target from, relative to
// the published tree: targets/<dir>/<sha256>.<basename>.
func targetRel(targetPath string, sum []byte) string {
	dir, base := path.Split(targetPath)
	return path.Join("targets", dir, hex.EncodeToString(sum)+"."+base)
}

// fromRel turns a slash-separated path relative to the published tree into
// a local path.
func (l layout) fromRel(rel string) string {
	return filepath.Join(l.published(), filepath.FromSlash(rel))
}

// hashedFile is a file copied into the targets tree.
type hashedFile struct {
	local   string // local path of the content-addressed file
	length  int64
	sum     []byte // sha256
	existed bool   // the same content was already there under that name
}

// copyHashed streams r into dir under a temporary name while hashing it,
// and commits it through b (fsynced; the directory fsync left to b) as
// <sha256>.<base>.
func copyHashed(b *atomicfile.Batch, r io.Reader, dir, base string) (hashedFile, error) {
	f, err := b.Create(filepath.Join(dir, base), 0o644)
	if err != nil {
		return hashedFile{}, fmt.Errorf("copy %s: %w", base, err)
	}
	defer f.Abort()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return hashedFile{}, fmt.Errorf("copy %s: %w", base, err)
	}
	sum := h.Sum(nil)
	dst := filepath.Join(dir, hex.EncodeToString(sum)+"."+base)
	if _, err := os.Lstat(dst); err == nil {
		// Content-addressed: the file there has this content already,
		// and may be referenced by the current state, so leave it be.
		return hashedFile{local: dst, length: n, sum: sum, existed: true}, nil
	}
	if err := f.CommitAs(dst); err != nil {
		return hashedFile{}, fmt.Errorf("copy %s: %w", base, err)
	}
	return hashedFile{local: dst, length: n, sum: sum}, nil
}

// removeEmptyParents removes dir and its parents up to (not including)
// stop while they are empty.
func removeEmptyParents(dir, stop string) {
	for dir != stop && len(dir) > len(stop) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// removeAll removes the given files, ignoring those already gone, and
// returns the first other error.
func removeAll(names []string) error {
	var first error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	return first
}
