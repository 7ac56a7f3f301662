package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cascade-update/cascade/internal/atomicfile"
)

// hashBufSize is the buffer size for hashing and copying files.
const hashBufSize = 1 << 20

// checkContent hashes the file at path and compares its length and sha256
// with f. With sync set it also fsyncs the file. A mismatch wraps
// errMismatch.
func checkContent(ctx context.Context, path string, f File, sync bool) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", errMismatch, path)
	}
	if st.Size() != f.Length {
		return fmt.Errorf("%w: %s has %d bytes, want %d", errMismatch, path, st.Size(), f.Length)
	}
	h := sha256.New()
	buf := make([]byte, hashBufSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := fh.Read(buf)
		h.Write(buf[:n])
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%w: %s has sha256 %s, want %s", errMismatch, path, got, f.SHA256)
	}
	if sync {
		return fh.Sync()
	}
	return nil
}

// errMismatch means a file's content is not what the manifest says.
var errMismatch = errors.New("content does not match the manifest")

// linkOrCopy makes dst a hard link of src, or a copy (fsynced) when the
// file system refuses the link. dst must not exist.
func linkOrCopy(src, dst string) error {
	lerr := os.Link(src, dst)
	if lerr == nil || errors.Is(lerr, os.ErrExist) {
		return lerr
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(out, in, make([]byte, hashBufSize))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("copy %s (hard link refused: %v): %w", src, lerr, err)
	}
	return nil
}

// removeDurably removes name (absent is fine) and fsyncs its directory.
func removeDurably(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(name))
}

// setLink points the symlink dir/name at versions/<id> by renaming a new
// symlink over it, then fsyncs dir.
func setLink(dir, name, id string) error {
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Symlink(versionsDir+"/"+id, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(dir)
}

// readLink returns the version id that dir/name points at, or "" if the
// link does not exist.
func readLink(dir, name string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(target, versionsDir+"/")
	if !ok || !validID(id) {
		return "", fmt.Errorf("symlink %s points at %q, not at a version", filepath.Join(dir, name), target)
	}
	return id, nil
}

// syncDirTree fsyncs dir and every directory below it.
func syncDirTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return atomicfile.SyncDir(path)
		}
		return nil
	})
}
