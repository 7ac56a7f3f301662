package mirror

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	"github.com/cascade-update/cascade/internal/version"
)

// deltaIndex maps the target path of each file that deltas rebuild to the
// paths of those deltas (index.DeltaPath), sorted.
func deltaIndex(targets map[string]*metadata.TargetFiles) map[string][]string {
	out := map[string][]string{}
	for p := range targets {
		if r := deltaResult(p); r != "" {
			out[r] = append(out[r], p)
		}
	}
	for _, ds := range out {
		slices.Sort(ds)
	}
	return out
}

// deltaResult returns the target path of the file that delta target p
// rebuilds, or "" if p is not a delta.
func deltaResult(p string) string {
	i := strings.LastIndex(p, ".from-")
	if !index.IsDelta(p) || i < 0 {
		return ""
	}
	return p[:i]
}

// rebuilt is a file made from a delta.
type rebuilt struct {
	delta   string // the delta's target path
	fetched bool   // the delta was downloaded
	bytes   int64  // the bytes of it that came from the source
	// recreated: made locally from the base and the file (recreate).
	recreated bool
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
// With only set, the delta is recreated (see recreate) or copied, for
// the mirror's clients that hold the same base, but not applied: the
// caller has put the file at dst from elsewhere.
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
	if only {
		// The mirror holds the base and the file: make the delta rather
		// than download it, when it comes out as signed.
		if ok, _ := recreate(b, base, best, dtf, targets); ok {
			return &rebuilt{delta: best, recreated: true}, nil
		}
	}
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

// newestFiles returns the target paths of the files of the newest
// version of each item (<category>/<name>/<version>/<file>, deltas and
// indexes left out): the versions endpoints update to, whose deltas a
// mirror recreates. When a copy brings several new versions at once, the
// deltas of the versions in between are downloaded: recreating them
// would cost a delta.Create each, for deltas no endpoint is sent to.
func newestFiles(targets map[string]*metadata.TargetFiles) map[string]bool {
	type item struct{ cat, name string }
	top := map[item]string{}
	for p := range targets {
		parts := strings.Split(p, "/")
		if len(parts) != 4 || index.IsDelta(p) {
			continue
		}
		it := item{parts[0], parts[1]}
		if cur, ok := top[it]; !ok || newer(parts[2], cur) {
			top[it] = parts[2]
		}
	}
	out := map[string]bool{}
	for p := range targets {
		parts := strings.Split(p, "/")
		if len(parts) == 4 && !index.IsDelta(p) && top[item{parts[0], parts[1]}] == parts[2] {
			out[p] = true
		}
	}
	return out
}

// newer reports whether version a is newer than b (an unparsable one is
// never newer).
func newer(a, b string) bool {
	c, err := version.Compare(a, b)
	return err == nil && c > 0
}

// maxRecreate bounds the base and result sizes (together) of a delta the
// mirror recreates: delta.Create holds both in memory, plus its index
// (docs/deltas.md).
const maxRecreate = 1 << 30

// recreate makes the mirror's copy of delta target p locally, instead of
// downloading it, when the copy has just rebuilt the file the delta
// rebuilds (so the mirror holds it) and holds the delta's base:
// delta.Create is deterministic, so applied to the same base and result
// it makes the publisher's delta, byte for byte. The delta is renamed
// into place through b only if its length and sha256 match the signed
// ones; otherwise (a publisher whose encoder differs, a base altered on
// disk) it returns an error and the caller downloads the delta. It
// returns false and no error when the delta cannot be recreated here.
func recreate(b *atomicfile.Batch, base, p string, tf *metadata.TargetFiles, targets map[string]*metadata.TargetFiles) (bool, error) {
	d, err := index.DeltaOf(tf.Custom)
	rp := deltaResult(p)
	if err != nil || d == nil || rp == "" || p != rp+".from-"+d.Base+index.DeltaExt || path.Base(rp) != d.File ||
		d.BaseLength+d.ResultLength > maxRecreate {
		return false, nil
	}
	rtf := targets[rp]
	if rtf == nil || rtf.Length != d.ResultLength || hex.EncodeToString(rtf.Hashes["sha256"]) != d.ResultSHA256 {
		return false, nil
	}
	rel, err := trust.ConsistentPath(p, tf)
	if err != nil {
		return false, nil
	}
	dst := filepath.Join(base, "targets", filepath.FromSlash(rel))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == tf.Length {
		return false, nil // held already: copyTarget keeps it
	}
	rrel, err := trust.ConsistentPath(rp, rtf)
	if err != nil {
		return false, nil
	}
	resultPath := filepath.Join(base, "targets", filepath.FromSlash(rrel))
	basePath := filepath.Join(base, "targets", filepath.FromSlash(path.Dir(path.Dir(rp))), d.Base, d.BaseSHA256+"."+d.File)
	baseData, err := readSized(basePath, d.BaseLength)
	if err != nil {
		return false, nil
	}
	result, err := readSized(resultPath, d.ResultLength)
	if err != nil {
		return false, nil
	}
	op := "recreate " + p
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, failure.New(failure.Local, op, err)
	}
	out, err := b.Create(dst, 0o644)
	if err != nil {
		return false, failure.New(failure.Local, op, err)
	}
	defer out.Abort()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	if err := delta.Create(cw, baseData, result); err != nil {
		return false, failure.New(failure.Local, op, err)
	}
	if cw.n != tf.Length || !bytes.Equal(h.Sum(nil), tf.Hashes["sha256"]) {
		return false, failure.Newf(failure.Verification, op, "made %d bytes with sha256 %x, the signed delta is %d bytes with sha256 %x",
			cw.n, h.Sum(nil), tf.Length, []byte(tf.Hashes["sha256"]))
	}
	if err := out.Commit(); err != nil {
		return false, failure.New(failure.Local, op, err)
	}
	return true, nil
}

// readSized reads a file that must be n bytes long.
func readSized(name string, n int64) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != n {
		return nil, fmt.Errorf("%s is not a file of %d bytes", name, n)
	}
	return os.ReadFile(name)
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
