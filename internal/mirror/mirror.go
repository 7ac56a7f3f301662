// Package mirror copies a signed repository from a source into a
// directory that any static HTTP server can serve as a custom URL source
// (`cascade mirror`), and is how the management server and update agents
// fill the trees they serve.
//
// Nothing is copied unverified: the source's metadata is verified against
// the mirror's own trusted metadata (package trust) and every target
// against its signed length and sha256 before it is written. Copies are
// incremental and resumable: content-addressed files already present are
// kept, partial downloads are resumed, and timestamp.json is written last,
// so a reader of the directory sees the previous complete copy or the new
// one, never a mix. Targets are downloaded under a dot-prefixed temporary
// name and renamed into place once verified, so a file that a server
// serves under a target's name is always complete and verified (the
// static handler refuses dot-prefixed names).
//
// Options.Select restricts the targets copied (update agents copy only
// what clients of the current state need, Current), Options.Local lets a
// copy reuse files the host already holds, and Options.Prune removes what
// the repository no longer references.
package mirror

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
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
	// Select, if set, returns the target paths to copy, given the
	// verified view and every target it names; nil copies every target.
	// The metadata is always copied whole, so a client can resolve any
	// target, selected or not.
	Select func(ctx context.Context, v *trust.View, all map[string]*metadata.TargetFiles) ([]string, error)
	// Local, if set, returns the path of a local file that may hold the
	// content of sha256 (lowercase hex) and length, or "". Such a file is
	// copied instead of downloaded, and verified like a download (a file
	// that does not match is downloaded after all).
	Local func(sha256 string, length int64) string
	// Prune removes, after a successful copy, the target files the
	// repository no longer names and versioned metadata (other than
	// roots) that neither the new state nor the one it replaces refers
	// to, so a client that read the previous timestamp.json a moment ago
	// still finds what it names.
	Prune bool
	// Progress, if set, is called while a target is downloaded, with its
	// path, the bytes it has so far and its length (for progress bars).
	Progress func(target string, done, total int64)
}

// errDeltaOnly marks a delta copied for the mirror's clients while the
// file it rebuilds came from Options.Local.
var errDeltaOnly = errors.New("delta copied, not applied")

// Result says what a copy did.
type Result struct {
	Timestamp, Snapshot int64
	UpToDate            bool  // the source had nothing newer than the mirror
	Targets             int   // targets copied or checked (all, or the selected ones)
	Fetched             int   // targets downloaded (or copied from Local)
	Bytes               int64 // bytes of targets that came from the source (not those copied from Local)
	Pruned              int   // files removed by Prune
	// Rebuilt counts the targets made from a delta and a base the mirror
	// held (package delta) instead of downloaded; DeltaErrors says why a
	// delta failed (the target was then downloaded in full).
	Rebuilt     int
	DeltaErrors []string
	// Recreated counts the deltas made locally (delta.Create from a base
	// the mirror holds and a file this copy rebuilt from another delta)
	// instead of downloaded, each matching its signed length and sha256.
	Recreated int
	// View is the verified view the copy was made from, with every
	// delegated role loaded.
	View *trust.View `json:"-"`
}

// Copy brings Dir up to date with the source.
func Copy(ctx context.Context, o Options) (*Result, error) {
	v, err := o.Store.Probe(ctx, o.Source, o.Fetcher)
	if err != nil {
		return nil, err
	}
	ts, snap := v.Versions()
	res := &Result{Timestamp: ts, Snapshot: snap, UpToDate: v.UpToDate(), View: v}
	if err := v.LoadAllRoles(ctx); err != nil {
		return nil, err
	}
	base := filepath.Join(o.Dir, o.Store.Kind())
	targets := v.Targets()
	paths, err := selected(ctx, o, v, targets)
	if err != nil {
		return nil, err
	}
	res.Targets = len(paths)
	var batch atomicfile.Batch
	deltas := deltaIndex(targets)
	rebuiltNow := map[string]bool{} // files this copy rebuilt from a delta
	newest := newestFiles(targets)
	for _, p := range paths {
		if r := deltaResult(p); r != "" && rebuiltNow[r] && newest[r] {
			ok, err := recreate(&batch, base, p, targets[p], targets)
			if ok {
				res.Recreated++
				continue
			}
			if err != nil {
				res.DeltaErrors = append(res.DeltaErrors, err.Error())
			}
		}
		fetched, n, err := copyTarget(ctx, &batch, v, base, p, targets[p], o.Local, o.Progress, deltas[p], func(r *rebuilt, err error) {
			if r.fetched {
				res.Fetched++
			}
			if r.recreated {
				res.Recreated++
			}
			res.Bytes += r.bytes
			if errors.Is(err, errDeltaOnly) {
				return
			}
			if err != nil {
				res.DeltaErrors = append(res.DeltaErrors, err.Error())
			} else {
				res.Rebuilt++
				rebuiltNow[p] = true
			}
		}, targets)
		if err != nil {
			return nil, err
		}
		if fetched {
			res.Fetched++
		}
		res.Bytes += n
	}
	if err := batch.Sync(); err != nil {
		return nil, failure.New(failure.Local, "mirror targets", err)
	}
	var keep map[string]bool
	if o.Prune {
		keep = referencedBefore(base)
	}
	files := v.Files()
	if err := writeMetadata(base, files); err != nil {
		return nil, err
	}
	if err := o.Store.Commit(v); err != nil {
		return nil, err
	}
	if o.Prune {
		res.Pruned = prune(base, files, keep, targets)
	}
	return res, nil
}

