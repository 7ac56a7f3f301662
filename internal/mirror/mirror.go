// Package mirror copies a signed repository from a source into a
// directory that any static HTTP server can serve as a custom URL source
// (`cascade mirror`).
//
// Nothing is copied unverified: the source's metadata is verified against
// the mirror's own trusted metadata (package trust) and every target
// against its signed length and sha256 before it is written. Copies are
// incremental and resumable: content-addressed files already present are
// kept, partial downloads are resumed, and timestamp.json is written last,
// so a reader of the directory sees the previous complete copy or the new
// one, never a mix.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/fetch"
	"github.com/cascade-update/cascade/internal/trust"
)

// Options say what to copy where.
type Options struct {
	// Store is the mirror's trusted metadata of the repository (kept
	// outside Dir, so it is not served).
	Store *trust.Store
	// Source is where to copy from.
	Source trust.Source
	// Fetcher downloads from the source.
	Fetcher *fetch.Fetcher
	// Dir is the served tree: the repository goes to Dir/<kind>/.
	Dir string
}

// Result says what a copy did.
type Result struct {
	Timestamp, Snapshot int64
	UpToDate            bool  // the source had nothing newer than the mirror
	Targets             int   // targets in the repository
	Fetched             int   // targets downloaded
	Bytes               int64 // bytes of the targets downloaded
}

// Copy brings Dir up to date with the source.
func Copy(ctx context.Context, o Options) (*Result, error) {
	v, err := o.Store.Probe(ctx, o.Source, o.Fetcher)
	if err != nil {
		return nil, err
	}
	ts, snap := v.Versions()
	res := &Result{Timestamp: ts, Snapshot: snap, UpToDate: v.UpToDate()}
	if err := v.LoadAllRoles(ctx); err != nil {
		return nil, err
	}
	base := filepath.Join(o.Dir, o.Store.Kind())
	targets := v.Targets()
	paths := make([]string, 0, len(targets))
	for p := range targets {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	res.Targets = len(paths)
	for _, p := range paths {
		fetched, err := copyTarget(ctx, v, base, p, targets[p])
		if err != nil {
			return nil, err
		}
		if fetched {
			res.Fetched++
			res.Bytes += targets[p].Length
		}
	}
	if err := writeMetadata(base, v.Files()); err != nil {
		return nil, err
	}
	if err := o.Store.Commit(v); err != nil {
		return nil, err
	}
	return res, nil
}

// copyTarget downloads one target unless the mirror holds a file of its
// content-addressed name and signed length already.
func copyTarget(ctx context.Context, v *trust.View, base, p string, tf *metadata.TargetFiles) (bool, error) {
	rel, err := trust.ConsistentPath(p, tf)
	if err != nil {
		return false, failure.New(failure.Verification, "mirror "+p, err)
	}
	dst := filepath.Join(base, "targets", filepath.FromSlash(rel))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == tf.Length {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, failure.New(failure.Local, "mirror "+p, err)
	}
	if err := v.Download(ctx, p, tf, dst, nil); err != nil {
		return false, err
	}
	return true, nil
}

// writeMetadata writes every metadata file but timestamp.json if it is
// missing (versioned files never change), then replaces timestamp.json.
func writeMetadata(base string, files map[string][]byte) error {
	dir := filepath.Join(base, "metadata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return failure.New(failure.Local, "mirror metadata", err)
	}
	for name, data := range files {
		if name == "timestamp.json" {
			continue
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return failure.New(failure.Local, "mirror metadata", err)
		}
		if err := writeAtomic(p, data); err != nil {
			return err
		}
	}
	return writeAtomic(filepath.Join(dir, "timestamp.json"), files["timestamp.json"])
}

func writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return failure.New(failure.Local, "write "+filepath.Base(name), err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return failure.New(failure.Local, "write "+filepath.Base(name), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return failure.New(failure.Local, "write "+filepath.Base(name), err)
	}
	if err := tmp.Close(); err != nil {
		return failure.New(failure.Local, "write "+filepath.Base(name), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return failure.New(failure.Local, "write "+filepath.Base(name), err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return failure.New(failure.Local, "write "+filepath.Base(name), fmt.Errorf("rename: %w", err))
	}
	return nil
}
