// Package atomicfile writes files so that after a crash or power loss a
// reader finds either the old content or the new, never a mix, a
// truncated file or nothing: the content goes to a temporary file in the
// target's directory, which is fsynced, closed and renamed over the
// target, and then the directory is fsynced so that the rename itself is
// durable.
//
// WriteFile does this for content in memory (WriteNew, for a file that
// must not exist yet); Create returns a File for
// content streamed while it is produced (a download hashed as it
// arrives), committed with Commit or CommitAs (when the name depends on
// the content) or dropped with Abort. A Batch leaves the directory fsyncs
// of many writes to one Sync per directory, for writers whose files only
// become visible together at a later commit point. Rename is the final
// rename alone, for a file written and fsynced under a name of the
// caller's (a resumable download). SyncDir is the directory fsync on its
// own, for callers that rename directories or symbolic links themselves.
//
// Temporary files are named ".<target>.tmp-<16 hex digits>" (IsTemp tells
// them apart); a crash can leave one behind, and code that owns a
// directory may remove them. On Windows the rename replaces the target
// with MoveFileEx and MOVEFILE_WRITE_THROUGH, and directories are not
// fsynced (they cannot be opened for it); where a file system refuses to
// fsync a directory, SyncDir does nothing.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// tmpInfix separates the target's name from the random part of a
// temporary file's name.
const tmpInfix = ".tmp-"

// maxBaseInTemp caps how much of the target's name a temporary name
// repeats, so that it stays within file name limits.
const maxBaseInTemp = 120

// hooks are replaced by tests to observe or fail the fsyncs.
var (
	// syncDirHook fsyncs a directory (platform code by default).
	syncDirHook = syncDir
	// syncFileHook fsyncs a file before it is renamed.
	syncFileHook = (*os.File).Sync
)

// WriteFile replaces name with data durably: a reader sees the old file
// (or none, if there was none) or the new one, whatever happens. The file
// gets exactly the permission bits perm (the umask does not apply).
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	return writeFile(name, data, perm, nil)
}

func writeFile(name string, data []byte, perm fs.FileMode, b *Batch) error {
	f, err := create(name, perm, b)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// File is new content for a file, written to a temporary file until
// Commit renames it into place. A File is used by one goroutine; Abort
// after Commit does nothing, so `defer f.Abort()` is the usual pattern.
type File struct {
	f      *os.File
	name   string // target
	tmp    string
	batch  *Batch
	closed bool
	done   bool // committed or aborted
}

// WriteNew writes data to name durably, as WriteFile does, but only if
// nothing is at name (not even a symbolic link): it never replaces a
// file, and an error wrapping fs.ErrExist says something is there. The
// content appears at name complete or not at all, so a crash cannot
// leave a half-written file that a retry would then refuse: the fsynced
// temporary file is hard-linked to name, which fails if name exists. For
// secrets and keys, which must not be written into a file others might
// already be able to read.
func WriteNew(name string, data []byte, perm fs.FileMode) error {
	f, err := create(name, perm, nil)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	err = syncFileHook(f.f)
	f.closed = true
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.tmp, name)
	}
	f.done = true
	os.Remove(f.tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return SyncDir(filepath.Dir(name))
}

// Create starts new content for name, in a temporary file in name's
// directory (which must exist) with the permission bits perm. Nothing is
// visible at name until Commit.
func Create(name string, perm fs.FileMode) (*File, error) {
	return create(name, perm, nil)
}

func create(name string, perm fs.FileMode, b *Batch) (*File, error) {
	dir, base := filepath.Split(name)
	if base == "" {
		return nil, fmt.Errorf("write %s: no file name", name)
	}
	if len(base) > maxBaseInTemp {
		base = base[:maxBaseInTemp]
	}
	var rnd [8]byte
	for range 100 {
		rand.Read(rnd[:])
		tmp := filepath.Join(dir, "."+base+tmpInfix+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write %s: create temporary file: %w", name, err)
		}
		if perm.Perm() != 0o600 {
			if err := f.Chmod(perm.Perm()); err != nil {
				f.Close()
				os.Remove(tmp)
				return nil, fmt.Errorf("write %s: set permissions: %w", name, err)
			}
		}
		return &File{f: f, name: name, tmp: tmp, batch: b}, nil
	}
	return nil, fmt.Errorf("write %s: no unused temporary file name", name)
}