// selected returns the sorted target paths to copy.
func selected(ctx context.Context, o Options, v *trust.View, targets map[string]*metadata.TargetFiles) ([]string, error) {
	var paths []string
	if o.Select == nil {
		for p := range targets {
			paths = append(paths, p)
		}
	} else {
		sel, err := o.Select(ctx, v, targets)
		if err != nil {
			return nil, err
		}
		for _, p := range sel {
			if _, ok := targets[p]; !ok {
				return nil, failure.Newf(failure.NotFound, o.Source.Name+": "+p, "selected target is not in the repository")
			}
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// copyTarget makes sure the mirror holds one target: kept if a file of
// its content-addressed name and signed length is there, otherwise copied
// from a local file, rebuilt from one of deltas (see rebuild; each attempt
// is told to tried), or downloaded, verified, and renamed into place
// through b (whose Sync makes the renames durable). It reports whether it
// fetched the target in full (downloaded, or copied from local), and how
// many bytes came from the source for it (none for a local copy that
// matched).
func copyTarget(ctx context.Context, b *atomicfile.Batch, v *trust.View, base, p string, tf *metadata.TargetFiles,
	local func(string, int64) string, progress func(string, int64, int64), deltas []string, tried func(*rebuilt, error),
	targets map[string]*metadata.TargetFiles) (bool, int64, error) {
	rel, err := trust.ConsistentPath(p, tf)
	if err != nil {
		return false, 0, failure.New(failure.Verification, "mirror "+p, err)
	}
	dst := filepath.Join(base, "targets", filepath.FromSlash(rel))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == tf.Length {
		return false, 0, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, 0, failure.New(failure.Local, "mirror "+p, err)
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst))
	haveLocal := false
	if local != nil {
		if src := local(hex.EncodeToString(tf.Hashes["sha256"]), tf.Length); src != "" {
			// The copy becomes the partial download, which File checks
			// against the signed hash without a request (and discards and
			// downloads if it does not match).
			if err := copyFile(src, tmp+".part"); err != nil {
				os.Remove(tmp + ".part")
			} else {
				haveLocal = true
			}
		}
	}
	if len(deltas) > 0 && !haveLocal {
		if r, err := rebuild(ctx, b, v, base, p, tf, dst, deltas, targets, false); r != nil {
			tried(r, err)
			if err == nil {
				return false, 0, nil
			}
		}
	}
	// The download reports the offset it starts from (0, or where a
	// partial file ends) and then its progress: what came from the
	// source is the difference. A complete local copy makes no request.
	var from, done int64 = -1, 0
	report := func(n int64) {
		if from < 0 || n < done {
			from = n
		}
		done = n
		if progress != nil {
			progress(p, n, tf.Length)
		}
	}
	err = v.Download(ctx, p, tf, tmp, report)
	var n int64
	if from >= 0 {
		n = done - from
	}
	if err != nil {
		return false, n, err
	}
	if err := b.Rename(tmp, dst); err != nil {
		return false, n, failure.New(failure.Local, "mirror "+p, err)
	}
	if haveLocal && len(deltas) > 0 {
		// The file came from the host: the delta from the version the
		// mirror held is still wanted, for its clients that hold that
		// version too. It is recreated from the base and the file, or
		// copied (rebuild with only).
		if r, _ := rebuild(ctx, b, v, base, p, tf, dst, deltas, targets, true); r != nil {
			tried(r, errDeltaOnly)
		}
	}
	return true, n, nil
}

// copyFile copies src to a new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeMetadata writes every metadata file but timestamp.json if it is
// missing (versioned files never change), fsyncs their directory, then
// replaces timestamp.json.
func writeMetadata(base string, files map[string][]byte) error {
	for name := range files {
		if err := checkMetaName(name); err != nil {
			return failure.New(failure.Verification, "mirror metadata", err)
		}
	}
	dir := filepath.Join(base, "metadata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return failure.New(failure.Local, "mirror metadata", err)
	}
	var batch atomicfile.Batch
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
		if err := batch.WriteFile(p, data, 0o644); err != nil {
			return failure.New(failure.Local, "write "+name, err)
		}
	}
	if err := batch.Sync(); err != nil {
		return failure.New(failure.Local, "mirror metadata", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "timestamp.json"), files["timestamp.json"], 0o644); err != nil {
		return failure.New(failure.Local, "write timestamp.json", err)
	}
	return nil
}

// checkMetaName refuses a metadata file name other than timestamp.json
// and N.<role>.json, with N a version and <role> a top-level role or a
// name trust.CheckRoleName accepts: the names of delegated roles come
// from signed metadata, and must not reach outside the metadata
// directory or replace another role's file.
func checkMetaName(name string) error {
	if name == "timestamp.json" {
		return nil
	}
	v, rest, ok := strings.Cut(name, ".")
	role, isJSON := strings.CutSuffix(rest, ".json")
	if !ok || !isJSON || v == "" || strings.Trim(v, "0123456789") != "" {
		return fmt.Errorf("invalid metadata file name %q", name)
	}
	switch role {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT:
		return nil
	}
	return trust.CheckRoleName(role)
}
