package update

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/failure"
	"github.com/cascade-update/cascade/internal/install"
	"github.com/cascade-update/cascade/internal/report"
)

// apply updates the category from a probed source: nothing to do if the
// installed version is the one the source offers; otherwise download
// what is missing, install atomically, trust the source's metadata, and
// run the hook. Errors make the walk move to the next source.
func (ru *run) apply(ctx context.Context, c *candidate, out *report.Category) error {
	cat := c.manifest.Category
	if cur, err := ru.r.o.Install.Current(cat); err == nil && sameManifest(cur.Manifest, c.manifest) {
		if !c.view.UpToDate() {
			if err := c.store.Commit(c.view); err != nil {
				return err
			}
		}
		out.Result = report.UpToDate
		return nil
	}
	st, err := ru.r.o.Install.Begin(ctx, cat, c.manifest)
	if err != nil {
		return err
	}
	defer st.Discard()
	for _, f := range st.Missing() {
		n, err := ru.download(ctx, c, st, f, out)
		out.Bytes += n
		if err != nil {
			return err
		}
	}
	res, err := ru.r.o.Install.Commit(ctx, st)
	if err != nil {
		return err
	}
	if err := c.store.Commit(c.view); err != nil {
		return err
	}
	out.Result = report.Updated
	out.Hook = ru.hook(ctx, res)
	return nil
}

// download fetches one missing file into the stage: by a delta from the
// installed version if the source offers one (unless an earlier attempt
// left part of the full download, which is resumed from any source),
// else in full. A failed delta is recorded in out's attempts and the full
// file is downloaded from the same source. It returns the bytes received.
func (ru *run) download(ctx context.Context, c *candidate, st *install.Stage, f install.File, out *report.Category) (int64, error) {
	t, ok := c.targets[f.Path]
	if !ok {
		return 0, fmt.Errorf("download %s: not in the source's manifest", f.Path)
	}
	dst, err := st.PathFor(f)
	if err != nil {
		return 0, err
	}
	out.FullBytes += f.Length
	var got int64
	if !partialDownload(dst) {
		n, ok, a := ru.fromDelta(ctx, c, f, dst)
		if ok {
			out.Deltas++
			return n, nil
		}
		got = n
		if a != nil {
			ru.log().Warn("delta failed: downloading the full file", "source", c.key, "delta", a.path, "error", a.err)
			class := failure.ClassOf(a.err)
			if class == "" {
				class = failure.Local
			}
			out.Attempts = append(out.Attempts, report.Attempt{Source: c.source, URL: c.url, Class: class, Error: a.err.Error(), Delta: a.path})
		}
	}
	n, err := ru.fullDownload(ctx, c, f, t, dst)
	return got + n, err
}

// fullDownload fetches f in full into dst, resuming a partial download.
func (ru *run) fullDownload(ctx context.Context, c *candidate, f install.File, t target, dst string) (int64, error) {
	var resumed int64
	if fi, err := os.Stat(dst + ".part"); err == nil {
		resumed = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("download %s: %w", f.Path, err)
	}
	held := resumed
	progress := func(done int64) {
		held = done
		if p := ru.r.o.Progress; p != nil {
			p(c.manifest.Category, f.Path, done, f.Length)
		}
	}
	err := c.view.Download(ctx, t.path, t.tf, dst, progress)
	if err == nil {
		held = f.Length
	}
	return max(held-resumed, 0), err
}

// hook runs the category's hook after an install, and records that it
// ran so that a crash before this point re-runs it on the next start.
func (ru *run) hook(ctx context.Context, res install.Result) *report.Hook {
	cmd := ru.r.o.Hooks[res.Category]
	if len(cmd) == 0 {
		if err := ru.r.o.Install.HookDone(res.Category, res.Current.ID); err != nil {
			ru.log().Warn("record hook run", "category", res.Category, "error", err)
		}
		return nil
	}
	start := ru.r.o.Now()
	hr, err := install.RunHook(ctx, install.HookOptions{Command: cmd, Env: res.HookEnv(),
		Timeout: ru.r.o.HookTimeout, Logger: ru.log()})
	out := &report.Hook{Command: cmd, ExitCode: hr.ExitCode, Output: hr.Output, Duration: time.Duration(ru.r.o.Now().Sub(start))}
	if err != nil {
		out.Error = err.Error()
	}
	if err := ru.r.o.Install.HookDone(res.Category, res.Current.ID); err != nil {
		ru.log().Warn("record hook run", "category", res.Category, "error", err)
	}
	return out
}

func (ru *run) log() *slog.Logger { return ru.r.log }

// sameManifest reports whether two manifests describe the same content.
func sameManifest(a, b install.Manifest) bool {
	key := func(m install.Manifest) string {
		items := slices.Clone(m.Items)
		slices.SortFunc(items, func(x, y install.Item) int { return strings.Compare(x.Name, y.Name) })
		files := slices.Clone(m.Files)
		slices.SortFunc(files, func(x, y install.File) int { return strings.Compare(x.Path, y.Path) })
		return fmt.Sprint(m.Category, items, files)
	}
	return key(a) == key(b)
}
