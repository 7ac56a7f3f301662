package mirror

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/delta"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/trust"
)

// deltaIndex maps the target path of each file that deltas rebuild to the
// paths of those deltas (index.DeltaPath), sorted.
func deltaIndex(targets map[string]*metadata.TargetFiles) map[string][]string {
	out := map[string][]string{}
	for p := range targets {
		if !index.IsDelta(p) {
			continue
		}
		i := strings.LastIndex(p, ".from-")
		if i < 0 {
			continue
		}
		out[p[:i]] = append(out[p[:i]], p)
	}
	for _, ds := range out {
		slices.Sort(ds)
	}
	return out
}

// rebuilt is a file made from a delta.
type rebuilt struct {
	delta   string // the delta's target path
	fetched bool   // the delta was downloaded
	bytes   int64  // the bytes of it that came from the source
}

// rebuild tries to make the mirror's copy of target p (at dst) from one of
// its deltas whose base the mirror holds from an earlier copy: the
// smallest such delta is copied into the mirror like any target (verified
// against its signed hash; clients of the mirror use it too), applied to
// the base streaming into a temporary file while hashing, and the result
// renamed to dst through b only if it matches p's signed hash and length.
// It returns nil and no error when no delta applies; an error (the copy
// then downloads p in full) when the delta fails.
//
// With only set, the delta is copied (for the mirror's clients that hold
// the same base) but not applied: the caller has the file from elsewhere.
func rebuild(ctx context.Context, b *atomicfile.Batch, v *trust.View, base, p string, tf *metadata.TargetFiles, dst string,
	deltas []string, targets map[string]*metadata.TargetFiles, only bool) (*rebuilt, error) {
	want := hex.EncodeToString(tf.Hashes["sha256"])
	var best string
	var bestBase string
	for _, dp := range deltas {
		dtf := targets[dp]
		d, err := index.DeltaOf(dtf.Custom)
		if err != nil || d == nil || d.ResultSHA256 != want || d.ResultLength != tf.Length || dtf.Length >= tf.Length {
			continue
		}
		if !strings.HasPrefix(dp, p+".from-"+d.Base+index.DeltaExt) || path.Base(p) != d.File {
			continue
		}
		bp := filepath.Join(base, "targets", filepath.FromSlash(path.Dir(path.Dir(p))), d.Base, d.BaseSHA256+"."+d.File)
		if fi, err := os.Stat(bp); err != nil || !fi.Mode().IsRegular() || fi.Size() != d.BaseLength {
			continue
		}
		if best == "" || dtf.Length < targets[best].Length {
			best, bestBase = dp, bp
		}
	}
	if best == "" {
		return nil, nil
	}
	dtf := targets[best]
	fetched, n, err := copyTarget(ctx, b, v, base, best, dtf, nil, nil, nil, nil, nil)
	out := &rebuilt{delta: best, fetched: fetched, bytes: n}
	if err != nil || only {
		return out, err
	}
	drel, err := trust.ConsistentPath(best, dtf)
	if err != nil {
		return out, failure.New(failure.Verification, "rebuild "+p, err)
	}
	if err := applyTo(b, bestBase, filepath.Join(base, "targets", filepath.FromSlash(drel)), dst, tf); err != nil {
		return out, fmt.Errorf("rebuild %s from %s: %w", p, best, err)
	}
	return out, nil
}

// applyTo applies the delta at deltaPath to the file at basePath and
// renames the result to dst through b if it matches tf.
func applyTo(b *atomicfile.Batch, basePath, deltaPath, dst string, tf *metadata.TargetFiles) error {
	bf, err := os.Open(basePath)
	if err != nil {
		return failure.New(failure.Local, "open base", err)
	}
	defer bf.Close()
	df, err := os.Open(deltaPath)
	if err != nil {
		return failure.New(failure.Local, "open delta", err)
	}
	defer df.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return failure.New(failure.Local, "create directory", err)
	}
	out, err := b.Create(dst, 0o644)
	if err != nil {
		return failure.New(failure.Local, "create result", err)
	}
	defer out.Abort()
	if err := delta.ApplyVerified(bf, bufio.NewReaderSize(df, 256<<10), out, tf.Length, tf.Hashes["sha256"]); err != nil {
		if errors.Is(err, delta.ErrInvalid) {
			return failure.New(failure.Verification, "apply delta", err)
		}
		return failure.New(failure.Local, "apply delta", err)
	}
	if err := out.Commit(); err != nil {
		return failure.New(failure.Local, "commit result", err)
	}
	return nil
}
