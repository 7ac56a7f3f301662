package server

import (
	"context"
	"encoding/json"
	"fmt"
	posix "path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cascade-update/cascade/internal/store"
)

// The database holds every signed state of the site repository
// (store.Cluster); the writer prunes the old ones with the rest of the
// history. A process that materialises the site repository needs the
// newest state's files and the root chain only (materialise), so what is
// kept is: the root metadata, always (TUF clients walk 1.root.json,
// 2.root.json, ... up to the newest); the newest SiteKeepVersions
// versions and every version younger than SiteRetention; and every file
// one of them needs. A file no kept version needs is deleted; a later
// version that references its content again records it again
// (repo.Commit.Files).

// rootFile matches the root metadata's versioned files.
var rootFile = regexp.MustCompile(`^metadata/[0-9]+\.root\.json$`)

// pruneSite prunes the database's site history if this process is the
// writer (ok), holding s.mu, so no publish of this process runs meanwhile.
func (s *site) pruneSite(ctx context.Context, keep int, before time.Time) (res store.SitePruned, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl == nil || s.writer == nil {
		return store.SitePruned{}, false, nil
	}
	res, err = s.writer.PruneSite(ctx, store.SitePrune{Keep: keep, Before: before,
		Needs: siteNeeds(), Always: rootFile.MatchString})
	return res, true, err
}

// siteNeeds returns a store.SitePrune.Needs for the site repository's
// layout (package repo): a version needs the snapshot its timestamp
// names, the targets metadata that snapshot names (top-level and bins)
// and the content-addressed target files they list. Metadata files are
// immutable, so what each one needs is read once per prune.
func siteNeeds() func(ctx context.Context, timestamp []byte, read func(string) ([]byte, error)) ([]string, error) {
	below := map[string][]string{} // metadata file -> the files it needs
	return func(ctx context.Context, timestamp []byte, read func(string) ([]byte, error)) ([]string, error) {
		var ts struct {
			Signed struct {
				Meta map[string]struct {
					Version int64 `json:"version"`
				} `json:"meta"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(timestamp, &ts); err != nil {
			return nil, fmt.Errorf("read timestamp.json: %w", err)
		}
		snap, ok := ts.Signed.Meta["snapshot.json"]
		if !ok || snap.Version <= 0 {
			return nil, fmt.Errorf("timestamp.json names no snapshot")
		}
		snapPath := "metadata/" + strconv.FormatInt(snap.Version, 10) + ".snapshot.json"
		out := []string{snapPath}
		targets, ok := below[snapPath]
		if !ok {
			var err error
			if targets, err = snapshotNeeds(snapPath, read); err != nil {
				return nil, err
			}
			below[snapPath] = targets
		}
		for _, p := range targets {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out = append(out, p)
			files, ok := below[p]
			if !ok {
				var err error
				if files, err = targetsNeeds(p, read); err != nil {
					return nil, err
				}
				below[p] = files
			}
			out = append(out, files...)
		}
		return out, nil
	}
}

// snapshotNeeds lists the targets metadata files a snapshot names.
func snapshotNeeds(name string, read func(string) ([]byte, error)) ([]string, error) {
	b, err := read(name)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out []string
	for file, m := range doc.Signed.Meta {
		role, ok := strings.CutSuffix(file, ".json")
		if !ok || m.Version <= 0 || strings.ContainsAny(role, "/\\") {
			return nil, fmt.Errorf("read %s: bad entry %q (version %d)", name, file, m.Version)
		}
		out = append(out, "metadata/"+strconv.FormatInt(m.Version, 10)+"."+role+".json")
	}
	return out, nil
}

// targetsNeeds lists the target files a targets metadata file lists, where
// consistent snapshots put them: targets/<dir>/<sha256>.<basename>.
func targetsNeeds(name string, read func(string) ([]byte, error)) ([]string, error) {
	b, err := read(name)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Signed struct {
			Targets map[string]struct {
				Hashes map[string]string `json:"hashes"`
			} `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	out := make([]string, 0, len(doc.Signed.Targets))
	for target, tf := range doc.Signed.Targets {
		sum := tf.Hashes["sha256"]
		if sum == "" {
			return nil, fmt.Errorf("read %s: target %s has no sha256", name, target)
		}
		dir, base := posix.Split(target)
		out = append(out, posix.Join("targets", dir, sum+"."+base))
	}
	return out, nil
}
