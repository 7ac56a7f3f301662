package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/atomicfile"
	"github.com/cascade-update/cascade/internal/version"
)

// privateState is DIR/state.json: what the publisher remembers between
// runs but does not publish. Items is a cache of what the bins hold,
// valid for SnapshotVersion; when it does not match the published
// snapshot (a crash between the timestamp rename and this file's write),
// it is rebuilt from the bins.
type privateState struct {
	SnapshotVersion int64 `json:"snapshot_version"`
	// Items maps category, then item name, to the kept versions, newest
	// first.
	Items map[string]map[string][]keptVersion `json:"items"`
	// Garbage lists files awaiting deletion (see Settings.GCGrace).
	Garbage []garbageEntry `json:"garbage,omitempty"`
}

// keptVersion is one kept version of an item and its files' basenames.
type keptVersion struct {
	Version string   `json:"version"`
	Files   []string `json:"files"`
	// Deltas are the basenames of the version's delta targets (deltas
	// that rebuild its files from older versions), pruned with it.
	Deltas []string `json:"deltas,omitempty"`
}

// garbageEntry lists files that timestamp version Generation and later no
// longer reference, since time Since. Files are relative to the published
// tree, slash-separated.
type garbageEntry struct {
	Generation int64     `json:"generation"`
	Since      time.Time `json:"since"`
	Files      []string  `json:"files"`
}

// loadState reads DIR/state.json and rebuilds its catalog from the bins of
// t when it is missing or stale.
func loadState(l layout, t *tree, log *slog.Logger) (*privateState, error) {
	st := &privateState{}
	b, err := os.ReadFile(l.stateFile())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read state: %w", err)
	default:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("decode state %s: %w", l.stateFile(), err)
		}
	}
	if st.Items != nil && st.SnapshotVersion == t.snapshot.Signed.Version {
		return st, nil
	}
	log.Warn("rebuilding the catalog of published items from the bins",
		"state_snapshot", st.SnapshotVersion, "published_snapshot", t.snapshot.Signed.Version)
	if st.Items, err = catalogFromBins(t); err != nil {
		return nil, err
	}
	st.SnapshotVersion = t.snapshot.Signed.Version
	return st, nil
}

// catalogFromBins lists every published item version from the custom
// metadata of the targets in all bins.
func catalogFromBins(t *tree) (map[string]map[string][]keptVersion, error) {
	if err := t.loadAllBins(); err != nil {
		return nil, fmt.Errorf("rebuild catalog: %w", err)
	}
	type key struct{ cat, name, ver string }
	files := map[key][]string{}
	deltas := map[key][]string{}
	for _, b := range t.bins {
		for p, tf := range b.Signed.Targets {
			c, err := decodeCustom(tf)
			if err != nil {
				return nil, fmt.Errorf("rebuild catalog: target %s: %w", p, err)
			}
			if c.Name == "" {
				continue // a category index
			}
			k := key{c.Category, c.Name, c.Version}
			if c.Delta != nil {
				deltas[k] = append(deltas[k], path.Base(p))
				continue
			}
			files[k] = append(files[k], path.Base(p))
		}
	}
	items := map[string]map[string][]keptVersion{}
	for k, f := range files {
		if items[k.cat] == nil {
			items[k.cat] = map[string][]keptVersion{}
		}
		slices.Sort(f)
		d := deltas[k]
		slices.Sort(d)
		items[k.cat][k.name] = append(items[k.cat][k.name], keptVersion{Version: k.ver, Files: f, Deltas: d})
	}
	for _, byName := range items {
		for _, kept := range byName {
			if err := sortNewestFirst(kept); err != nil {
				return nil, fmt.Errorf("rebuild catalog: %w", err)
			}
		}
	}
	return items, nil
}

func sortNewestFirst(kept []keptVersion) error {
	parsed := map[string]version.Version{}
	for _, k := range kept {
		v, err := version.Parse(k.Version)
		if err != nil {
			return err
		}
		parsed[k.Version] = v
	}
	slices.SortFunc(kept, func(a, b keptVersion) int {
		return parsed[b.Version].Compare(parsed[a.Version])
	})
	return nil
}

// save writes DIR/state.json atomically.
func (st *privateState) save(l layout) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := atomicfile.WriteFile(l.stateFile(), b, 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// collect records the garbage of a committed tree and deletes the files
// whose generation and grace have both passed. It returns how many files
// were deleted and the first error.
func (st *privateState) collect(l layout, t *tree, s Settings, now time.Time) (int, error) {
	if len(t.garbage) > 0 {
		st.Garbage = append(st.Garbage, garbageEntry{
			Generation: t.timestamp.Signed.Version,
			Since:      now.UTC(),
			Files:      slices.Clone(t.garbage),
		})
		t.garbage = nil
	}
	current := t.timestamp.Signed.Version
	var keep []garbageEntry
	var first error
	n := 0
	for _, g := range st.Garbage {
		due := current-g.Generation >= int64(s.GCGenerations) && !now.Before(g.Since.Add(time.Duration(s.GCGrace)))
		if !due {
			keep = append(keep, g)
			continue
		}
		for _, rel := range g.Files {
			if err := l.removePublished(rel); err != nil && first == nil {
				first = err
			}
			n++
		}
	}
	st.Garbage = keep
	return n, first
}

// removePublished removes a file of the published tree, and the target
// directories that this leaves empty.
func (l layout) removePublished(rel string) error {
	if strings.Contains(rel, "..") || path.IsAbs(rel) {
		return fmt.Errorf("remove %q: not a path inside the published tree", rel)
	}
	name := l.fromRel(rel)
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", rel, err)
	}
	if strings.HasPrefix(rel, "targets/") {
		removeEmptyParents(filepath.Dir(name), l.targetsDir())
	}
	return nil
}
