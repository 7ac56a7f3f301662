package repo

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cascade-update/cascade/internal/delta"
	"github.com/cascade-update/cascade/internal/index"
)

// DeltaInfo describes one published delta target.
type DeltaInfo struct {
	// Path is the delta's target path (index.DeltaPath).
	Path string
	// Category, Name and Version are those of the item version whose file
	// the delta rebuilds; File is that file's basename.
	Category, Name, Version, File string
	// Base is the version the delta applies to.
	Base string
	// Length is the delta's size, ResultLength the size of the file it
	// rebuilds (what a full download takes).
	Length, ResultLength int64
}

// addDeltas makes, for each file of a new item version, a delta from the
// same file of each of the Settings.Deltas newest earlier versions (prev,
// newest first, read before this publish prunes any), and publishes as a
// target each delta smaller than Settings.DeltaMaxRatio of the file; once
// a delta is too large, older bases are not tried. It returns the deltas'
// basenames, which are pruned with the version.
//
// Memory: the new file, one base and the delta at a time, plus what
// delta.Create needs (docs/deltas.md).
func (r *Repo) addDeltas(t *tree, it Item, prev []keptVersion, files map[string]hashedFile, res *PublishResult) ([]string, error) {
	k := r.settings.DeltasFrom()
	if k == 0 || len(prev) == 0 {
		return nil, nil
	}
	prev = prev[:min(k, len(prev))]
	dir := filepath.Join(t.l.targetsDir(), it.Category, it.Name, it.Version)
	var names []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		hf := files[name]
		limit := int64(float64(hf.length) * r.settings.DeltaMaxRatio)
		if limit <= 0 {
			continue
		}
		var target []byte
		for _, old := range prev {
			if !slices.Contains(old.Files, name) {
				continue
			}
			if target == nil {
				var err error
				if target, err = os.ReadFile(hf.local); err != nil {
					return nil, fmt.Errorf("make deltas of %s: %w", name, err)
				}
			}
			d, err := r.makeDelta(t, it, old.Version, name, target, limit)
			if err != nil {
				return nil, err
			}
			if d == nil {
				// Not small enough from the newest earlier version: older
				// ones differ more (or the content is unrelated), so
				// do not spend K more Creates to find out.
				break
			}
			dname := path.Base(index.DeltaPath(it.Category, it.Name, it.Version, name, old.Version))
			dhf, err := t.copyTarget(bytes.NewReader(d.data), dir, dname)
			if err != nil {
				return nil, fmt.Errorf("write delta %s: %w", dname, err)
			}
			p := index.DeltaPath(it.Category, it.Name, it.Version, name, old.Version)
			custom := Custom{Category: it.Category, Name: it.Name, Version: it.Version, Delta: &index.Delta{
				File: name, Base: old.Version,
				BaseSHA256: d.baseSum, BaseLength: d.baseLen,
				ResultSHA256: hex.EncodeToString(hf.sum), ResultLength: hf.length,
			}}
			if err := t.setTarget(p, dhf.targetFile(custom)); err != nil {
				return nil, err
			}
			names = append(names, dname)
			res.Deltas = append(res.Deltas, DeltaInfo{Path: p, Category: it.Category, Name: it.Name,
				Version: it.Version, File: name, Base: old.Version, Length: dhf.length, ResultLength: hf.length})
		}
	}
	slices.Sort(names)
	return names, nil
}

type madeDelta struct {
	data    []byte
	baseSum string
	baseLen int64
}

// makeDelta computes the delta from version base of a file to target, or
// returns nil if it is not smaller than limit. The base is read from the
// targets tree and checked against its signed hash first.
func (r *Repo) makeDelta(t *tree, it Item, base, name string, target []byte, limit int64) (*madeDelta, error) {
	bp := index.ItemPath(it.Category, it.Name, base, name)
	btf, err := t.lookup(bp)
	if err != nil {
		return nil, fmt.Errorf("make delta from %s: %w", bp, err)
	}
	if btf == nil {
		return nil, fmt.Errorf("make delta from %s: not a published target", bp)
	}
	data, err := os.ReadFile(t.l.fromRel(targetRel(bp, btf.Hashes["sha256"])))
	if err != nil {
		return nil, fmt.Errorf("make delta from %s: %w", bp, err)
	}
	if err := btf.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("make delta from %s: the published file does not match its target: %w", bp, err)
	}
	var buf bytes.Buffer
	if err := delta.Create(&buf, data, target); err != nil {
		return nil, fmt.Errorf("make delta from %s: %w", bp, err)
	}
	if int64(buf.Len()) >= limit {
		r.log.Debug("no delta: not small enough", "base", bp, "delta", buf.Len(), "file", len(target))
		return nil, nil
	}
	return &madeDelta{data: buf.Bytes(), baseSum: hex.EncodeToString(btf.Hashes["sha256"]), baseLen: btf.Length}, nil
}

// deltaStatus lists the delta targets of every bin of t, sorted by path.
func deltaStatus(t *tree) ([]DeltaInfo, error) {
	var out []DeltaInfo
	for _, b := range t.bins {
		for p, tf := range b.Signed.Targets {
			c, err := decodeCustom(tf)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", p, err)
			}
			if c.Delta == nil {
				continue
			}
			out = append(out, DeltaInfo{Path: p, Category: c.Category, Name: c.Name, Version: c.Version,
				File: c.Delta.File, Base: c.Delta.Base, Length: tf.Length, ResultLength: c.Delta.ResultLength})
		}
	}
	slices.SortFunc(out, func(a, b DeltaInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}