// Name returns the file's target.
func (f *File) Name() string { return f.name }

// Write appends p to the new content.
func (f *File) Write(p []byte) (int, error) {
	if f.done || f.closed {
		return 0, fmt.Errorf("write %s: %w", f.name, fs.ErrClosed)
	}
	n, err := f.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", f.name, err)
	}
	return n, nil
}

// Commit makes the content written the file at Name: it fsyncs and closes
// the temporary file, renames it over the target and fsyncs the directory
// (unless the File belongs to a Batch). On an error before the rename the
// temporary file is removed and the target is untouched; an error from
// the directory fsync comes after the rename, so the new content is in
// place but may not survive a power loss.
func (f *File) Commit() error { return f.CommitAs(f.name) }

// CommitAs is Commit to another name in the same directory, for content
// whose name is known only once it is written (a content-addressed file
// named by its hash).
func (f *File) CommitAs(name string) error {
	if f.done {
		return fmt.Errorf("write %s: %w", name, fs.ErrClosed)
	}
	if filepath.Clean(filepath.Dir(name)) != filepath.Clean(filepath.Dir(f.name)) {
		f.Abort()
		return fmt.Errorf("write %s: not in the directory of %s", name, f.name)
	}
	err := syncFileHook(f.f)
	f.closed = true
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(f.tmp, name)
	}
	if err != nil {
		f.done = true
		os.Remove(f.tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	f.done = true
	dir := filepath.Dir(name)
	if f.batch != nil {
		f.batch.add(dir)
		return nil
	}
	return SyncDir(dir)
}

// Abort drops the new content: the temporary file is closed and removed,
// and the target is untouched. It does nothing after Commit or a second
// time.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	if !f.closed {
		f.closed = true
		f.f.Close()
	}
	os.Remove(f.tmp)
}

// Rename moves the complete file oldpath over newpath (replacing it
// atomically) and fsyncs newpath's directory: the last step of a write
// whose temporary file needs a stable name of its own, such as a
// resumable download. The caller has fsynced the file's content.
func Rename(oldpath, newpath string) error {
	if err := rename(oldpath, newpath); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(newpath))
}

// SyncDir fsyncs the directory dir, making the creation, renaming and
// removal of its entries durable. It does nothing where directories
// cannot be fsynced (Windows, file systems that refuse it).
func SyncDir(dir string) error {
	if err := syncDirHook(dir); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether the file name base is a temporary file of this
// package (one a crash may have left behind).
func IsTemp(base string) bool {
	i := strings.LastIndex(base, tmpInfix)
	if i < 1 || base[0] != '.' {
		return false
	}
	rnd := base[i+len(tmpInfix):]
	if len(rnd) != 16 {
		return false
	}
	_, err := hex.DecodeString(rnd)
	return err == nil && strings.ToLower(rnd) == rnd
}

// Batch commits files like WriteFile and File.Commit but defers the
// fsync of their directories to Sync, which fsyncs each directory once.
// Until Sync returns, a crash may lose the renames (each file is then old
// or new still, never partial). It is safe for concurrent use.
type Batch struct {
	mu   sync.Mutex
	dirs map[string]bool
}

// WriteFile is WriteFile with the directory fsync left to b.Sync.
func (b *Batch) WriteFile(name string, data []byte, perm fs.FileMode) error {
	return writeFile(name, data, perm, b)
}

// Create is Create for a File whose Commit leaves the directory fsync to
// b.Sync.
func (b *Batch) Create(name string, perm fs.FileMode) (*File, error) {
	return create(name, perm, b)
}

// Rename is Rename with the directory fsync left to b.Sync.
func (b *Batch) Rename(oldpath, newpath string) error {
	if err := rename(oldpath, newpath); err != nil {
		return err
	}
	b.add(filepath.Dir(newpath))
	return nil
}

func (b *Batch) add(dir string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dirs == nil {
		b.dirs = map[string]bool{}
	}
	b.dirs[filepath.Clean(dir)] = true
}

// Sync fsyncs every directory of a file committed through b since the
// last Sync, each once, in name order, and stops at the first error
// (the directories not synced stay pending).
func (b *Batch) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	dirs := make([]string, 0, len(b.dirs))
	for d := range b.dirs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		if err := SyncDir(d); err != nil {
			return err
		}
		delete(b.dirs, d)
	}
	return nil
}
