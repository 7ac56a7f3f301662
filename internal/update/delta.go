package update

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/delta"
	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/install"
)

// deltaSuffix names the downloaded delta next to the cache file it
// rebuilds (the install store's cache pruning removes such names left by
// a crash).
const deltaSuffix = index.DeltaExt

// minDeltaFile is the smallest file an endpoint looks a delta up for:
// the lookup may cost a hash bin of metadata (up to about 30 KB), more
// than a delta could save on a smaller file.
const minDeltaFile = 64 << 10

// deltaAttempt is a delta that failed: the full file is downloaded next.
type deltaAttempt struct {
	path string // the delta's target path
	err  error
}

// fromDelta tries to put f into the stage's cache file dst by applying
// the delta the source offers from the installed version of the same
// file (docs/deltas.md, "Endpoints"). It returns the bytes downloaded and
// whether dst now holds f, verified against f's signed hash and length.
// No delta (nothing installed, the same version, more than the
// publisher's K versions behind) is (0, false, nil); a delta that fails
// to download, apply or verify is an error naming the delta, with its
// failure class, and leaves dst untouched.
func (ru *run) fromDelta(ctx context.Context, c *candidate, f install.File, dst string) (int64, bool, *deltaAttempt) {
	t, ok := c.targets[f.Path]
	if !ok || f.Length < minDeltaFile {
		return 0, false, nil
	}
	parts := strings.Split(t.path, "/")
	if len(parts) != 4 {
		return 0, false, nil
	}
	cat, name, ver, file := parts[0], parts[1], parts[2], parts[3]
	cur, err := ru.r.o.Install.Current(c.manifest.Category)
	if err != nil {
		return 0, false, nil
	}
	var baseVer string
	for _, it := range cur.Items {
		if it.Name == name {
			baseVer = it.Version
		}
	}
	var base *install.File
	for i := range cur.Files {
		if cur.Files[i].Path == f.Path {
			base = &cur.Files[i]
		}
	}
	if baseVer == "" || baseVer == ver || base == nil || base.Length == 0 {
		return 0, false, nil
	}
	dp := index.DeltaPath(cat, name, ver, file, baseVer)
	fail := func(err error) (int64, bool, *deltaAttempt) { return 0, false, &deltaAttempt{path: dp, err: err} }
	tf, err := c.view.Target(ctx, dp)
	if failure.ClassOf(err) == failure.NotFound {
		return 0, false, nil
	}
	if err != nil {
		return fail(err)
	}
	d, err := index.DeltaOf(tf.Custom)
	switch {
	case err != nil:
		return fail(failure.New(failure.Verification, c.key+": "+dp, err))
	case d == nil:
		return fail(failure.Newf(failure.Verification, c.key+": "+dp, "target is not a delta"))
	case d.File != file || d.Base != baseVer || d.BaseSHA256 != base.SHA256 || d.BaseLength != base.Length:
		return fail(failure.Newf(failure.Verification, c.key+": "+dp,
			"delta is for another base (%s %s, %d bytes, sha256 %s; installed %s, %d bytes, sha256 %s)",
			d.File, d.Base, d.BaseLength, d.BaseSHA256, baseVer, base.Length, base.SHA256))
	case d.ResultSHA256 != f.SHA256 || d.ResultLength != f.Length:
		return fail(failure.Newf(failure.Verification, c.key+": "+dp,
			"delta rebuilds another file (%d bytes, sha256 %s) than the signed %s", d.ResultLength, d.ResultSHA256, t.path))
	case tf.Length >= f.Length:
		return 0, false, nil // no smaller than the file: not worth it
	}
	ddst := dst + deltaSuffix
	var resumed, held int64
	if fi, err := os.Stat(ddst + ".part"); err == nil {
		resumed = fi.Size()
	}
	held = resumed
	err = c.view.Download(ctx, dp, tf, ddst, func(done int64) { held = done })
	if err == nil {
		held = tf.Length
	}
	n := max(held-resumed, 0)
	if err != nil {
		// The full file follows: a partial delta (a source that broke
		// the connection mid-body) would only stay in the cache.
		os.Remove(ddst + ".part")
		_, _, a := fail(err)
		return n, false, a
	}
	defer os.Remove(ddst)
	basePath := filepath.Join(cur.Dir, filepath.FromSlash(f.Path))
	if err := ru.applyDelta(basePath, *base, ddst, f, dst); err != nil {
		_, _, a := fail(fmt.Errorf("%s: %w", c.key, err))
		return n, false, a
	}
	return n, true, nil
}

// applyDelta checks the installed base against its recorded hash, applies
// the (verified) delta to it streaming into a temporary file while
// hashing, and renames the result to dst only if it matches f's signed
// hash and length. A base altered on disk is failure.Local; a delta that
// does not apply or rebuilds something else is failure.Verification.
func (ru *run) applyDelta(basePath string, base install.File, deltaPath string, f install.File, dst string) error {
	op := "apply delta to " + f.Path
	bf, err := os.Open(basePath)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	defer bf.Close()
	h := sha256.New()
	if n, err := io.Copy(h, bf); err != nil {
		return failure.New(failure.Local, op, err)
	} else if n != base.Length || hex.EncodeToString(h.Sum(nil)) != base.SHA256 {
		return failure.Newf(failure.Local, op, "installed file %s was altered on disk (%d bytes, sha256 %x; installed as %d bytes, sha256 %s)",
			basePath, n, h.Sum(nil), base.Length, base.SHA256)
	}
	df, err := os.Open(deltaPath)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	defer df.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return failure.New(failure.Local, op, err)
	}
	out, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	defer out.Abort()
	want, err := hex.DecodeString(f.SHA256)
	if err != nil {
		return failure.New(failure.Local, op, err)
	}
	if err := delta.ApplyVerified(bf, bufio.NewReaderSize(df, 256<<10), out, f.Length, want); err != nil {
		if errors.Is(err, delta.ErrInvalid) {
			return failure.New(failure.Verification, op, err)
		}
		return failure.New(failure.Local, op, err)
	}
	if err := out.Commit(); err != nil {
		return failure.New(failure.Local, op, err)
	}
	return nil
}

// partialDownload reports whether an earlier attempt left part of f's
// full download, which is then resumed rather than replaced by a delta.
func partialDownload(dst string) bool {
	fi, err := os.Stat(dst + ".part")
	return err == nil && fi.Size() > 0 || err != nil && !errors.Is(err, fs.ErrNotExist)
}
