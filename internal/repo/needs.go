package repo

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// rootRel matches the root metadata's versioned files in a published tree.
var rootRel = regexp.MustCompile(`^metadata/[0-9]+\.root\.json$`)

// IsRoot reports whether rel, a slash-separated path relative to a
// published tree, is a version of the root metadata: clients walk
// 1.root.json, 2.root.json, ... up to the newest, so none may be removed.
func IsRoot(rel string) bool { return rootRel.MatchString(rel) }

// Needs lists the files of a published tree that the state whose
// timestamp.json is timestamp needs, as slash-separated paths relative to
// the tree: the snapshot the timestamp names, the targets metadata (top
// level and bins) the snapshot names, and the content-addressed target
// files they list. read returns a file of the tree by such a path.
// Metadata files are immutable, so seen (not nil) remembers what each
// one needs across calls.
func Needs(ctx context.Context, timestamp []byte, read func(rel string) ([]byte, error), seen map[string][]string) ([]string, error) {
	ts, err := metadata.Timestamp().FromBytes(timestamp)
	if err != nil {
		return nil, fmt.Errorf("read timestamp.json: %w", err)
	}
	snap := ts.Signed.Meta[metadata.SNAPSHOT+".json"]
	if snap == nil || snap.Version <= 0 {
		return nil, fmt.Errorf("read timestamp.json: it names no snapshot")
	}
	snapRel := path.Join("metadata", metaName(snap.Version, metadata.SNAPSHOT))
	out := []string{snapRel}
	roles, err := needsOf(snapRel, read, seen, snapshotNeeds)
	if err != nil {
		return nil, err
	}
	for _, rel := range roles {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		files, err := needsOf(rel, read, seen, targetsNeeds)
		if err != nil {
			return nil, err
		}
		out = append(out, rel)
		out = append(out, files...)
	}
	return out, nil
}

// needsOf is what the metadata file rel needs, by parse, remembered in
// seen.
func needsOf(rel string, read func(string) ([]byte, error), seen map[string][]string, parse func([]byte) ([]string, error)) ([]string, error) {
	if files, ok := seen[rel]; ok {
		return files, nil
	}
	b, err := read(rel)
	if err != nil {
		return nil, err
	}
	files, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	seen[rel] = files
	return files, nil
}

// snapshotNeeds lists the targets metadata files a snapshot names.
func snapshotNeeds(b []byte) ([]string, error) {
	snap, err := metadata.Snapshot().FromBytes(b)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(snap.Signed.Meta))
	for file, m := range snap.Signed.Meta {
		role, ok := cutJSON(file)
		if !ok || m.Version <= 0 {
			return nil, fmt.Errorf("bad entry %q (version %d)", file, m.Version)
		}
		out = append(out, path.Join("metadata", metaName(m.Version, role)))
	}
	return out, nil
}

// targetsNeeds lists the content-addressed target files a targets
// metadata file lists.
func targetsNeeds(b []byte) ([]string, error) {
	t, err := metadata.Targets().FromBytes(b)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(t.Signed.Targets))
	for name, tf := range t.Signed.Targets {
		sum := tf.Hashes["sha256"]
		if len(sum) == 0 {
			return nil, fmt.Errorf("target %s has no sha256", name)
		}
		out = append(out, targetRel(name, sum))
	}
	return out, nil
}

// cutJSON returns the role a snapshot entry names ("bins-0a.json" ->
// "bins-0a"), refusing names that would leave the metadata directory.
func cutJSON(file string) (string, bool) {
	role, ok := strings.CutSuffix(file, ".json")
	return role, ok && role != "" && !strings.ContainsAny(role, "/\\") && role != "." && role != ".."
}
