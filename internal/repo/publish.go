package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/version"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Errors of Publish, for errors.Is.
var (
	// ErrVersionExists: the item already has this version.
	ErrVersionExists = errors.New("version already published")
	// ErrVersionOlder: the item already has a newer version.
	ErrVersionOlder = errors.New("version is older than the newest published")
	// ErrInvalidItem: the item is malformed (category, name, files).
	ErrInvalidItem = errors.New("invalid item")
)

// MaxFiles is the most files one item version may have.
const MaxFiles = 256

// Item is one version of a published item.
type Item struct {
	// Category must be one of the repository kind's categories.
	Category string
	// Name of the item: 1 to 128 of [0-9A-Za-z._-], starting with a
	// letter or digit.
	Name string
	// Version, newer than every version of the item published before.
	Version string
	// Files of this version, 1 to MaxFiles, with distinct names.
	Files []File
	// Keep overrides Settings.Keep for this item in this publish; 0 means
	// the repository's setting.
	Keep int
}

// File is one file of an Item: its content comes from Path or Data.
type File struct {
	// Name is the basename in the target path; empty means the base of
	// Path. Same syntax as an item name.
	Name string
	// Path is a local file to copy. Exactly one of Path and Data is set.
	Path string
	// Data is the content, for callers that have it in memory.
	Data []byte
}

// PublishResult says what a publish changed.
type PublishResult struct {
	// Added are the target paths published, indexes included.
	Added []string
	// Pruned are the target paths removed because more than Keep versions
	// of their item existed (their deltas included).
	Pruned []string
	// Deltas are the delta targets published (not in Added).
	Deltas []DeltaInfo
	// Timestamp and Snapshot are the new metadata versions.
	Timestamp, Snapshot int64
}

// Publish adds item versions to the repository, all in one commit: it
// copies their files into the targets tree, adds them to their bins,
// prunes versions beyond Keep, rewrites the affected category indexes and
// re-signs the bins that changed, then snapshot and timestamp (see the
// package doc for atomicity). Input is validated before anything is
// written; a failed publish leaves the published tree as it was.
func (r *Repo) Publish(ctx context.Context, items ...Item) (*PublishResult, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("publish: %w: no items", ErrInvalidItem)
	}
	for i := range items {
		if err := r.checkItem(&items[i]); err != nil {
			return nil, fmt.Errorf("publish %s: %w", items[i].label(), err)
		}
	}
	if err := checkDistinct(items); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	res := &PublishResult{}
	now := r.now()
	err := r.write(ctx, now, func(op *writeOp) error {
		return r.publish(ctx, op, items, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *Repo) publish(ctx context.Context, op *writeOp, items []Item, res *PublishResult) error {
	t, st := op.tree, op.state
	for _, it := range items {
		if err := checkNewer(st, it); err != nil {
			return fmt.Errorf("publish %s: %w", it.label(), err)
		}
	}
	touched := map[string]bool{}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return t.abort(fmt.Errorf("publish: %w", err))
		}
		if err := r.addItem(t, st, it, res); err != nil {
			return t.abort(fmt.Errorf("publish %s: %w", it.label(), err))
		}
		touched[it.Category] = true
	}
	for _, c := range slices.Sorted(maps.Keys(touched)) {
		if err := t.writeIndex(c, st.Items[c]); err != nil {
			return t.abort(fmt.Errorf("publish: %w", err))
		}
		res.Added = append(res.Added, index.Path(c))
	}
	// The top-level targets is loaded anyway: keep it from expiring even
	// without refreshes. Bins and root are left to Refresh.
	if r.due(t.targets.Signed.Expires, r.settings.Margin.Targets, op.signer.now) {
		t.dirty[metadata.TARGETS] = true
	}
	if err := r.commit(op, false); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	res.Timestamp, res.Snapshot = t.timestamp.Signed.Version, t.snapshot.Signed.Version
	r.log.Info("published", "items", len(items), "added", len(res.Added), "pruned", len(res.Pruned),
		"timestamp", res.Timestamp, "snapshot", res.Snapshot)
	return nil
}

// addItem copies an item's files, adds them to their bins and the catalog,
// and prunes the versions beyond Keep.
func (r *Repo) addItem(t *tree, st *privateState, it Item, res *PublishResult) error {
	dir := filepath.Join(t.l.targetsDir(), it.Category, it.Name, it.Version)
	if err := ensureDir(dir); err != nil {
		return err
	}
	kv := keptVersion{Version: it.Version}
	custom := Custom{Category: it.Category, Name: it.Name, Version: it.Version}
	copied := map[string]hashedFile{}
	for _, f := range it.Files {
		hf, err := copyFile(t, f, dir, r.progress)
		if err != nil {
			return err
		}
		copied[f.Name] = hf
		p := index.ItemPath(it.Category, it.Name, it.Version, f.Name)
		if err := t.setTarget(p, hf.targetFile(custom)); err != nil {
			return err
		}
		kv.Files = append(kv.Files, f.Name)
		res.Added = append(res.Added, p)
	}
	slices.Sort(kv.Files)
	var err error
	if kv.Deltas, err = r.addDeltas(t, it, st.Items[it.Category][it.Name], copied, res); err != nil {
		return err
	}
	if st.Items[it.Category] == nil {
		st.Items[it.Category] = map[string][]keptVersion{}
	}
	kept := append([]keptVersion{kv}, st.Items[it.Category][it.Name]...)
	keep := it.Keep
	if keep == 0 {
		keep = r.settings.Keep
	}
	if len(kept) > keep {
		for _, old := range kept[keep:] {
			for _, f := range old.Files {
				p := index.ItemPath(it.Category, it.Name, old.Version, f)
				if err := t.removeTarget(p); err != nil {
					return err
				}
				res.Pruned = append(res.Pruned, p)
			}
			for _, d := range old.Deltas {
				p := index.ItemPath(it.Category, it.Name, old.Version, d)
				if err := t.removeTarget(p); err != nil {
					return err
				}
				res.Pruned = append(res.Pruned, p)
			}
		}
		kept = kept[:keep]
	}
	st.Items[it.Category][it.Name] = kept
	return nil
}

