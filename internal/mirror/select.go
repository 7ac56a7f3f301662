package mirror

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/cascade-update/cascade/internal/index"
	"github.com/cascade-update/cascade/internal/trust"
)

// Current is a Select function: what clients of the repository's current
// state download. It selects every category index and the files of the
// newest version of every item the indexes list (read through the view,
// so verified). Older kept versions are left out.
func Current(ctx context.Context, v *trust.View, all map[string]*metadata.TargetFiles) ([]string, error) {
	var out []string
	for p := range all {
		cat, rest, ok := strings.Cut(p, "/")
		if !ok || rest != index.Name {
			continue
		}
		idx, err := v.Index(ctx, cat)
		if err != nil {
			return nil, fmt.Errorf("select current targets: %w", err)
		}
		out = append(out, p)
		for _, it := range idx.Items {
			out = append(out, it.Files...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// referencedBefore returns the names of the versioned metadata files that
// the tree's current timestamp.json refers to, through its snapshot. The
// files were verified before they were written; they are parsed here only
// to decide what to keep. A tree without them yields an empty set.
func referencedBefore(base string) map[string]bool {
	keep := map[string]bool{}
	dir := filepath.Join(base, "metadata")
	b, err := os.ReadFile(filepath.Join(dir, "timestamp.json"))
	if err != nil {
		return keep
	}
	ts, err := metadata.Timestamp().FromBytes(b)
	if err != nil || ts.Signed.Meta["snapshot.json"] == nil {
		return keep
	}
	snapName := fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)
	keep[snapName] = true
	b, err = os.ReadFile(filepath.Join(dir, snapName))
	if err != nil {
		return keep
	}
	snap, err := metadata.Snapshot().FromBytes(b)
	if err != nil {
		return keep
	}
	for name, m := range snap.Signed.Meta {
		keep[fmt.Sprintf("%d.%s", m.Version, name)] = true
	}
	return keep
}

// prune removes the target files the repository no longer names (and
// their leftover partial downloads) and the versioned metadata, roots
// excepted, that neither the new state (files) nor the previous one
// (keep) refers to. It returns the number of files removed.
func prune(base string, files map[string][]byte, keep map[string]bool, targets map[string]*metadata.TargetFiles) int {
	named := map[string]bool{}
	for p, tf := range targets {
		if rel, err := trust.ConsistentPath(p, tf); err == nil {
			named[filepath.FromSlash(rel)] = true
		}
	}
	n := 0
	tdir := filepath.Join(base, "targets")
	var dirs []string
	filepath.WalkDir(tdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		rel, _ := filepath.Rel(tdir, p)
		name := filepath.Base(rel)
		if strings.HasPrefix(name, ".") { // a temporary download: .<name>[.part]
			name = strings.TrimSuffix(strings.TrimPrefix(name, "."), ".part")
		}
		if !named[filepath.Join(filepath.Dir(rel), name)] && os.Remove(p) == nil {
			n++
		}
		return nil
	})
	for i := len(dirs) - 1; i > 0; i-- { // empty directories, deepest first; not tdir
		os.Remove(dirs[i])
	}
	entries, _ := os.ReadDir(filepath.Join(base, "metadata"))
	for _, e := range entries {
		name := e.Name()
		if name == "timestamp.json" || strings.HasSuffix(name, ".root.json") || strings.HasPrefix(name, ".") ||
			files[name] != nil || keep[name] {
			continue
		}
		if os.Remove(filepath.Join(base, "metadata", name)) == nil {
			n++
		}
	}
	return n
}