// copyFile copies one File into dir as a content-addressed target.
// progress, if set, hears how much of a local file is copied.
func copyFile(t *tree, f File, dir string, progress func(string, int64, int64)) (hashedFile, error) {
	if f.Path == "" {
		return t.copyTarget(bytes.NewReader(f.Data), dir, f.Name)
	}
	src, err := os.Open(f.Path)
	if err != nil {
		return hashedFile{}, fmt.Errorf("open input: %w", err)
	}
	defer src.Close()
	var r io.Reader = src
	if progress != nil {
		if fi, err := src.Stat(); err == nil {
			r = &countingReader{r: src, report: func(n int64) { progress(f.Path, n, fi.Size()) }}
		}
	}
	return t.copyTarget(r, dir, f.Name)
}

// countingReader reports the bytes read so far after each read.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.report(c.n)
	return n, err
}

func (it Item) label() string {
	return it.Category + "/" + it.Name + " " + it.Version
}

// checkItem validates an item before anything is written, filling in the
// files' names.
func (r *Repo) checkItem(it *Item) error {
	if !r.settings.allowsCategory(it.Category) {
		return fmt.Errorf("%w: category %q is not one of %v for a %s repository",
			ErrInvalidItem, it.Category, r.settings.Kind.Categories(), r.settings.Kind)
	}
	if err := checkName(it.Name); err != nil {
		return fmt.Errorf("%w: name: %v", ErrInvalidItem, err)
	}
	if _, err := version.Parse(it.Version); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidItem, err)
	}
	if it.Keep < 0 {
		return fmt.Errorf("%w: keep %d is negative", ErrInvalidItem, it.Keep)
	}
	if len(it.Files) == 0 || len(it.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files (want 1 to %d)", ErrInvalidItem, len(it.Files), MaxFiles)
	}
	it.Files = slices.Clone(it.Files)
	seen := map[string]bool{}
	for i := range it.Files {
		if err := checkFile(&it.Files[i]); err != nil {
			return err
		}
		if index.IsDelta(it.Files[i].Name) {
			return fmt.Errorf("%w: file name %q: names ending in %s are reserved for deltas", ErrInvalidItem, it.Files[i].Name, index.DeltaExt)
		}
		if seen[it.Files[i].Name] {
			return fmt.Errorf("%w: two files named %q", ErrInvalidItem, it.Files[i].Name)
		}
		seen[it.Files[i].Name] = true
	}
	return nil
}

func checkFile(f *File) error {
	if (f.Path == "") == (f.Data == nil) {
		return fmt.Errorf("%w: file %q: exactly one of Path and Data must be set", ErrInvalidItem, f.Name)
	}
	if f.Name == "" {
		f.Name = filepath.Base(f.Path)
	}
	if err := checkName(f.Name); err != nil {
		return fmt.Errorf("%w: file name: %v", ErrInvalidItem, err)
	}
	if f.Path == "" {
		return nil
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		return fmt.Errorf("%w: input file: %w", ErrInvalidItem, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: input %s is not a regular file", ErrInvalidItem, f.Path)
	}
	return nil
}

// checkName checks an item or file name: it becomes one component of a
// target path and of a local path.
func checkName(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%q must be 1 to 128 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if i == 0 && !alnum {
			return fmt.Errorf("%q must start with a letter or digit", s)
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%q: character %q not allowed (want letters, digits and . _ -)", s, c)
		}
	}
	return nil
}

// checkDistinct refuses two items with the same category and name in one
// publish.
func checkDistinct(items []Item) error {
	seen := map[string]bool{}
	for _, it := range items {
		k := it.Category + "/" + it.Name
		if seen[k] {
			return fmt.Errorf("%w: %s appears twice", ErrInvalidItem, k)
		}
		seen[k] = true
	}
	return nil
}

// checkNewer refuses a version that is not newer than the item's newest.
func checkNewer(st *privateState, it Item) error {
	kept := st.Items[it.Category][it.Name]
	if len(kept) == 0 {
		return nil
	}
	newest := kept[0].Version
	c, err := version.Compare(it.Version, newest)
	if err != nil {
		return fmt.Errorf("compare with published version: %w", err)
	}
	switch {
	case c == 0 && it.Version == newest:
		return ErrVersionExists
	case c == 0:
		return fmt.Errorf("%w (as %s)", ErrVersionExists, newest)
	case c < 0:
		return fmt.Errorf("%w (%s)", ErrVersionOlder, newest)
	}
	return nil
}
